"""chirp_emitter node: chirps paced by camera frames, binaural echoes out.

Topics (relative names; remap them):

- in: ``image`` (sensor_msgs/Image, sensor-data QoS, depth 1): each frame asks for a chirp;
  only its header is used. With ``backend: sim``, ``sim_pose`` (geometry_msgs/PoseStamped,
  the camera pose in the simulated room) moves the simulated sonar.
- out: ``echoes`` (avs_net_msgs/EchoFrame: the sample rate, channels, chirp and window
  settings and 2 x window float32 samples, channel 0 left; header stamp = the camera frame's
  stamp; reliable, depth 5, so best-effort and reliable subscribers both match) and
  ``/diagnostics``.

Lifecycle (``lifecycle``): unconfigured after start; ``configure`` opens the audio stream
(FAILURE naming the problem, e.g. a missing device with the devices that exist, reported on
/diagnostics too); ``activate`` subscribes to the camera, so chirps start; ``deactivate``
unsubscribes (no chirps, no echoes); ``cleanup`` closes the stream. /diagnostics runs in every
state.

All audio work is in ``avs_net_ros.audio`` (``SonarEngine``): one continuous duplex stream,
chirps placed at known samples never faster than the echo window plus the reverberation
guard, echoes aligned on the direct path and cut on a worker thread. This node only maps
parameters to settings, frames to chirp requests, and echoes and health to messages.
"""

import logging
import math
from typing import Any, Dict, List, Optional

from avs_net_msgs.msg import EchoFrame
from avs_net_ros.audio.duplex import AudioDeviceError, SoundDeviceBackend
from avs_net_ros.audio.engine import EchoResult, SonarEngine
from avs_net_ros.audio.health import ERROR, OK, WARN
from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.core.acoustics import ChirpConfig
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.messages import echo_to_frame, EchoInfo, header_copy
from avs_net_ros.ros.lifecycle import ACTIVE, LifecycleMixin, state_of
from avs_net_ros.ros.params import check_choices, declare_parameters, ParamSpec
from avs_net_ros.ros.spin import run_node
from avs_net_ros.ros.tf import FRAME_PARAMS, frames_from, RigTf
from avs_net_ros.sim.rig import RigGeometry
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import HistoryPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

NODE_NAME = 'chirp_emitter'

