"""Shared pytest fixtures."""

import os

import pytest


def pytest_configure(config):
    """Register markers and keep any ROS traffic of the test run on this machine."""
    config.addinivalue_line('markers', 'slow: takes more than a few seconds; run in CI too')
    config.addinivalue_line('markers', 'linter: style checks (flake8, pep257)')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


@pytest.fixture(scope='session')
def model_set(tmp_path_factory):
    """Tiny contract-following ONNX models (AV, V, relative depth/disparity), built once."""
    from model_builders import build_model_set
    return build_model_set(str(tmp_path_factory.mktemp('models')))
