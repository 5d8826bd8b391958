"""Camera intrinsics of a dataset's frames, for training that reprojects between views.

The BatVision layouts store no intrinsics. They are looked up per location folder (BV2
location, BV1 date folder) in this order:

1. ``camera.yaml`` in the location folder, then in the dataset root: ``width``, ``height``
   (of the stored images, pixels), ``fx``, ``fy``, ``cx``, ``cy`` (pixels, OpenCV: (0, 0) is
   the centre of the first pixel). This is how real recordings declare their camera.
2. ``sim_meta.yaml`` of a simulated location: its ``camera`` block (``width``, ``height``,
   ``hfov_deg``; square pixels, centred principal point, as the renderer uses).

A mapping given by the caller (a training config) takes precedence over both. Intrinsics are
returned normalised, ``(fx / W, fy / H, (cx + 0.5) / W, (cy + 0.5) / H)``, which does not
change when the image is resized.
"""

import os
from typing import Dict, Mapping, Optional, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.sim.rig import Intrinsics

import yaml

Normalised = Tuple[float, float, float, float]
CAMERA_FILE = 'camera.yaml'
SIM_META_FILE = 'sim_meta.yaml'
_KEYS = ('width', 'height', 'fx', 'fy', 'cx', 'cy')


def normalise(intr: Mapping[str, float], source: str = 'intrinsics') -> Normalised:
    """Return normalised intrinsics of a pixel-intrinsics mapping (keys as ``camera.yaml``).

    Raises:
        AvsInputError: a key is missing or a value is not a positive size / finite number.

    """
    missing = [k for k in _KEYS if k not in intr]
    if missing:
        raise AvsInputError(f'{source}: missing {missing}; need {list(_KEYS)} (pixels)')
    try:
        w, h, fx, fy, cx, cy = (float(intr[k]) for k in _KEYS)
    except (TypeError, ValueError):
        raise AvsInputError(f'{source}: {list(_KEYS)} must be numbers, got '
                            f'{ {k: intr[k] for k in _KEYS} }') from None
    if not (w > 0 and h > 0 and fx > 0 and fy > 0):
        raise AvsInputError(f'{source}: width, height, fx and fy must be positive, got '
                            f'{w}, {h}, {fx}, {fy}')
    return fx / w, fy / h, (cx + 0.5) / w, (cy + 0.5) / h


def _read_yaml(path: str) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise AvsInputError(f'{path} must hold a mapping, got {type(data).__name__}')
    return data


def location_intrinsics(root: str, location: str) -> Normalised:
    """Return the normalised intrinsics of ``location`` under ``root`` (see the module doc).

    Raises:
        AvsInputError: no camera file describes the location, or the one found is malformed.

    """
    folder = os.path.join(root, location)
    for path in (os.path.join(folder, CAMERA_FILE), os.path.join(root, CAMERA_FILE)):
        if os.path.isfile(path):
            return normalise(_read_yaml(path), path)
    meta = os.path.join(folder, SIM_META_FILE)
    if os.path.isfile(meta):
        cam = _read_yaml(meta).get('camera')
        if not isinstance(cam, dict) or not {'width', 'height', 'hfov_deg'} <= set(cam):
            raise AvsInputError(f'{meta}: no camera block with width, height and hfov_deg')
        i = Intrinsics.from_fov(int(cam['width']), int(cam['height']), float(cam['hfov_deg']))
        return normalise({'width': i.width, 'height': i.height, 'fx': i.fx, 'fy': i.fy,
                          'cx': i.cx, 'cy': i.cy}, meta)
    raise AvsInputError(
        f'no camera intrinsics for location {location!r} of {root}: write {CAMERA_FILE} '
        f'(keys {", ".join(_KEYS)}, pixels of the stored images) into {folder} or {root}, '
        f'or give them in the dataset entry')


class IntrinsicsLookup:
    """Per-location intrinsics of one dataset root, read once per location."""

    def __init__(self, root: str, override: Optional[Mapping[str, float]] = None) -> None:
        """Look up under ``root``; ``override`` (pixel intrinsics) applies to every location."""
        self.root = root
        self.fixed = normalise(override, 'dataset intrinsics') if override else None
        self._cache: Dict[str, Normalised] = {}

    def __call__(self, location: str) -> Normalised:
        """Return the normalised intrinsics of ``location``."""
        if self.fixed is not None:
            return self.fixed
        if location not in self._cache:
            self._cache[location] = location_intrinsics(self.root, location)
        return self._cache[location]