PARAMS = (
    ParamSpec('backend', 'sounddevice', "Audio backend: 'sounddevice' (a sound card or audio "
              "server through PortAudio) or 'sim' (the simulated room at the camera pose).",
              choices=('sounddevice', 'sim')),
    ParamSpec('device', '', 'PortAudio device: index or name words (e.g. "pulse", "system '
              'JACK"); empty = the default device. A wrong name fails at start with the list '
              'of devices.'),
    ParamSpec('blocksize', 512, 'Frames per audio callback (0 = let PortAudio choose, e.g. '
              'the JACK period).', value_range=(0, 16384)),
    ParamSpec('sample_rate', 44100, 'Stream sample rate (Hz); must be the rate the AVS-Net '
              'model was trained on and, with PulseAudio, the sink rate.',
              value_range=(8000, 384000)),
    ParamSpec('chirp.f_start', 20.0, 'Chirp start frequency (Hz).', value_range=(1.0, 192000.0)),
    ParamSpec('chirp.f_end', 20000.0, 'Chirp end frequency (Hz), below sample_rate / 2.',
              value_range=(1.0, 192000.0)),
    ParamSpec('chirp.duration', 0.003, 'Chirp length (s).', value_range=(0.0001, 1.0)),
    ParamSpec('chirp.method', 'linear', 'Sweep law.', choices=('linear', 'logarithmic')),
    ParamSpec('chirp.fade', 0.1, 'Fraction of the chirp tapered at each end.',
              value_range=(0.0, 0.5)),
    ParamSpec('chirp.amplitude', 0.5, 'Chirp peak amplitude (1 = full scale).',
              value_range=(0.001, 1.0)),
    ParamSpec('max_range', 30.0, 'Range the echo window covers (m).',
              value_range=(0.1, 1000.0)),
    ParamSpec('speed_of_sound', 340.0, 'Speed of sound used to size the window (m/s); '
              "BatVision's 340 matches its training data.", value_range=(200.0, 400.0)),
    ParamSpec('window_samples', 0, 'Samples per echo; 0 = the round trip to max_range.',
              value_range=(0, 10000000)),
    ParamSpec('lead_in_samples', 0, 'Samples kept before the direct-path onset at the start '
              "of each echo (the model contract's lead_in_samples).",
              value_range=(0, 1000000)),
    ParamSpec('reverb_guard', 0.05, 'Extra silence (s) after each echo window before the '
              'next chirp, for the room reverberation to decay.', value_range=(0.0, 10.0),
              read_only=False),
    ParamSpec('max_rate', 0.0, 'Upper limit on the chirp rate (Hz); 0 = only the window and '
              'reverb_guard limit it.', value_range=(0.0, 1000.0), read_only=False),
    ParamSpec('max_request_age', 0.1, 'A frame older than this (s) when the next chirp slot '
              'opens gets no chirp, so echoes are never stamped with stale frames.',
              value_range=(0.0, 10.0), read_only=False),
    ParamSpec('max_latency', 0.25, 'Longest device round-trip latency (s) searched for the '
              'direct path.', value_range=(0.0, 5.0)),
    ParamSpec('min_peak_ratio', 20.0, 'Matched-filter peak over its median needed to accept '
              'a direct path; below it the chirp is reported and no echo published.',
              value_range=(1.01, 1e12)),
    ParamSpec('gain', 1.0, 'Linear gain applied to the recorded echoes before publishing.',
              value_range=(1e-6, 1e6), read_only=False),
    ParamSpec('clip_level', 0.999, 'Recorded |sample| from which audio counts as clipped.',
              value_range=(0.01, 1.0)),
    ParamSpec('channel_map', [0, 1], 'Device input channels of the (left, right) '
              'microphones; [1, 0] swaps them.'),
    ParamSpec('output_channels', [0, 1], 'Device output channels the chirp is played on.'),
    ParamSpec('warmup', 0.5, 'Seconds of audio after the stream (re)opens before the first '
              'chirp (a new PulseAudio stream settles during its first second).',
              value_range=(0.0, 60.0)),
    ParamSpec('publish_rig_tf', True, 'Publish the rig (camera, speaker, microphones in '
              'base_frame) on /tf_static while configured; off where something else publishes '
              'it (the simulated robot, or the robot description).'),
    ParamSpec('camera_frame', 'camera_optical', 'Optical frame of the camera on /tf_static '
              '(the frame of its images).'),
    *FRAME_PARAMS,
    ParamSpec('ear_spacing', 0.18, 'Distance between the two microphones (m); they sit left '
              'and right of the camera centre.', value_range=(0.01, 2.0)),
    ParamSpec('speaker_offset', [0.0, 0.08, 0.02], 'Speaker position from the camera centre '
              '(m: right, down, forward, the optical frame).'),
    ParamSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
              value_range=(0.05, 3600.0)),
    ParamSpec('sim.room_size', [6.0, 4.0, 3.0], 'Simulated shoebox room (length, width, '
              "height) in metres (backend 'sim')."),
    ParamSpec('sim.pose', [3.0, 2.0, 1.5, 0.0], 'Initial camera pose in the simulated room '
              '(x, y, z in metres, yaw in radians); sim_pose messages move it.'),
    ParamSpec('sim.latency_samples', 256, 'Extra round-trip latency of the simulated device '
              '(samples, added to one block).', value_range=(0, 1000000)),
    ParamSpec('sim.noise_level', 0.002, 'Standard deviation of the simulated microphone '
              'noise (full scale).', value_range=(0.0, 10.0), read_only=False),
    ParamSpec('sim.input_gain', 1.0, 'Gain before the simulated ADC, which clips at full '
              'scale.', value_range=(0.0, 1e6), read_only=False),
    ParamSpec('sim.speed', 1.0, 'Simulated clock relative to real time.',
              value_range=(0.01, 100.0)),
)

#: Parameters that may change while running (the rest are read once at start).
DYNAMIC = tuple(s.name for s in PARAMS if not s.read_only)

_ECHO_QOS = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                       reliability=ReliabilityPolicy.RELIABLE)
_IMAGE_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                        reliability=qos_profile_sensor_data.reliability,
                        durability=qos_profile_sensor_data.durability)
_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}


def settings_from_params(p: Dict[str, Any]) -> SonarSettings:
    """Build the sonar settings from parameter values (raises AvsInputError naming them)."""
    chirp = ChirpConfig(sample_rate=int(p['sample_rate']), f_start=p['chirp.f_start'],
                        f_end=p['chirp.f_end'], duration=p['chirp.duration'],
                        method=p['chirp.method'], fade=p['chirp.fade'],
                        amplitude=p['chirp.amplitude'])
    return SonarSettings(
        chirp=chirp, max_range=p['max_range'], speed_of_sound=p['speed_of_sound'],
        window_samples=int(p['window_samples']) or None,
        lead_in_samples=int(p['lead_in_samples']), reverb_guard=p['reverb_guard'],
        max_rate=p['max_rate'], max_request_age=p['max_request_age'],
        max_latency=p['max_latency'], min_peak_ratio=p['min_peak_ratio'], gain=p['gain'],
        clip_level=p['clip_level'], channel_map=tuple(int(c) for c in p['channel_map']),
        output_channels=tuple(int(c) for c in p['output_channels']))


