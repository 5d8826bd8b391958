"""The allocator setting of the package's processes (avs_net_ros.runtime.memory)."""

import platform

from avs_net_ros.runtime.memory import keep_freed_memory
import pytest


def test_user_settings_win_over_ours(monkeypatch):
    monkeypatch.setenv('AVS_NET_ROS_MALLOC', 'default')
    assert keep_freed_memory() is False
    monkeypatch.delenv('AVS_NET_ROS_MALLOC')
    monkeypatch.setenv('MALLOC_TRIM_THRESHOLD_', '1000000')
    assert keep_freed_memory() is False


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='mallopt settings are glibc')
def test_applied_on_glibc(monkeypatch):
    for k in ('AVS_NET_ROS_MALLOC', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_'):
        monkeypatch.delenv(k, raising=False)
    assert keep_freed_memory() is True
