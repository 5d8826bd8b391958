"""ament_python build script for avs_net_ros."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'avs_net_ros'


def tree(src: str) -> list:
    """Return data_files entries installing every file under ``src`` to share/<package>/src."""
    entries = []
    for folder, _, files in sorted(os.walk(src)):
        if files:
            entries.append((os.path.join('share', package_name, folder),
                            sorted(os.path.join(folder, f) for f in files)))
    return entries


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    # The layout ros2 run / ros2 launch need (console scripts go to lib/<package>, setup.cfg):
    # the ament index marker, package.xml, the launch files and config/ with its subfolders.
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
    ] + tree('config'),
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='avs_net_ros developers',
    maintainer_email='avs-net-ros@example.org',
    description='Metric depth from one camera plus a chirp and binaural echoes (AVS-Net).',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'avs_validate_model = avs_net_ros.tools.validate_model:main',
            'avs_generate_dataset = avs_net_ros.datasets.generate:main',
            'chirp_emitter = avs_net_ros.ros.chirp_emitter:main',
            'depth_inference = avs_net_ros.ros.depth_inference:main',
            'sim_robot = avs_net_ros.ros.sim_robot:main',
            'avs_bringup = avs_net_ros.ros.bringup:main',
            'avs_demo = avs_net_ros.tools.demo:main',
            'avs_eval_bag = avs_net_ros.tools.eval_bag:main',
            'avs_write_bag = avs_net_ros.tools.write_bag:main',
            'avs_replay_bag = avs_net_ros.tools.replay_bag:main',
        ],
    },
)
