"""The default-size models the speed benchmarks run, exported once into a folder.

AVS-Net AV (the training config's defaults: MiDaS-small on tf_efficientnet_lite3, ResNet-18
echo encoder, ZoeDepth head, 256x256 image and spectrogram, 30 m echo window) and the relative
model of the same size (MiDaS-small), with random weights (seeds 0 and 1; speed does not
depend on them), each as float32 (``training.export``) and INT8 (``training.quantize``,
calibrated on random inputs of the contract's shapes, or on ``calib_root`` frames).
"""

import os
from typing import Dict, Optional

from avs_net_ros.core.contract import EchoContract, read_onnx_contract
from avs_net_ros.core.spectrogram import EchoFeatureConfig

NAMES = ('avs_av_fp32.onnx', 'avs_av_int8.onnx', 'relative_fp32.onnx', 'relative_int8.onnx')


def ensure_default_models(folder: str, calib_root: Optional[str] = None) -> Dict[str, str]:
    """Return {file name: path} of the four models, exporting those missing from ``folder``."""
    paths = {n: os.path.join(folder, n) for n in NAMES}
    if all(os.path.isfile(p) for p in paths.values()):
        return paths
    import torch

    from training.config import ModelConfig
    from training.export import example_inputs, export_onnx, make_contract
    from training.models.avs_net import build_model
    from training.quantize import calibration_feeds, quantize_model

    os.makedirs(folder, exist_ok=True)
    echo = EchoContract(EchoFeatureConfig(spec_size=(256, 256)), echo_max_depth=30.0,
                        speed_of_sound=340.0)
    for seed, variant, stem in ((0, 'av', 'avs_av'), (1, 'relative', 'relative')):
        fp32, int8 = paths[f'{stem}_fp32.onnx'], paths[f'{stem}_int8.onnx']
        if not os.path.isfile(fp32):
            torch.manual_seed(seed)
            cfg = ModelConfig(variant=variant, image_size=(256, 256))
            export_onnx(build_model(cfg).eval(),
                        make_contract(cfg, echo if variant == 'av' else None), fp32)
        if not os.path.isfile(int8):
            contract = read_onnx_contract(fp32)
            feeds = (calibration_feeds(calib_root, contract) if calib_root else
                     [{k: v.numpy() for k, v in example_inputs(contract, seed=s).items()}
                      for s in range(4)])
            quantize_model(fp32, int8, feeds)
    return paths
