"""sim_robot node: a simulated robot in a simulated room, so the graph runs without hardware.

It samples a scene from a family of ``avs_net_ros.sim`` and a trajectory through it, and at
``frame_rate`` publishes, for the next pose:

- ``image`` (rgb8) and ``camera_info`` (pinhole, the renderer's intrinsics), header frame
  ``frame_id`` stamped with the node clock (sim time when use_sim_time is set);
- ``ground_truth/depth``: 32FC1 metres of the ray-cast scene, NaN where the simulated stereo
  depth camera would have no value (REP 118), same header;
- ``/tf``: the robot's pose, ``odom_frame`` -> ``base_frame`` (REP 105), same stamp; and once,
  on the latched ``/tf_static``, the rig: ``base_frame`` -> the camera optical frame
  (``frame_id``), the speaker and the two microphones, with the camera centre at
  ``camera_xyz`` in the base frame and the speaker and ears where the simulated world has them
  (``ros.tf``);
- ``sim_pose`` (geometry_msgs/PoseStamped in ``world_frame``): the camera body frame (REP 103:
  x forward, y left, z up), which a chirp emitter running its simulated-room backend follows;
- with ``publish_echoes`` (the launch graph sets it when the chirp emitter is off): every
  ``chirp_every``-th frame, the world's binaural recording of a chirp at that pose, aligned and
  cut by the same code as the chirp emitter (``audio.echo.cut_recording``) and published on
  ``echoes`` (avs_net_msgs/EchoFrame, in the speaker's frame) with the frame's stamp.

Acoustic simulation (~0.2 s per new pose) runs on a worker thread of its own on the newest
chirp frame only, so the camera keeps its rate.
"""

import threading
from typing import Any, List, Optional, Tuple

from avs_net_msgs.msg import EchoFrame
from avs_net_ros.audio.echo import cut_recording, EchoFault
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.messages import array_to_image, echo_to_frame, EchoInfo, header_copy
from avs_net_ros.ros.params import declare_parameters, ParamSpec
from avs_net_ros.ros.spin import run_node
from avs_net_ros.ros.tf import FRAME_PARAMS, frames_from, RigTf
from avs_net_ros.ros.worker import WakeableWorker
from avs_net_ros.sim.families import (get_family, load_family_file, sample_scene,
                                      sample_tour, sample_trajectory)
from avs_net_ros.sim.rig import CameraPose, Intrinsics
from avs_net_ros.sim.world import SimulatedWorld
from geometry_msgs.msg import PoseStamped
import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

NODE_NAME = 'sim_robot'

PARAMS = (
    ParamSpec('family', 'bv1_like', 'Scene family to sample the room from (bv1_like: rooms '
              'and corridors up to 12 m; bv2_like: up to 30 m).',
              choices=('bv1_like', 'bv2_like')),
    ParamSpec('family_config', '', 'YAML file of scene-family parameters (config/sim/*.yaml; '
              "'base' names the family it starts from); when set it replaces family."),
    ParamSpec('seed', 0, 'Random seed of the scene, the trajectory and the microphone noise.',
              value_range=(0, 2 ** 31 - 1)),
    ParamSpec('num_poses', 300, 'Poses in the trajectory; it is replayed in a loop.',
              value_range=(1, 100000)),
    ParamSpec('trajectory', 'walk', "How the poses are drawn: 'walk' (a robot wandering "
              "through the room, consecutive frames overlap) or 'tour' (independent poses spread "
              'over the room, one view each).', choices=('walk', 'tour')),
    ParamSpec('frame_rate', 10.0, 'Camera frames per second.', value_range=(0.1, 120.0)),
    ParamSpec('width', 160, 'Image width (pixels).', value_range=(8, 4096)),
    ParamSpec('height', 120, 'Image height (pixels).', value_range=(8, 4096)),
    ParamSpec('hfov_deg', 90.0, 'Horizontal field of view of the camera (degrees).',
              value_range=(10.0, 170.0)),
    ParamSpec('frame_id', 'camera_optical', 'Frame of the camera images (optical frame: x '
              'right, y down, z forward).'),
    ParamSpec('world_frame', 'map', 'Frame of sim_pose.'),
    ParamSpec('odom_frame', 'odom', 'Parent frame of the robot pose on /tf (REP 105).'),
    *FRAME_PARAMS,
    ParamSpec('sensor_invalid', True, 'Mark pixels a stereo depth camera would miss as NaN in '
              'ground_truth/depth; false = the exact ray-cast depth everywhere.'),
    ParamSpec('publish_echoes', False, 'Publish the simulated echoes here (when no chirp '
              'emitter runs).'),
    ParamSpec('chirp_every', 3, 'Publish an echo on every n-th frame (echo rate = frame_rate '
              '/ n; keep it below the acoustic limit of about 14 Hz at 12 m).',
              value_range=(1, 1000)),
    ParamSpec('echo_max_range', 12.0, 'Range the echo window covers (m); it must cover the '
              "AVS-Net model's echo window.", value_range=(0.5, 100.0)),
    ParamSpec('echo_lead_in_samples', 0, 'Samples kept before the direct path at the start '
              "of each echo (the model's lead_in_samples).", value_range=(0, 4096)),
    ParamSpec('echo_noise', True, 'Add the simulated microphone noise to the echoes.'),
)

