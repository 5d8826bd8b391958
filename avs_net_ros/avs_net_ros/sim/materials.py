"""Surface materials: how a surface looks (procedural texture) and how it sounds.

Each material couples a texture (kind, colours, period) with pyroomacoustics' measured
absorption and scattering, so what the camera sees and what the microphones hear come from
the same surface.
"""

from dataclasses import dataclass
from typing import Dict, Tuple

from avs_net_ros.core.errors import AvsInputError


@dataclass(frozen=True)
class Material:
    """One surface material.

    Attributes:
        name: Catalogue key.
        texture: Procedural texture kind: 'plaster', 'brick', 'planks', 'tiles', 'concrete',
            'carpet' or 'panels'.
        color: Base RGB in [0, 1].
        accent: Second RGB (mortar, grout, plank seams) in [0, 1].
        period: Texture repeat (brick height, plank width, tile size) in metres for a room of
            scale 1; scaled with the room when the scene is scale-ambiguous.
        absorption: pyroomacoustics material name (octave-band energy absorption).
        scattering: Energy scattering coefficient (used by ray tracing only).

    """

    name: str
    texture: str
    color: Tuple[float, float, float]
    accent: Tuple[float, float, float]
    period: float
    absorption: str
    scattering: float = 0.1


_CATALOGUE = (
    Material('white_plaster', 'plaster', (0.82, 0.80, 0.76), (0.70, 0.68, 0.64), 0.6,
             'rough_lime_wash'),
    Material('painted_plasterboard', 'plaster', (0.72, 0.76, 0.78), (0.60, 0.64, 0.66), 0.8,
             'plasterboard'),
    Material('red_brick', 'brick', (0.55, 0.27, 0.18), (0.78, 0.75, 0.70), 0.075,
             'brickwork', 0.3),
    Material('concrete', 'concrete', (0.58, 0.58, 0.56), (0.45, 0.45, 0.44), 1.0,
             'rough_concrete', 0.2),
    Material('wood_panels', 'panels', (0.55, 0.40, 0.25), (0.35, 0.24, 0.14), 0.6,
             'wooden_lining', 0.15),
    Material('glass', 'plaster', (0.55, 0.65, 0.70), (0.45, 0.55, 0.60), 1.5,
             'glass_window', 0.05),
    Material('parquet', 'planks', (0.60, 0.43, 0.26), (0.42, 0.29, 0.17), 0.12,
             'stage_floor', 0.1),
    Material('floor_tiles', 'tiles', (0.70, 0.70, 0.68), (0.40, 0.40, 0.40), 0.4,
             'ceramic_tiles', 0.1),
    Material('linoleum', 'concrete', (0.45, 0.50, 0.42), (0.38, 0.42, 0.35), 2.0,
             'linoleum_on_concrete', 0.1),
    Material('carpet', 'carpet', (0.35, 0.33, 0.40), (0.25, 0.24, 0.30), 0.05,
             'carpet_tufted_9.5mm', 0.2),
    Material('marble', 'tiles', (0.85, 0.84, 0.80), (0.60, 0.60, 0.58), 0.6,
             'marble_floor', 0.05),
    Material('ceiling_tiles', 'tiles', (0.90, 0.90, 0.88), (0.70, 0.70, 0.68), 0.6,
             'ceiling_fissured_tile', 0.2),
    Material('ceiling_plaster', 'plaster', (0.92, 0.92, 0.90), (0.82, 0.82, 0.80), 1.0,
             'ceiling_plasterboard', 0.1),
    Material('cabinet', 'panels', (0.42, 0.45, 0.50), (0.25, 0.27, 0.30), 0.4,
             'wooden_door', 0.1),
)

#: All materials by name.
MATERIALS: Dict[str, Material] = {m.name: m for m in _CATALOGUE}

#: Which materials suit which surface (used when sampling scenes).
WALL_MATERIALS = ('white_plaster', 'painted_plasterboard', 'red_brick', 'concrete',
                  'wood_panels', 'glass')
FLOOR_MATERIALS = ('parquet', 'floor_tiles', 'linoleum', 'carpet', 'marble', 'concrete')
CEILING_MATERIALS = ('ceiling_tiles', 'ceiling_plaster', 'concrete')
OBJECT_MATERIALS = ('cabinet', 'wood_panels', 'concrete')


def get_material(name: str) -> Material:
    """Return the catalogue material called ``name``."""
    try:
        return MATERIALS[name]
    except KeyError:
        raise AvsInputError(f'unknown material {name!r}; known: {sorted(MATERIALS)}') from None
