"""Named scene families: distributions of indoor scenes like those BatVision was recorded in.

A family samples a floor-plan shape ('room', 'corridor', 'lshape', 'hall'), its proportions,
materials, box obstacles, doors and lamps, and how the robot's camera sits in it.

``scale_ambiguity`` (on by default): proportions are sampled relative to the ceiling height,
and the absolute size (the ceiling height) independently; camera height, door and box sizes are
fractions of the room, and textures and lighting are measured in room units (see
:mod:`avs_net_ros.sim.render`). Then the image statistics do not depend on absolute size: a 3 m
room and a 9 m one look alike and only the echoes tell them apart. With it off, the camera sits
at a fixed robot height, doors are 2.05 m x 0.9 m, textures have metric periods and lamps fall off
as 1/d^2, so the image alone carries metric cues.

``photometric_texture`` (0 by default: off): the fraction of scenes dressed for photometric
self-supervision (Monodepth2-style triplets). The catalogue's plaster, concrete and glass walls
and plaster ceilings vary by about a tenth of their brightness, so an SSIM + L1 reprojection
loss has almost nothing to match on most of the image. A dressed scene multiplies every
texture's contrast by ``texture_contrast`` and hangs posters (colour blocks in a dark frame,
``poster_density`` per room unit of wall) on its walls. It is drawn after everything else, so
with 0 the scenes, trajectories and images are those of a family without it.

Families: 'bv2_like' (rooms, corridors, L-shapes and halls up to ~30 m, 30 m max depth) and
'bv1_like' (smaller rooms and corridors, 12 m max depth).
"""

from dataclasses import asdict, dataclass, fields, replace
import math
from typing import Any, Dict, Mapping, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.sim.materials import (CEILING_MATERIALS, FLOOR_MATERIALS, OBJECT_MATERIALS,
                                       WALL_MATERIALS)
from avs_net_ros.sim.rig import CameraPose
from avs_net_ros.sim.scene import Box, Door, Lamp, Poster, Scene

import numpy as np

Range = Tuple[float, float]


@dataclass(frozen=True)
class SceneFamily:
    """Parameters of one scene distribution (all ranges are uniform [low, high]).

    Attributes:
        name: Family name.
        shapes: Shape name -> sampling weight.
        ceiling_height: Absolute ceiling height range (m); the scale of the room.
        room_length, room_width: 'room' proportions (multiples of the ceiling height).
        corridor_length, corridor_width: 'corridor' proportions.
        hall_length, hall_width: 'hall' proportions.
        lshape_arm: L-shape arm length and width (multiples of the ceiling height).
        max_extent: Largest horizontal size (m); bigger samples are shrunk.
        boxes: Range of the number of box obstacles.
        doors: Range of the number of doors.
        lamps: Range of the number of ceiling lamps (0 = diffuse overhead light).
        scale_ambiguity: See the module docstring.
        camera_height: Camera height as a fraction of the ceiling (ambiguous mode).
        camera_height_m: Camera height in metres (when scale_ambiguity is off).
        pitch_deg: Camera pitch range (degrees).
        max_depth: Depth range the dataset is evaluated on (m).
        sensor_max_range: Farthest depth the simulated stereo camera reports (m).
        step: Robot translation per frame (m, in a room of scale 1).
        turn_deg: Largest heading change per frame (degrees).
        photometric_texture: Fraction of scenes dressed for photometric losses (see the module
            docstring); 0 = none.
        texture_contrast: Texture contrast factor of a dressed scene.
        poster_density: Posters per room unit of wall length in a dressed scene.

    """

    name: str = 'bv2_like'
    shapes: Mapping[str, float] = None
    ceiling_height: Range = (2.5, 6.0)
    room_length: Range = (1.6, 4.5)
    room_width: Range = (1.3, 3.5)
    corridor_length: Range = (4.0, 10.0)
    corridor_width: Range = (0.6, 1.1)
    hall_length: Range = (4.0, 7.0)
    hall_width: Range = (3.0, 5.5)
    lshape_arm: Range = (2.5, 6.0)
    max_extent: float = 32.0
    boxes: Tuple[int, int] = (0, 3)
    doors: Tuple[int, int] = (0, 2)
    lamps: Tuple[int, int] = (0, 3)
    scale_ambiguity: bool = True
    camera_height: Range = (0.3, 0.45)
    camera_height_m: Range = (0.9, 1.1)
    pitch_deg: Range = (-5.0, 5.0)
    max_depth: float = 30.0
    sensor_max_range: float = 20.0
    step: float = 0.06
    turn_deg: float = 1.5
    photometric_texture: float = 0.0
    texture_contrast: float = 3.0
    poster_density: float = 0.7

    def __post_init__(self) -> None:
        """Fill default shapes and reject unknown ones and bad dressing settings."""
        shapes = dict(self.shapes or {'room': 0.4, 'corridor': 0.25, 'lshape': 0.2,
                                      'hall': 0.15})
        unknown = set(shapes) - {'room', 'corridor', 'lshape', 'hall'}
        if unknown or not shapes or min(shapes.values()) < 0 or sum(shapes.values()) <= 0:
            raise AvsInputError(f'family {self.name!r}: bad shapes {shapes}')
        object.__setattr__(self, 'shapes', shapes)
        if not 0 <= self.photometric_texture <= 1:
            raise AvsInputError(f'family {self.name!r}: photometric_texture is a fraction of '
                                f'scenes in [0, 1], got {self.photometric_texture}')
        if self.texture_contrast <= 0 or self.poster_density < 0:
            raise AvsInputError(f'family {self.name!r}: need texture_contrast > 0 and '
                                f'poster_density >= 0, got {self.texture_contrast}, '
                                f'{self.poster_density}')

    def to_dict(self) -> Dict[str, Any]:
        """Return the parameters as plain YAML-friendly types.

        The dressing settings are left out when ``photometric_texture`` is 0 (they do nothing
        then), so an undressed family's ``sim_meta.yaml`` reads as before they existed.
        """
        d = asdict(self)
        if not self.photometric_texture:
            for key in ('photometric_texture', 'texture_contrast', 'poster_density'):
                del d[key]
        d['shapes'] = dict(self.shapes)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


