"""A simulated-room backend: the same duplex stream contract, with a room instead of a card.

``SimulatedRoomBackend`` runs a clocked stream on its own thread (real time, or faster with
``speed``): every output block is played by a speaker into a room and recorded by two
microphones, i.e. convolved with the binaural room impulse response of the current pose, after
the device latency (one block plus ``latency_samples``), with optional microphone noise, input
gain and ADC clipping. The engine cannot tell it from a sound card, so the whole node runs
against it unchanged.

The room is anything with ``sample_rate`` and ``impulse_response(pose) -> (2, L)`` (left,
right); ``SceneRoom`` adapts the simulator's scenes (``avs_net_ros.sim``).
"""

import threading
import time
from typing import Any, Callable, Optional

from avs_net_ros.audio.settings import SonarSettings
from avs_net_ros.core.errors import AvsInputError

import numpy as np
from scipy import signal


class SceneRoom:
    """The simulator's scene heard by its rig: binaural impulse responses per camera pose.

    A thin adapter over ``avs_net_ros.sim.acoustics.impulse_responses`` (pyroomacoustics image
    sources on the scene the camera sees), so the sonar hears the same room the simulated
    camera renders.
    """

    def __init__(self, scene: Any = None, rig: Any = None, config: Any = None,
                 gain: Optional[float] = None) -> None:
        """Use ``scene`` (default a 6 x 4 x 3 m shoebox), ``rig`` and acoustic ``config``.

        ``gain`` (pressure to full scale) defaults to ``config.gain``.
        """
        from avs_net_ros.sim.acoustics import AcousticConfig
        from avs_net_ros.sim.rig import RigGeometry
        from avs_net_ros.sim.scene import shoebox

        self.scene = scene if scene is not None else shoebox(6.0, 4.0, 3.0)
        self.rig = rig if rig is not None else RigGeometry()
        self.config = config if config is not None else AcousticConfig()
        self.gain = float(self.config.gain if gain is None else gain)
        self.sample_rate = int(self.config.sample_rate)

    def impulse_response(self, pose: Any) -> np.ndarray:
        """Return (2, L) float32 speaker -> (left, right) responses for a ``CameraPose``.

        Raises:
            AvsInputError: the rig is not inside the room.

        """
        from avs_net_ros.sim.acoustics import impulse_responses

        rir = impulse_responses(self.scene, pose, self.rig, self.config)
        return (rir * np.float32(self.gain)).astype(np.float32)


class SimulatedRoomBackend:
    """A clocked duplex stream whose loopback is a room at the current pose."""

    name = 'sim'

    def __init__(self, room: Any, pose: Any, *, blocksize: int = 512,
                 latency_samples: int = 0, noise_level: float = 0.0, input_gain: float = 1.0,
                 speed: float = 1.0, seed: int = 0,
                 corrupt: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
        """Configure the simulated device.

        Args:
            room: Provides ``sample_rate`` and ``impulse_response(pose)``.
            pose: Initial pose passed to the room.
            blocksize: Frames per block; the device latency is one block plus
                ``latency_samples``.
            latency_samples: Extra round-trip latency of the simulated device.
            noise_level: Standard deviation of white microphone noise (full scale).
            input_gain: Gain before the simulated ADC, which clips at +-1 full scale.
            speed: Clock rate relative to real time (2 = twice as fast; for tests).
            seed: Noise seed.
            corrupt: Optional function applied to every recorded block (fault injection
                for tests: a broken driver producing NaN, a dead channel...).

        """
        if blocksize <= 0 or latency_samples < 0 or noise_level < 0 or speed <= 0:
            raise AvsInputError('sim backend needs blocksize > 0, latency_samples >= 0, '
                                'noise_level >= 0 and speed > 0')
        self.room = room
        self.blocksize = int(blocksize)
        self.latency_samples = int(latency_samples)
        self.noise_level = float(noise_level)
        self.input_gain = float(input_gain)
        self.speed = float(speed)
        self.corrupt = corrupt
        self.error: Optional[str] = None
        self._rng = np.random.default_rng(seed)
        self._rir = np.asarray(room.impulse_response(pose), np.float32)
        self.pose = pose
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def set_pose(self, pose: Any) -> None:
        """Move the sonar; the impulse response is computed here, not in the stream thread."""
        rir = np.asarray(self.room.impulse_response(pose), np.float32)
        self._rir, self.pose = rir, pose

    def start(self, settings: SonarSettings, process: Callable[..., None]) -> None:
        """Start the clocked stream thread.

        Raises:
            AvsInputError: the room's sample rate differs from the settings'.

        """
        if int(self.room.sample_rate) != settings.sample_rate:
            raise AvsInputError(f'simulated room runs at {self.room.sample_rate} Hz, the sonar '
                                f'at {settings.sample_rate} Hz')
        self.stop()
        self.error = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(settings, process),
                                        name='sim-audio', daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        """Whether the stream thread runs without error."""
        return self._thread is not None and self._thread.is_alive() and self.error is None

    def stop(self) -> None:
        """Stop the stream thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def _run(self, settings: SonarSettings, process: Callable[..., None]) -> None:
        bs, sr = self.blocksize, settings.sample_rate
        n_in, n_out = settings.input_channels, settings.num_output_channels
        left, right = settings.channel_map
        delay = bs + self.latency_samples
        tail = np.zeros((delay + bs + 4 * sr, 2), np.float32)
        outdata = np.zeros((bs, n_out), np.float32)
        frames = 0
        t0 = time.monotonic()
        try:
            while not self._stop.is_set():
                mic = tail[:bs].copy()
                if self.noise_level > 0:
                    mic += self._rng.normal(0, self.noise_level, mic.shape).astype(np.float32)
                mic = np.clip(mic * np.float32(self.input_gain), -1.0, 1.0)
                indata = np.zeros((bs, n_in), np.float32)
                indata[:, left], indata[:, right] = mic[:, 0], mic[:, 1]
                if self.corrupt is not None:
                    indata = self.corrupt(indata)
                process(indata, outdata, False)
                tail[:-bs] = tail[bs:]
                tail[-bs:] = 0
                speaker = outdata[:, 0]
                if np.any(speaker):
                    rir = self._rir
                    heard = signal.fftconvolve(speaker[None, :], rir, axes=1).T
                    n = min(heard.shape[0], tail.shape[0] - delay + bs)
                    tail[delay - bs:delay - bs + n] += heard[:n]
                frames += bs
                ahead = t0 + frames / (sr * self.speed) - time.monotonic()
                if ahead > 0:
                    self._stop.wait(ahead)
        except Exception as e:  # noqa: B902 - report any failure as a lost device
            self.error = f'simulated stream failed: {e!r}'
