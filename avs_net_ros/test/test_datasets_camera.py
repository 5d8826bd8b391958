"""Camera intrinsics of dataset locations: camera files, simulator metadata, clear errors."""

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.datasets.camera import IntrinsicsLookup, location_intrinsics, normalise
import pytest
import yaml


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def test_camera_files_take_precedence_over_simulator_metadata(tmp_path):
    _write(tmp_path / 'loc' / 'sim_meta.yaml',
           {'camera': {'width': 640, 'height': 360, 'hfov_deg': 90.0}})
    # From the simulator: square pixels, centred, 90 degrees horizontally.
    assert location_intrinsics(str(tmp_path), 'loc') == pytest.approx(
        (0.5, 0.5 * 640 / 360, 0.5, 0.5))
    # A root-wide camera file (real recordings) wins, and a location's own file wins over it.
    _write(tmp_path / 'camera.yaml',
           {'width': 1280, 'height': 720, 'fx': 700.0, 'fy': 700.0, 'cx': 639.5, 'cy': 359.5})
    assert location_intrinsics(str(tmp_path), 'loc') == pytest.approx(
        (700 / 1280, 700 / 720, 0.5, 0.5))
    _write(tmp_path / 'loc' / 'camera.yaml',
           {'width': 100, 'height': 50, 'fx': 50, 'fy': 50, 'cx': 29.5, 'cy': 24.5})
    assert location_intrinsics(str(tmp_path), 'loc') == pytest.approx((0.5, 1.0, 0.3, 0.5))
    # A mapping given by the caller applies to every location.
    fixed = IntrinsicsLookup(str(tmp_path), {'width': 10, 'height': 10, 'fx': 5, 'fy': 5,
                                             'cx': 4.5, 'cy': 4.5})
    assert fixed('anything') == (0.5, 0.5, 0.5, 0.5)


def test_missing_or_broken_intrinsics_are_named(tmp_path):
    with pytest.raises(AvsInputError, match=r'no camera intrinsics for location .loc.*camera'):
        location_intrinsics(str(tmp_path), 'loc')
    _write(tmp_path / 'camera.yaml', {'width': 640, 'height': 360, 'fx': 500})
    with pytest.raises(AvsInputError, match=r"missing \['fy', 'cx', 'cy'\]"):
        location_intrinsics(str(tmp_path), 'loc')
    with pytest.raises(AvsInputError, match='must be positive'):
        normalise({'width': 0, 'height': 1, 'fx': 1, 'fy': 1, 'cx': 0, 'cy': 0})
    _write(tmp_path / 'loc' / 'sim_meta.yaml', {'camera': {'width': 64}})
    (tmp_path / 'camera.yaml').unlink()
    with pytest.raises(AvsInputError, match='no camera block'):
        location_intrinsics(str(tmp_path), 'loc')
