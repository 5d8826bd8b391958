"""Indoor scene geometry: an extruded rectilinear floor plan, boxes, doors, posters and lamps.

Units are metres, z is up. The floor plan is a simple polygon given counter-clockwise; walls are
its edges extruded from the floor (z = 0) to the ceiling (z = height). Boxes stand on the floor
and are axis-aligned, so both the ray caster and pyroomacoustics (as extra inward-facing walls)
represent them exactly.

``scale`` is the scene's reference length. In a scale-ambiguous scene it is the unit in which
texture periods and light falloff are measured, so :meth:`Scene.scaled` produces a scene whose
image is identical and whose depths and echo delays are all multiplied.
"""

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.sim.materials import get_material

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box on the floor: (x0, y0) to (x1, y1), ``height`` tall."""

    x0: float
    y0: float
    x1: float
    y1: float
    height: float
    material: str = 'cabinet'

    def scaled(self, k: float) -> 'Box':
        """Return the box with all lengths multiplied by ``k``."""
        return replace(self, x0=self.x0 * k, y0=self.y0 * k, x1=self.x1 * k, y1=self.y1 * k,
                       height=self.height * k)


@dataclass(frozen=True)
class Door:
    """A door drawn on wall ``wall`` (edge index), ``offset`` m from the edge's start."""

    wall: int
    offset: float
    width: float = 0.9
    height: float = 2.05

    def scaled(self, k: float) -> 'Door':
        """Return the door with all lengths multiplied by ``k``."""
        return replace(self, offset=self.offset * k, width=self.width * k,
                       height=self.height * k)


@dataclass(frozen=True)
class Poster:
    """A flat picture on wall ``wall``: ``offset`` m along it, ``bottom`` m above the floor.

    Posters only change how the wall looks (blocks of saturated colour in a dark frame, drawn
    from ``seed``); they are too thin to change the echoes.
    """

    wall: int
    offset: float
    bottom: float
    width: float
    height: float
    seed: int = 0

    def scaled(self, k: float) -> 'Poster':
        """Return the poster with all lengths multiplied by ``k``."""
        return replace(self, offset=self.offset * k, bottom=self.bottom * k,
                       width=self.width * k, height=self.height * k)


@dataclass(frozen=True)
class Lamp:
    """A ceiling lamp: an emissive disc of ``radius`` at (x, y) that also lights the room."""

    x: float
    y: float
    radius: float = 0.25
    power: float = 1.0

    def scaled(self, k: float) -> 'Lamp':
        """Return the lamp moved and resized by ``k`` (same power)."""
        return replace(self, x=self.x * k, y=self.y * k, radius=self.radius * k)


