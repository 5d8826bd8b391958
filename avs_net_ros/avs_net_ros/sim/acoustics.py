"""Binaural chirp recordings of a :class:`Scene` with pyroomacoustics.

The room is the same geometry the camera sees: the extruded floor plan (walls, floor, ceiling
with their materials' measured octave-band absorption) plus each box's five visible faces as
walls whose normals point into the box. Room impulse responses come from the image-source
method, optionally combined with ray tracing for the late tail of large halls.

A recording is: the chirp emitted at sample ``emit_sample``, convolved with the speaker-to-ear
impulse responses (the direct path included), times a gain, plus white sensor noise, at
44.1 kHz. pyroomacoustics delays every impulse response by half its fractional-delay filter
(``frac_delay_length // 2`` samples); that delay is removed here, so an echo from a surface at
path length L arrives exactly ``L / c`` seconds after emission.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from avs_net_ros.core.acoustics import ChirpConfig, make_chirp, speed_of_sound
from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.sim.materials import get_material
from avs_net_ros.sim.rig import CameraPose, RigGeometry
from avs_net_ros.sim.scene import Scene

import numpy as np
import pyroomacoustics as pra
from pyroomacoustics.directivities import Cardioid, DirectionVector
from scipy import signal


@dataclass(frozen=True)
class AcousticConfig:
    """How recordings are simulated.

    Attributes:
        sample_rate: Hz (BatVision: 44100).
        num_samples: Recording length (BV2 files: 20000; BV1: 4410).
        emit_sample: Sample at which the chirp leaves the speaker. The default puts the
            direct sound (speaker 8 cm from the ears) near sample 200-290, as in the real BV2
            sample; models record the resulting lead-in in their contract.
        chirp: The emitted chirp (the core's ChirpConfig).
        temperature_c: Air temperature; sets the speed of sound (core formula).
        max_order: Image-source order (reflections per path) of the room shell (floor plan,
            floor, ceiling).
        box_order: Image-source order for paths that involve boxes. The generic image-source
            method grows as walls**order, so box reflections (and their occlusion of the
            shell's paths) are added up to this order as a correction:
            ``ISM(shell, max_order) + ISM(shell+boxes, box_order) - ISM(shell, box_order)``.
        ray_tracing: Add pyroomacoustics' ray-traced late reverberation (slower, ~5 s per
            pose; helps in large halls where the image-source tail is sparse). Its ray tracer
            has no directivity, so speaker and ears are omnidirectional then.
        air_absorption: Frequency-dependent air absorption.
        gain: Linear gain from the simulated pressure to full-scale samples.
        noise_rms: RMS of the white sensor noise (full-scale units; the real BV2 floor is
            about 0.005).

    """

    sample_rate: int = 44100
    num_samples: int = 20000
    emit_sample: int = 192
    chirp: ChirpConfig = ChirpConfig()
    temperature_c: float = 20.0
    max_order: int = 6
    box_order: int = 3
    ray_tracing: bool = False
    air_absorption: bool = True
    gain: float = 0.35
    noise_rms: float = 0.003

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a recording."""
        if self.sample_rate != self.chirp.sample_rate:
            raise AvsInputError(f'acoustic sample_rate {self.sample_rate} differs from the '
                                f'chirp sample_rate {self.chirp.sample_rate}')
        if not 0 <= self.emit_sample < self.num_samples:
            raise AvsInputError(f'emit_sample {self.emit_sample} outside a recording of '
                                f'{self.num_samples} samples')
        if min(self.max_order, self.box_order, self.noise_rms) < 0 or self.gain <= 0:
            raise AvsInputError('max_order, box_order and noise_rms must be >= 0, gain > 0')

    @property
    def speed_of_sound(self) -> float:
        """Speed of sound (m/s) used by the simulation."""
        return speed_of_sound(self.temperature_c)


def _material(name: str) -> pra.Material:
    m = get_material(name)
    return pra.Material(m.absorption, m.scattering)


def _box_walls(scene: Scene, octave_bands):
    walls = []
    for j, b in enumerate(scene.boxes):
        mat = _material(b.material)
        mat.resample(octave_bands)
        x0, y0, x1, y1, h = b.x0, b.y0, b.x1, b.y1, b.height
        # Corner order gives each face a normal pointing into the box (pyroomacoustics'
        # convention: normals point out of the air volume).
        faces = {
            'xlo': [[x0, y0, 0], [x0, y1, 0], [x0, y1, h], [x0, y0, h]],
            'xhi': [[x1, y0, 0], [x1, y0, h], [x1, y1, h], [x1, y1, 0]],
            'ylo': [[x0, y0, 0], [x0, y0, h], [x1, y0, h], [x1, y0, 0]],
            'yhi': [[x0, y1, 0], [x1, y1, 0], [x1, y1, h], [x0, y1, h]],
            'top': [[x0, y0, h], [x0, y1, h], [x1, y1, h], [x1, y0, h]],
        }
        for name, corners in faces.items():
            walls.append(pra.wall_factory(
                np.asarray(corners, dtype=np.float32).T,
                mat.energy_absorption['coeffs'], mat.scattering['coeffs'],
                name=f'box{j}_{name}'))
    return walls


def build_room(scene: Scene, config: AcousticConfig, max_order: Optional[int] = None,
               with_boxes: bool = True) -> pra.Room:
    """Return a pyroomacoustics room of ``scene`` (no sources or microphones yet)."""
    wall_mats = [_material(m) for m in scene.wall_materials]
    base = pra.Room.from_corners(scene.floor_plan.T, fs=config.sample_rate, max_order=1,
                                 materials=wall_mats)
    base.extrude(scene.height, materials={'floor': _material(scene.floor_material),
                                          'ceiling': _material(scene.ceiling_material)})
    walls = list(base.walls) + (_box_walls(scene, base.octave_bands) if with_boxes else [])
    order = config.max_order if max_order is None else max_order
    room = pra.Room(walls, fs=config.sample_rate, max_order=order,
                    air_absorption=config.air_absorption, ray_tracing=config.ray_tracing,
                    use_rand_ism=False)
    room.set_sound_speed(config.speed_of_sound)
    if with_boxes and scene.boxes:
        # pyroomacoustics' parity test counts the floor under a box as a second crossing and
        # calls points beside boxes "outside"; impulse_responses checks containment itself.
        room.is_inside = _inside_checked_by_caller
    if config.ray_tracing:
        room.set_ray_tracing(n_rays=4000, receiver_radius=0.5, energy_thres=1e-6)
    return room


def _inside_checked_by_caller(p, include_borders: bool = True) -> bool:
    return True


def _directivity(kind: str, azimuth_deg: float, colatitude_deg: float = 90.0):
    if kind == 'omni':
        return None
    return Cardioid(DirectionVector(azimuth=azimuth_deg, colatitude=colatitude_deg,
                                    degrees=True), gain=1.0)


def impulse_responses(scene: Scene, pose: CameraPose, rig: RigGeometry = RigGeometry(),
                      config: AcousticConfig = AcousticConfig()) -> np.ndarray:
    """Return (2, L) float32 speaker-to-ear impulse responses, sample 0 = emission time."""
    speaker, mics = rig.positions(pose)
    for p in (speaker, mics[:, 0], mics[:, 1]):
        if not scene.contains(p[0], p[1]) or not 0 < p[2] < scene.height:
            raise AvsInputError(f'rig point {np.round(p, 3).tolist()} is outside the room')
    if not scene.boxes or config.box_order >= config.max_order:
        return _ism(build_room(scene, config), speaker, mics, pose, rig, config)
    parts = (_ism(build_room(scene, config, with_boxes=False), speaker, mics, pose, rig, config),
             _ism(build_room(scene, config, config.box_order), speaker, mics, pose, rig,
                  config),
             _ism(build_room(scene, config, config.box_order, with_boxes=False), speaker, mics,
                  pose, rig, config))
    out = np.zeros((2, max(p.shape[1] for p in parts)), dtype=np.float32)
    for p, sign in zip(parts, (1, 1, -1)):
        out[:, :p.shape[1]] += sign * p
    return out


def _ism(room: pra.Room, speaker: np.ndarray, mics: np.ndarray, pose: CameraPose,
         rig: RigGeometry, config: AcousticConfig) -> np.ndarray:
    yaw = np.degrees(pose.yaw)
    colat = 90.0 - np.degrees(pose.pitch)
    if config.ray_tracing or rig.speaker_directivity == 'omni':
        room.add_source(speaker)
    else:
        room.add_source(speaker, directivity=_directivity(rig.speaker_directivity, yaw, colat))
    if rig.mic_directivity == 'omni' or config.ray_tracing:
        room.add_microphone_array(mics)
    else:
        dirs = [_directivity('cardioid', yaw + 45.0), _directivity('cardioid', yaw - 45.0)]
        room.add_microphone_array(mics, directivity=dirs)
    room.compute_rir()
    shift = pra.constants.get('frac_delay_length') // 2
    # Nothing after the end of the recording is ever heard.
    keep = config.num_samples - config.emit_sample
    length = min(max(len(room.rir[m][0]) for m in range(2)) - shift, keep)
    out = np.zeros((2, length), dtype=np.float32)
    for m in range(2):
        r = np.asarray(room.rir[m][0][shift:shift + length], dtype=np.float32)
        out[m, :len(r)] = r
    if config.ray_tracing:
        out *= _direct_path_scale(room, speaker, mics, out, config)
    return out


def _direct_path_scale(room: pra.Room, speaker: np.ndarray, mics: np.ndarray,
                       rirs: np.ndarray, config: AcousticConfig) -> float:
    """Return the factor that gives a hybrid response the image-source direct-path level.

    pyroomacoustics scales its hybrid (ray-traced) responses differently from pure image-source
    ones; matching the direct sound keeps recordings' levels independent of the method.
    """
    direct = pra.Room(list(room.walls), fs=config.sample_rate, max_order=0,
                      air_absorption=config.air_absorption)
    direct.set_sound_speed(config.speed_of_sound)
    direct.is_inside = _inside_checked_by_caller
    direct.add_source(speaker)
    direct.add_microphone_array(mics)
    direct.compute_rir()
    shift = pra.constants.get('frac_delay_length') // 2
    n = min(64, rirs.shape[1])
    ref = max(np.abs(np.asarray(direct.rir[m][0][shift:shift + n])).max() for m in range(2))
    got = float(np.abs(rirs[:, :n]).max())
    return float(ref / got) if got > 0 else 1.0


def record(rirs: np.ndarray, config: AcousticConfig = AcousticConfig(),
           rng: Optional[np.random.Generator] = None, gain: Optional[float] = None
           ) -> np.ndarray:
    """Return the (2, num_samples) float32 recording of one chirp through ``rirs``.

    ``rng`` draws the sensor noise (None = no noise); ``gain`` overrides ``config.gain``.
    """
    chirp = make_chirp(config.chirp).astype(np.float64)
    n = config.num_samples
    wet = signal.fftconvolve(rirs.astype(np.float64), chirp[None, :], axes=1)
    out = np.zeros((2, n), dtype=np.float64)
    start = config.emit_sample
    m = min(n - start, wet.shape[1])
    out[:, start:start + m] = wet[:, :m]
    out *= config.gain if gain is None else gain
    if rng is not None and config.noise_rms > 0:
        out += rng.normal(0.0, config.noise_rms, size=out.shape)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def path_delay_samples(length_m: float, config: AcousticConfig = AcousticConfig()) -> float:
    """Return the samples after emission at which sound travelling ``length_m`` m arrives."""
    return length_m / config.speed_of_sound * config.sample_rate


def first_echo_delays(scene: Scene, pose: CameraPose, rig: RigGeometry = RigGeometry(),
                      config: AcousticConfig = AcousticConfig()) -> Tuple[float, float]:
    """Return the first-order wall echo delay (samples after emission) for each ear.

    Geometric: the shortest speaker -> wall -> ear path over walls, floor and ceiling (via
    image sources), for checking simulated recordings against physics.
    """
    speaker, mics = rig.positions(pose)
    images = []
    for x0, y0, x1, y1 in scene.edges:
        d = np.array([x1 - x0, y1 - y0]) / np.hypot(x1 - x0, y1 - y0)
        n = np.array([-d[1], d[0]])
        dist = np.dot(speaker[:2] - np.array([x0, y0]), n)
        img = speaker.copy()
        img[:2] -= 2 * dist * n
        images.append(img)
    for z in (0.0, scene.height):
        img = speaker.copy()
        img[2] = 2 * z - img[2]
        images.append(img)
    out = []
    for m in range(2):
        lengths = [np.linalg.norm(img - mics[:, m]) for img in images]
        out.append(path_delay_samples(min(lengths), config))
    return out[0], out[1]
