"""The training augmentation: ZoeDepth's flip and photometric jitter, consistent across inputs.

A horizontal flip mirrors the scene, so what was on the left is now on the right: the image,
its triplet neighbours and the depth are mirrored and the left and right ears are swapped (the
echo's and its spectrogram's channel axis). Photometric jitter touches the images only, the
same for all frames of a triplet so that the photometric loss still compares like with like.
A flip mirrors the principal point of normalised intrinsics (``cx_n -> 1 - cx_n``).
Applied per batch by the trainer, after the dataset (whose samples may be cached).
"""

from typing import Dict

import torch

#: Images of a sample that get the same flip and jitter (frame triplets add the neighbours).
IMAGE_KEYS = ('image', 'image_prev', 'image_next')


def augment_batch(batch: Dict[str, torch.Tensor],
                  generator: torch.Generator) -> Dict[str, torch.Tensor]:
    """Return ``batch`` with a flip (p=0.5) and photometric jitter (p=0.5) drawn per sample.

    Jitter: gamma, brightness and per-channel gains, each drawn from [0.9, 1.1]. The draws
    depend only on ``generator`` and the batch size, so a seeded run is reproducible.
    """
    out = dict(batch)
    n = batch['image'].shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    photo = torch.rand(n, generator=generator) < 0.5
    jitter = 0.9 + 0.2 * torch.rand(n, 5, generator=generator)  # gamma, brightness, rgb gains
    for key in ('depth', 'valid'):  # absent from unlabelled (self-supervised) batches
        if key in batch:
            out[key] = batch[key].clone()
            out[key][flip] = out[key][flip].flip(-1)
    for key in ('echo_spec', 'echo'):
        if key in batch:
            out[key] = batch[key].clone()
            out[key][flip] = out[key][flip].flip(1)
    if 'intrinsics' in batch:
        out['intrinsics'] = batch['intrinsics'].clone()
        out['intrinsics'][flip, 2] = 1 - out['intrinsics'][flip, 2]
    g = jitter[:, 0].view(-1, 1, 1, 1)
    scale = jitter[:, 1].view(-1, 1, 1, 1) * jitter[:, 2:].view(-1, 3, 1, 1)
    for key in IMAGE_KEYS:
        if key not in batch:
            continue
        image = batch[key].clone()
        image[flip] = image[flip].flip(-1)
        jittered = (image.clamp(0, 1) ** g * scale).clamp(0, 1)
        image[photo] = jittered[photo]
        out[key] = image
    return out
