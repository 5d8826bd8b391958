"""Echo features: our numpy/scipy STFT against torchaudio's, side by side on the same batch.

Prints milliseconds per batch (median of repeated runs, interleaved so that machine noise hits
both alike), the speed ratio, and the largest difference relative to the peak.
"""

import argparse
import statistics
import time

from avs_net_ros.core.spectrogram import stft_magnitude
import numpy as np


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch', type=int, default=16, help='echoes per batch')
    parser.add_argument('--samples', type=int, default=7782,
                        help='samples per echo (7782 = BatVision V2 30 m window)')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
    args = parser.parse_args()

    import torch
    import torchaudio
    torch.set_num_threads(args.threads)
    x = (np.random.default_rng(0).standard_normal((args.batch, 2, args.samples)) * 0.1
         ).astype(np.float32)
    tx = torch.from_numpy(x)
    spec = torchaudio.transforms.Spectrogram(n_fft=512, win_length=64, hop_length=16,
                                             power=1.0)
    ours_t, torch_t = [], []
    for _ in range(args.repeats + 2):
        t0 = time.perf_counter()
        ours = stft_magnitude(x)
        t1 = time.perf_counter()
        with torch.no_grad():
            ref = spec(tx).numpy()
        t2 = time.perf_counter()
        ours_t.append(t1 - t0)
        torch_t.append(t2 - t1)
    o, r = statistics.median(ours_t[2:]) * 1e3, statistics.median(torch_t[2:]) * 1e3
    err = float(np.abs(ours - ref).max() / np.abs(ref).max())
    print(f'batch {args.batch} x 2 ch x {args.samples} samples -> {ours.shape}')
    print(f'  avs_net_ros (numpy/scipy): {o:8.2f} ms/batch  {o / args.batch:6.2f} ms/echo')
    print(f'  torchaudio Spectrogram   : {r:8.2f} ms/batch  {r / args.batch:6.2f} ms/echo')
    print(f'  speed ratio torchaudio/ours: {r / o:.2f}x   max |diff| / peak: {err:.2e}')


if __name__ == '__main__':
    main()