#: BatVision V2-like: Mines Paris corridors, rooms, stairwell halls; max depth 30 m.
BV2_LIKE = SceneFamily()

#: BatVision V1-like: smaller rooms and corridors; max depth 12 m.
BV1_LIKE = SceneFamily(
    name='bv1_like', shapes={'room': 0.5, 'corridor': 0.35, 'lshape': 0.15},
    ceiling_height=(2.4, 3.6), room_length=(1.3, 3.5), room_width=(1.1, 2.8),
    corridor_length=(3.0, 7.0), corridor_width=(0.6, 1.0), lshape_arm=(2.0, 4.0),
    max_extent=16.0, boxes=(0, 2), max_depth=12.0, sensor_max_range=12.0)

FAMILIES: Dict[str, SceneFamily] = {f.name: f for f in (BV2_LIKE, BV1_LIKE)}


def get_family(name: str) -> SceneFamily:
    """Return the built-in family called ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise AvsInputError(f'unknown scene family {name!r}; known: {sorted(FAMILIES)}') \
            from None


def family_from_dict(data: Mapping[str, Any]) -> SceneFamily:
    """Build a family from a mapping (a YAML file): 'base' names a family to start from."""
    data = dict(data)
    base = get_family(data.pop('base', 'bv2_like'))
    known = {f.name for f in fields(SceneFamily)}
    unknown = set(data) - known
    if unknown:
        raise AvsInputError(f'unknown scene family keys {sorted(unknown)}')
    conv = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
    return replace(base, **conv)


def load_family_file(path: str) -> SceneFamily:
    """Build a family from a YAML file (see ``config/sim/``).

    Raises:
        AvsInputError: the file is missing, is not a mapping, or has unknown keys.

    """
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise AvsInputError(f'scene family file {path}: {e.strerror}') from None
    if not isinstance(data, dict):
        raise AvsInputError(f'scene family file {path} must hold a mapping, got '
                            f'{type(data).__name__}')
    return family_from_dict(data)


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _plan(shape: str, fam: SceneFamily, h: float, rng: np.random.Generator) -> np.ndarray:
    if shape == 'room':
        a, b = _u(rng, fam.room_length) * h, _u(rng, fam.room_width) * h
    elif shape == 'corridor':
        a, b = _u(rng, fam.corridor_length) * h, _u(rng, fam.corridor_width) * h
    elif shape == 'hall':
        a, b = _u(rng, fam.hall_length) * h, _u(rng, fam.hall_width) * h
    else:
        la, lb = _u(rng, fam.lshape_arm) * h, _u(rng, fam.lshape_arm) * h
        wa = _u(rng, fam.corridor_width) * h * 1.5
        wb = _u(rng, fam.corridor_width) * h * 1.5
        k = min(1.0, fam.max_extent / max(la, lb))
        la, lb, wa, wb = la * k, lb * k, min(wa * k, 0.8 * lb * k), min(wb * k, 0.8 * la * k)
        return np.array([[0, 0], [la, 0], [la, wb], [wa, wb], [wa, lb], [0, lb]])
    k = min(1.0, fam.max_extent / max(a, b))
    a, b = a * k, b * k
    if rng.random() < 0.5:
        a, b = b, a
    return np.array([[0, 0], [a, 0], [a, b], [0, b]])


def sample_scene(family: SceneFamily, rng: np.random.Generator) -> Scene:
    """Draw one scene from ``family``."""
    names = sorted(family.shapes)
    p = np.array([family.shapes[n] for n in names], dtype=np.float64)
    shape = names[int(rng.choice(len(names), p=p / p.sum()))]
    h = _u(rng, family.ceiling_height)
    plan = _plan(shape, family, h, rng)
    unit = h / 3.0 if family.scale_ambiguity else 1.0
    walls = tuple(str(rng.choice(WALL_MATERIALS)) for _ in plan) if rng.random() < 0.3 else \
        (str(rng.choice(WALL_MATERIALS)),) * len(plan)
    scene = Scene(plan, h, walls, str(rng.choice(FLOOR_MATERIALS)),
                  str(rng.choice(CEILING_MATERIALS)), scale=unit,
                  scale_ambiguity=family.scale_ambiguity,
                  ambient=float(rng.uniform(0.25, 0.45)), name=f'{family.name}/{shape}')
    boxes = []
    for _ in range(int(rng.integers(family.boxes[0], family.boxes[1] + 1))):
        for _try in range(20):
            bw, bd = rng.uniform(0.4, 1.2, 2) * unit
            bh = float(rng.uniform(0.4, 1.8)) * unit
            x0, y0, x1, y1 = scene.bounds()
            if x1 - x0 < bw + 1 or y1 - y0 < bd + 1:
                break
            bx, by = rng.uniform(x0, x1 - bw), rng.uniform(y0, y1 - bd)
            corners = [(bx, by), (bx + bw, by), (bx, by + bd), (bx + bw, by + bd)]
            # Keep a gap to walls and other boxes so the room stays one connected volume.
            if all(scene.contains(cx, cy, margin=0.3 * unit) for cx, cy in corners) and \
                    not any(_overlap(bx, by, bw, bd, b, 0.5 * unit) for b in boxes):
                boxes.append(Box(float(bx), float(by), float(bx + bw), float(by + bd), bh,
                                 str(rng.choice(OBJECT_MATERIALS))))
                break
    doors = []
    dw, dh = (0.3 * h, 0.68 * h) if family.scale_ambiguity else (0.9, 2.05)
    for _ in range(int(rng.integers(family.doors[0], family.doors[1] + 1))):
        wall = int(rng.integers(len(plan)))
        x0, y0, x1, y1 = scene.edges[wall]
        length = math.hypot(x1 - x0, y1 - y0)
        if length > dw + 0.4 and dh < 0.95 * h:
            doors.append(Door(wall, float(rng.uniform(0.2, length - dw - 0.2)), dw, dh))
    lamps = []
    for _ in range(int(rng.integers(family.lamps[0], family.lamps[1] + 1))):
        x0, y0, x1, y1 = scene.bounds()
        for _try in range(20):
            lx, ly = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if scene.contains(lx, ly, margin=0.3 * unit):
                radius = 0.25 * unit if family.scale_ambiguity else 0.25
                lamps.append(Lamp(float(lx), float(ly), radius, float(rng.uniform(0.7, 1.3))))
                break
    scene = replace(scene, boxes=tuple(boxes), doors=tuple(doors), lamps=tuple(lamps))
    # Drawn last and only when on, so an undressed family's random stream is unchanged.
    if family.photometric_texture and rng.random() < family.photometric_texture:
        scene = dress_for_photometry(scene, family, rng)
    return scene


def dress_for_photometry(scene: Scene, family: SceneFamily, rng: np.random.Generator) -> Scene:
    """Return ``scene`` with texture contrast ``family.texture_contrast`` and posters.

    Posters sit in slots along each wall (``family.poster_density`` per room unit), each
    0.4 to 1.0 units wide and tall, 0.3 to 1.2 units above the floor and below the ceiling.
    """
    unit = scene.scale
    posters = []
    for wall, (x0, y0, x1, y1) in enumerate(scene.edges):
        length = math.hypot(x1 - x0, y1 - y0)
        n = int(rng.poisson(family.poster_density * length / unit))
        for _ in range(n):
            w, h = rng.uniform(0.4, 1.0, 2) * unit
            bottom = float(rng.uniform(0.3, 1.2)) * unit
            if w > length - 0.2 or bottom + h > 0.95 * scene.height:
                continue
            posters.append(Poster(wall, float(rng.uniform(0.1, length - w - 0.1)), bottom,
                                  float(w), float(h), int(rng.integers(1 << 30))))
    return replace(scene, texture_contrast=float(family.texture_contrast),
                   posters=tuple(posters))


def _overlap(x: float, y: float, w: float, d: float, b: Box, gap: float) -> bool:
    return not (x > b.x1 + gap or x + w < b.x0 - gap or y > b.y1 + gap or y + d < b.y0 - gap)


def camera_height(family: SceneFamily, scene: Scene, rng: np.random.Generator) -> float:
    """Camera height for ``scene``: a fraction of the ceiling, or metric (non-ambiguous)."""
    if family.scale_ambiguity:
        return _u(rng, family.camera_height) * scene.height
    return min(_u(rng, family.camera_height_m), 0.8 * scene.height)


def sample_pose(family: SceneFamily, scene: Scene, rng: np.random.Generator,
                margin: float = 0.5) -> CameraPose:
    """Draw a camera pose inside ``scene`` at least ``margin`` room units from walls/boxes."""
    x0, y0, x1, y1 = scene.bounds()
    m = margin * scene.scale
    for _ in range(1000):
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if scene.contains(x, y, margin=m):
            return CameraPose(float(x), float(y), camera_height(family, scene, rng),
                              float(rng.uniform(-np.pi, np.pi)),
                              float(np.radians(_u(rng, family.pitch_deg))))
    raise AvsInputError(f'no free camera position in scene {scene.name}')


def sample_tour(family: SceneFamily, scene: Scene, num_poses: int, rng: np.random.Generator,
                margin: float = 0.5) -> Tuple[CameraPose, ...]:
    """Return ``num_poses`` independent poses spread over ``scene`` (a robot touring a room).

    Unlike ``sample_trajectory``, no two views overlap, so figures averaged over a tour describe
    the room rather than one view of it.
    """
    return tuple(sample_pose(family, scene, rng, margin) for _ in range(int(num_poses)))


def sample_trajectory(family: SceneFamily, scene: Scene, num_frames: int,
                      rng: np.random.Generator, margin: float = 0.5) -> Tuple[CameraPose, ...]:
    """Return ``num_frames`` consecutive poses of a robot wandering through ``scene``.

    The robot moves ``family.step`` room units per frame with a smoothly varying heading and
    turns away from walls and boxes, so consecutive frames overlap (self-supervised triplets,
    rosbags).
    """
    pose = sample_pose(family, scene, rng, margin)
    m = margin * scene.scale
    step = family.step * scene.scale
    turn = np.radians(family.turn_deg)
    rate = 0.0
    poses = [pose]
    for _ in range(num_frames - 1):
        rate = float(np.clip(0.9 * rate + rng.normal(0, 0.3 * turn), -turn, turn))
        yaw = pose.yaw + rate
        for attempt in range(60):
            nx, ny = pose.x + step * np.cos(yaw), pose.y + step * np.sin(yaw)
            if scene.contains(nx, ny, margin=m):
                break
            # Blocked: turn on the spot a little further each attempt (a robot avoiding walls).
            yaw += np.sign(rate or 1.0) * 0.1
            nx, ny = pose.x, pose.y
        pitch = float(np.clip(pose.pitch + rng.normal(0, np.radians(0.2)),
                              *np.radians(family.pitch_deg)))
        pose = CameraPose(float(nx), float(ny), pose.z,
                          float(np.arctan2(np.sin(yaw), np.cos(yaw))), pitch)
        poses.append(pose)
    return tuple(poses)