def _sim_pose(values: List[float]) -> Any:
    from avs_net_ros.sim.rig import CameraPose

    if len(values) != 4:
        raise AvsInputError(f'sim.pose must be [x, y, z, yaw], got {list(values)}')
    return CameraPose(*(float(v) for v in values))


def _make_backend(p: Dict[str, Any], sample_rate: int) -> Any:
    if p['backend'] == 'sounddevice':
        return SoundDeviceBackend(p['device'] or None, blocksize=int(p['blocksize']))
    from avs_net_ros.audio.simroom import SceneRoom, SimulatedRoomBackend
    from avs_net_ros.core.acoustics import ChirpConfig as _Chirp
    from avs_net_ros.sim.acoustics import AcousticConfig
    from avs_net_ros.sim.scene import shoebox

    size = [float(v) for v in p['sim.room_size']]
    if len(size) != 3:
        raise AvsInputError(f'sim.room_size must be [length, width, height], got {size}')
    room = SceneRoom(shoebox(*size), config=AcousticConfig(
        sample_rate=sample_rate, chirp=_Chirp(sample_rate=sample_rate)))
    return SimulatedRoomBackend(room, _sim_pose(p['sim.pose']),
                                blocksize=int(p['blocksize']) or 512,
                                latency_samples=int(p['sim.latency_samples']),
                                noise_level=p['sim.noise_level'],
                                input_gain=p['sim.input_gain'], speed=p['sim.speed'])