_OUT = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


def camera_info_from(intr: Intrinsics, header: Header) -> CameraInfo:
    """Return the CameraInfo of a distortion-free pinhole camera."""
    info = CameraInfo(header=header, width=intr.width, height=intr.height,
                      distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def pose_quaternion(pose: CameraPose) -> Tuple[float, float, float, float]:
    """Return (x, y, z, w) of the camera body frame (REP 103: x forward, y left, z up).

    Yaw about +z, then the camera's pitch (positive = looking up) as a rotation about the
    body's y axis, which is negative pitch in REP 103 terms.
    """
    hy, hp = pose.yaw / 2, -pose.pitch / 2
    cy, sy, cp, sp = np.cos(hy), np.sin(hy), np.cos(hp), np.sin(hp)
    return float(-sy * sp), float(cy * sp), float(sy * cp), float(cy * cp)


class SimRobotNode(Node):
    """Publishes a simulated camera (and optionally sonar) along a trajectory."""

    def __init__(self, **kwargs: Any) -> None:
        """Build the world and trajectory, then start the camera timer."""
        super().__init__(NODE_NAME, **kwargs)
        p = declare_parameters(self, PARAMS)
        self.params = p
        rng = np.random.default_rng(p['seed'])
        family = (load_family_file(p['family_config']) if p['family_config']
                  else get_family(p['family']))
        self.scene = sample_scene(family, rng)
        draw = sample_tour if p['trajectory'] == 'tour' else sample_trajectory
        self.poses: List[CameraPose] = list(draw(family, self.scene, p['num_poses'], rng))
        self.world = SimulatedWorld(self.scene, hfov_deg=p['hfov_deg'])
        self.intrinsics = self.world.intrinsics(p['width'], p['height'])
        self._frames: dict = {}
        self._noise = np.random.default_rng(p['seed'] + 1) if p['echo_noise'] else None
        self.frame_index = 0
        self.echoes_published = 0
        self.echo_faults = 0
        self._chirp_request: Optional[Tuple[Header, CameraPose]] = None
        self._lock = threading.Lock()

        self.pub_image = self.create_publisher(Image, 'image', _OUT)
        self.pub_info = self.create_publisher(CameraInfo, 'camera_info', _OUT)
        self.pub_depth = self.create_publisher(Image, 'ground_truth/depth', _OUT)
        self.pub_pose = self.create_publisher(PoseStamped, 'sim_pose', _OUT)
        self.tf = RigTf(self, self.world.rig, p['camera_xyz'],
                        frames_from(p, p['frame_id'], p['odom_frame']))
        if p['publish_echoes']:
            self.sonar = SonarSettings(chirp=self.world.acoustics.chirp,
                                       max_range=p['echo_max_range'],
                                       lead_in_samples=p['echo_lead_in_samples'])
            self._chirp = self.sonar.chirp_waveform()
            self.echo_info = EchoInfo.from_dict(self.sonar.info('simulated_world'))
            self.pub_echo = self.create_publisher(EchoFrame, 'echoes', _OUT)
            # the room simulation takes longer than a frame: its own thread keeps the camera
            # timer on time
            self._echo_worker = WakeableWorker(self._echo_work, 'sim_robot echoes',
                                               on_error=self._on_echo_error)
            self._echo_worker.start()
        self.create_timer(1.0 / p['frame_rate'], self._tick)
        self.get_logger().info(
            f'simulated {self.scene.name} with {len(self.poses)} poses at {p["frame_rate"]} Hz, '
            f'{p["width"]}x{p["height"]}; echoes '
            f'{"every %d frames" % p["chirp_every"] if p["publish_echoes"] else "off"}')

    def view(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """Return (rgb, depth with NaN where invalid) of trajectory pose ``index`` (cached)."""
        i = index % len(self.poses)
        if i not in self._frames:
            rgb, depth, intr = self.world.render(self.poses[i], intrinsics=self.intrinsics)
            depth = depth.astype(np.float32, copy=True)
            if self.params['sensor_invalid']:
                valid = self.world.sensor_valid(rgb, depth, intr, np.random.default_rng(i))
                depth[~valid] = np.nan
            self._frames[i] = (rgb, depth)
        return self._frames[i]

    def _tick(self) -> None:
        i = self.frame_index
        self.frame_index += 1
        pose = self.poses[i % len(self.poses)]
        rgb, depth = self.view(i)
        header = Header(frame_id=self.params['frame_id'],
                        stamp=self.get_clock().now().to_msg())
        self.pub_depth.publish(array_to_image(depth, '32FC1', header))
        self.pub_info.publish(camera_info_from(self.intrinsics, header_copy(header)))
        msg = PoseStamped()
        msg.header = header_copy(header, self.params['world_frame'])
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = pose.position.tolist()
        q = msg.pose.orientation
        q.x, q.y, q.z, q.w = pose_quaternion(pose)
        self.pub_pose.publish(msg)
        self.tf.publish_pose(header.stamp, pose)
        if self.params['publish_echoes'] and i % self.params['chirp_every'] == 0:
            with self._lock:
                self._chirp_request = (header, pose)
            self._echo_worker.wake()
        # the image goes last: a consumer that reacts to it finds camera_info already there
        self.pub_image.publish(array_to_image(rgb, 'rgb8', header))

    def _echo_work(self) -> None:
        with self._lock:
            request, self._chirp_request = self._chirp_request, None
        if request is None:
            return
        header, pose = request
        echo = self.simulate_echo(pose)
        if echo is not None:
            self.pub_echo.publish(echo_to_frame(echo, self.echo_info, header_copy(
                header, self.params['speaker_frame'])))
            self.echoes_published += 1

    def _on_echo_error(self, error: BaseException) -> None:
        if not self.context.ok():
            return  # shutting down: the publish of the echo in hand failed
        self.echo_faults += 1
        self.get_logger().error(f'echo simulation failed: {type(error).__name__}: {error}',
                                throttle_duration_sec=2.0)

    def destroy_node(self) -> None:
        """Stop the echo thread, then destroy the node."""
        worker = getattr(self, '_echo_worker', None)
        if worker is not None:
            worker.stop()
        super().destroy_node()

    def simulate_echo(self, pose: CameraPose) -> Optional[np.ndarray]:
        """Return the cut (2, window) echo of a chirp at ``pose``, or None (fault logged)."""
        rec = self.world.record(pose, rng=self._noise)
        # cut_recording wants the chirp at index lead_in; the model's lead-in counts up to the
        # direct-path onset (emission + flight), so it may exceed the world's pre-roll: pad.
        pad = max(0, self.sonar.lead_in_samples - self.world.emit_sample)
        if pad:
            rec = np.pad(rec, ((0, 0), (pad, 0)))
        start = self.world.emit_sample + pad - self.sonar.lead_in_samples
        try:
            return cut_recording(rec[:, start:], self._chirp, self.sonar).echo
        except EchoFault as e:
            self.echo_faults += 1
            self.get_logger().warning(f'simulated echo dropped: {e}', throttle_duration_sec=2.0)
            return None


def main(args: Optional[List[str]] = None) -> int:
    """Run the node (``ros2 run avs_net_ros sim_robot``)."""
    return run_node(SimRobotNode, NODE_NAME, args, (ValueError,))


if __name__ == '__main__':
    raise SystemExit(main())