@dataclass(frozen=True)
class Scene:
    """A room: floor plan, height, materials, obstacles, doors and lamps.

    Attributes:
        floor_plan: (K, 2) polygon vertices in metres, counter-clockwise, axis-aligned edges.
        height: Ceiling height (m).
        wall_materials: One material name per edge (edge i runs from vertex i to i+1).
        floor_material: Floor material name.
        ceiling_material: Ceiling material name.
        boxes: Box obstacles standing on the floor.
        doors: Doors drawn on walls.
        lamps: Ceiling lamps.
        posters: Pictures on walls (see :class:`Poster`).
        texture_contrast: Factor on every texture's deviation from its material's base colour
            (1 = the catalogue's textures; more gives photometric losses more to match).
        scale: Reference length (m) of a scale-ambiguous scene; see the module docstring.
        scale_ambiguity: When True, textures and lighting are measured in units of ``scale``
            (the image cannot tell the room's absolute size); when False they are in metres
            (a 7.5 cm brick or a lamp's 1/d^2 falloff reveal absolute distance).
        ambient: Ambient light level in [0, 1].
        name: Free-form label (the family and shape it was sampled from).

    """

    floor_plan: np.ndarray
    height: float
    wall_materials: Tuple[str, ...]
    floor_material: str = 'parquet'
    ceiling_material: str = 'ceiling_plaster'
    boxes: Tuple[Box, ...] = ()
    doors: Tuple[Door, ...] = ()
    lamps: Tuple[Lamp, ...] = ()
    posters: Tuple[Poster, ...] = ()
    texture_contrast: float = 1.0
    scale: float = 1.0
    scale_ambiguity: bool = True
    ambient: float = 0.35
    name: str = 'room'
    _edges: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the geometry and precompute the wall edges."""
        plan = np.asarray(self.floor_plan, dtype=np.float64)
        if plan.ndim != 2 or plan.shape[1] != 2 or plan.shape[0] < 3:
            raise AvsInputError(f'floor_plan must be (K>=3, 2), got shape {plan.shape}')
        if _signed_area(plan) <= 0:
            raise AvsInputError('floor_plan must be counter-clockwise with positive area')
        if self.height <= 0 or self.scale <= 0 or self.texture_contrast <= 0:
            raise AvsInputError(f'height, scale and texture_contrast must be positive, got '
                                f'{self.height}, {self.scale}, {self.texture_contrast}')
        if len(self.wall_materials) != len(plan):
            raise AvsInputError(f'{len(self.wall_materials)} wall materials for {len(plan)} '
                                f'walls')
        for name in (*self.wall_materials, self.floor_material, self.ceiling_material,
                     *(b.material for b in self.boxes)):
            get_material(name)
        for door in self.doors:
            if not 0 <= door.wall < len(plan):
                raise AvsInputError(f'door on wall {door.wall}, scene has {len(plan)} walls')
        for poster in self.posters:
            if not 0 <= poster.wall < len(plan):
                raise AvsInputError(f'poster on wall {poster.wall}, scene has {len(plan)} '
                                    f'walls')
        object.__setattr__(self, 'floor_plan', plan)
        object.__setattr__(self, '_edges', np.concatenate([plan, np.roll(plan, -1, 0)], 1))

    @property
    def edges(self) -> np.ndarray:
        """(K, 4) wall edges as x0, y0, x1, y1."""
        return self._edges

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Whether (x, y) is inside the floor plan, ``margin`` m from walls and boxes."""
        if not _point_in_polygon(self.floor_plan, x, y):
            return False
        e = self.edges
        d = e[:, 2:] - e[:, :2]
        t = np.clip(((x - e[:, 0]) * d[:, 0] + (y - e[:, 1]) * d[:, 1])
                    / np.maximum((d ** 2).sum(1), 1e-12), 0, 1)
        dist = np.hypot(e[:, 0] + t * d[:, 0] - x, e[:, 1] + t * d[:, 1] - y)
        if np.any(dist < margin):
            return False
        for b in self.boxes:
            if b.x0 - margin < x < b.x1 + margin and b.y0 - margin < y < b.y1 + margin:
                return False
        return True

    def scaled(self, k: float) -> 'Scene':
        """Return the scene with every length (and ``scale``) multiplied by ``k``."""
        if k <= 0:
            raise AvsInputError(f'scale factor must be positive, got {k}')
        return replace(self, floor_plan=self.floor_plan * k, height=self.height * k,
                       boxes=tuple(b.scaled(k) for b in self.boxes),
                       doors=tuple(d.scaled(k) for d in self.doors),
                       lamps=tuple(la.scaled(k) for la in self.lamps),
                       posters=tuple(p.scaled(k) for p in self.posters), scale=self.scale * k)

    def bounds(self) -> Tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the floor plan."""
        lo = self.floor_plan.min(0)
        hi = self.floor_plan.max(0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _signed_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _point_in_polygon(poly: np.ndarray, x: float, y: float) -> bool:
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide='ignore', invalid='ignore'):
        xs = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return bool(np.count_nonzero(crosses & (x < xs)) % 2)


def shoebox(length: float, width: float, height: float, wall_material: str = 'white_plaster',
            **kwargs) -> Scene:
    """Return a rectangular room [0, length] x [0, width] (a convenience for tests and demos)."""
    plan = np.array([[0, 0], [length, 0], [length, width], [0, width]], dtype=np.float64)
    return Scene(plan, height, (wall_material,) * 4, **kwargs)