class ChirpEmitterNode(LifecycleMixin, LifecycleNode):
    """Chirps on camera frames and publishes the binaural echoes (see module docstring).

    A lifecycle node (see ``lifecycle``): construction declares the parameters and starts the
    diagnostics; ``configure`` builds the settings and opens the audio stream (FAILURE naming
    the problem, e.g. a missing device with the list of devices); ``activate`` subscribes to
    the camera (chirps start) and enables the outputs; ``deactivate`` unsubscribes (no more
    chirps or echoes); ``cleanup`` closes the stream.
    """

    configure_errors = (AudioDeviceError, ValueError, OSError)

    def __init__(self, **kwargs: Any) -> None:
        """Declare parameters and start diagnostics; the node is unconfigured."""
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS, check=False)
        self.settings: Optional[SonarSettings] = None
        self.backend: Any = None
        self.engine: Optional[SonarEngine] = None
        self.pub_echo = None
        self.rig_tf: Optional[RigTf] = None
        self._inputs: List[Any] = []
        self._info: Optional[EchoInfo] = None
        self.published = 0
        self.poses_refused = 0
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)
        self.create_timer(self.params['diagnostics_period'], self.publish_diagnostics)

    # -- lifecycle transitions (see lifecycle.LifecycleMixin) ---------------------------------

    def _configure(self) -> None:
        """Build the settings, open the audio stream (warm-up starts) and the outputs.

        Raises:
            AudioDeviceError: the audio device is missing (the message lists the devices).
            AvsInputError: the parameters do not make valid sonar settings.
            ValueError: a parameter is outside its choices.

        """
        check_choices(PARAMS, self.params)
        self.settings = settings_from_params(self.params)
        p = self.params
        if p['publish_rig_tf']:
            rig = RigGeometry(ear_spacing=p['ear_spacing'],
                              speaker_offset=tuple(p['speaker_offset']))
            self.rig_tf = RigTf(self, rig, p['camera_xyz'], frames_from(p, p['camera_frame']),
                                pose=False)
        self.backend = _make_backend(self.params, self.settings.sample_rate)
        self.pub_echo = self.create_lifecycle_publisher(EchoFrame, 'echoes', _ECHO_QOS)
        self.published = 0
        self.engine = SonarEngine(self.settings, self.backend, self._on_echo, self._on_info,
                                  warmup=self.params['warmup'], log=self._log)
        self.engine.start()
        s = self.settings
        self.get_logger().info(
            f'audio open on {self._where()} at {s.sample_rate} Hz: window {s.window} samples '
            f'({s.max_range:g} m), at most {s.rate_limit:.2f} chirps/s')

    def _activate(self) -> None:
        """Subscribe to the camera (each frame asks for a chirp)."""
        self._inputs = [self.create_subscription(Image, 'image', self._on_image, _IMAGE_QOS)]
        if self.params['backend'] == 'sim':
            from geometry_msgs.msg import PoseStamped
            self._inputs.append(self.create_subscription(PoseStamped, 'sim_pose',
                                                         self._on_pose, 5))

    def _deactivate(self) -> None:
        """Unsubscribe: no more chirp requests (a chirp in flight is not published)."""
        for sub in self._inputs:
            self.destroy_subscription(sub)
        self._inputs = []

    def _release(self) -> None:
        """Close the audio stream and destroy the outputs."""
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        if self.pub_echo is not None:
            self.destroy_lifecycle_publisher(self.pub_echo)
        self.pub_echo = None
        if self.rig_tf is not None:
            self.rig_tf.destroy()
            self.rig_tf = None
        self.backend = None
        self._info = None

    def _where(self) -> str:
        if self.params['backend'] == 'sounddevice' and self.backend is not None:
            return f'device {self.backend.describe()}'
        return f'simulated room {self.params["sim.room_size"]}'

    # -- ROS callbacks ------------------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        engine = self.engine
        if engine is not None:
            engine.request(header_copy(msg.header, self.params['speaker_frame']))

    def _on_pose(self, msg: Any) -> None:
        from avs_net_ros.sim.rig import CameraPose

        q, p = msg.pose.orientation, msg.pose.position
        yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
        pitch = math.asin(max(-1.0, min(1.0, 2 * (q.w * q.y - q.z * q.x))))
        backend = self.backend
        if backend is None:
            return
        try:
            backend.set_pose(CameraPose(p.x, p.y, p.z, yaw, -pitch))
        except AvsInputError as e:
            self.poses_refused += 1
            self.get_logger().warning(f'sim_pose ignored: {e}', throttle_duration_sec=1.0)

    def _validate_params(self, params: List[Any]) -> SetParametersResult:
        values = dict(self.params)
        values.update({p.name: p.value for p in params})
        try:
            settings_from_params(values)
        except AvsInputError as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def _apply_params(self, params: List[Any]) -> None:
        changed = {p.name: p.value for p in params if p.name in DYNAMIC}
        if not changed:
            return
        self.params.update(changed)
        self.get_logger().info(f'parameters changed: {changed}')
        backend, engine = self.backend, self.engine
        if engine is None:
            return  # not configured: configure reads the new values
        if self.params['backend'] == 'sim':
            backend.noise_level = float(self.params['sim.noise_level'])
            backend.input_gain = float(self.params['sim.input_gain'])
        self.settings = settings_from_params(self.params)
        engine.update_settings(self.settings)

    # -- engine callbacks (worker thread) -----------------------------------------------------

    def _on_echo(self, result: EchoResult) -> None:
        pub, info = self.pub_echo, self._info
        if pub is None or not pub.is_activated or info is None:
            return  # deactivated while the chirp was in flight
        pub.publish(echo_to_frame(result.echo, info, result.tag))
        self.published += 1

    def _on_info(self, info: Dict[str, Any]) -> None:
        # the engine reports its settings before its first echo and whenever they change
        self._info = EchoInfo.from_dict(info)

    def _log(self, level: int, message: str) -> None:
        log = self.get_logger()
        if level >= logging.ERROR:
            log.error(message, throttle_duration_sec=1.0)
        elif level >= logging.WARNING:
            log.warning(message, throttle_duration_sec=1.0)
        else:
            log.info(message)

    # -- diagnostics --------------------------------------------------------------------------

    def publish_diagnostics(self) -> None:
        """Publish the sonar's health (and the lifecycle state) on /diagnostics.

        Not active: WARN, or ERROR with the reason when the last configure failed.
        """
        engine, state = self.engine, state_of(self)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        hw = 'simulated room' if self.params['backend'] == 'sim' else (
            str(self.backend.describe()) if self.backend is not None
            else f'device {self.params["device"] or "default"}')
        values = {'lifecycle_state': state, 'echoes_published': str(self.published),
                  'sim_poses_refused': str(self.poses_refused)}
        if engine is not None:
            status = engine.status()
            values.update(status.values)
            level, message = _LEVELS[status.level], status.message
        else:
            level, message = DiagnosticStatus.WARN, 'audio closed'
        if state != ACTIVE:
            level = DiagnosticStatus.ERROR if self.failure else max(
                level, DiagnosticStatus.WARN)
            message = f'{state}: {self.failure or message}'
        if self.failure:
            values['last_error'] = self.failure
        msg.status = [DiagnosticStatus(
            level=level, name=f'{self.get_name()}: sonar', hardware_id=hw, message=message,
            values=[KeyValue(key=k, value=str(v)) for k, v in sorted(values.items())])]
        self.pub_diag.publish(msg)

    def destroy_node(self) -> None:
        """Stop the audio stream, then destroy the node."""
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    """Run the node (``ros2 run avs_net_ros chirp_emitter``)."""
    return run_node(ChirpEmitterNode, NODE_NAME, args,
                    (AudioDeviceError, AvsInputError, ValueError))


if __name__ == '__main__':
    raise SystemExit(main())
