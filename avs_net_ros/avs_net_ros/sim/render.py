"""Ray-cast pinhole rendering of a :class:`Scene`: RGB and metric z-depth, vectorised numpy.

Every pixel's ray is intersected with the floor, the ceiling, every wall (2-D ray/segment
intersection; walls are infinitely tall, which is exact inside a closed room because a ray
leaving the wall's height range hits the floor or ceiling first) and every box (slab method).
The nearest hit gives depth (the ray parameter is z-depth, see :mod:`avs_net_ros.sim.rig`),
the surface, its normal and surface coordinates for the procedural texture.

Lighting is ambient plus Lambertian light from the ceiling lamps (no shadows). In a
scale-ambiguous scene both texture periods and the lamps' falloff are measured in units of
``scene.scale``, so scaling the scene and the camera position by k leaves the image unchanged;
otherwise periods are metres and lamps fall off as 1/d^2, which leaks absolute distance.

A scene's ``texture_contrast`` (1 by default: the catalogue's textures unchanged) multiplies
each texture's deviation from its material's base colour, and its posters are painted on their
walls (under the doors): both exist for photometric self-supervision, which has little to match
on the catalogue's plaster and concrete walls (``SceneFamily.photometric_texture``).
"""

from dataclasses import dataclass
from typing import List, Tuple

from avs_net_ros.core.errors import AvsInputError
from avs_net_ros.sim.materials import get_material
from avs_net_ros.sim.rig import CameraPose, Intrinsics
from avs_net_ros.sim.scene import Scene
from avs_net_ros.sim.textures import lattice_hash, texture_rgb

import numpy as np

_EPS = 1e-6
_DOOR = np.array([0.45, 0.30, 0.18], dtype=np.float32)
_DOOR_FRAME = np.array([0.30, 0.20, 0.12], dtype=np.float32)


@dataclass
class RenderOutput:
    """One rendered view.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 z-depth in metres (always finite inside a closed room).
        surface: (H, W) int32 index of the surface hit (walls, floor, ceiling, box faces).

    """

    rgb: np.ndarray
    depth: np.ndarray
    surface: np.ndarray


def camera_rays(pose: CameraPose, intr: Intrinsics) -> Tuple[np.ndarray, ...]:
    """Return world ray direction components (dx, dy, dz), each (H*W,) float32.

    Each direction's camera-frame z component is 1, so the ray parameter of a hit is z-depth.
    """
    u = ((np.arange(intr.width) - intr.cx) / intr.fx).astype(np.float32)
    v = ((np.arange(intr.height) - intr.cy) / intr.fy).astype(np.float32)
    right, down, forward = (a.astype(np.float32) for a in pose.axes())
    return tuple((forward[i] + v[:, None] * down[i] + u[None, :] * right[i]).ravel()
                 for i in range(3))


def _surfaces(scene: Scene) -> List[Tuple[str, np.ndarray, str]]:
    """List (kind, normal, material) per surface: walls, floor, ceiling, 5 faces per box."""
    out = []
    for (x0, y0, x1, y1), mat in zip(scene.edges, scene.wall_materials):
        d = np.array([x1 - x0, y1 - y0])
        n = np.array([-d[1], d[0], 0.0]) / np.hypot(*d)  # inward for a CCW polygon
        out.append(('wall', n, mat))
    out.append(('floor', np.array([0, 0, 1.0]), scene.floor_material))
    out.append(('ceiling', np.array([0, 0, -1.0]), scene.ceiling_material))
    for b in scene.boxes:
        for n in ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, 1)):
            out.append(('box', np.array(n, dtype=np.float64), b.material))
    return out


def _take(hit: np.ndarray, t: np.ndarray, t_new: np.ndarray, surf: np.ndarray,
          index) -> None:
    t[hit] = t_new[hit]
    surf[hit] = index if np.isscalar(index) else index[hit]


def intersect(scene: Scene, origin: np.ndarray, dirs: Tuple[np.ndarray, ...]
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (t, surface index, wall coordinate) of the nearest hit for each ray.

    ``dirs`` is (dx, dy, dz) as from :func:`camera_rays`. ``wall coordinate`` is the distance
    along the hit wall from its first vertex (m), NaN for other surfaces. Axis-aligned walls
    (all sampled scenes) take a fast path; others use the general 2-D ray/segment test.
    """
    dx, dy, dz = dirs
    ox, oy, oz = (float(c) for c in origin)
    n = dx.size
    k = len(scene.edges)
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        inv = [np.float32(1.0) / d for d in dirs]
        t = np.where(dz < 0, -oz * inv[2], (scene.height - oz) * inv[2]).astype(np.float32)
        surf = np.where(dz < 0, k, k + 1).astype(np.int32)
        t[~np.isfinite(t)] = np.inf
        along = np.full(n, np.nan, dtype=np.float32)
        for i, (x0, y0, x1, y1) in enumerate(scene.edges):
            if x0 == x1:  # wall at x = x0
                tw = (x0 - ox) * inv[0]
                s = oy + tw * dy
                lo, hi = min(y0, y1), max(y0, y1)
                hit = (tw > _EPS) & (tw < t) & (s >= lo) & (s <= hi)
                pos = np.abs(s - y0)
            elif y0 == y1:  # wall at y = y0
                tw = (y0 - oy) * inv[1]
                s = ox + tw * dx
                lo, hi = min(x0, x1), max(x0, x1)
                hit = (tw > _EPS) & (tw < t) & (s >= lo) & (s <= hi)
                pos = np.abs(s - x0)
            else:
                ex, ey = x1 - x0, y1 - y0
                denom = dx * ey - dy * ex
                tw = ((x0 - ox) * ey - (y0 - oy) * ex) / denom
                s = ((x0 - ox) * dy - (y0 - oy) * dx) / denom
                hit = (np.abs(denom) > _EPS) & (tw > _EPS) & (s >= 0) & (s <= 1) & (tw < t)
                pos = s * np.hypot(ex, ey)
            _take(hit, t, tw, surf, i)
            along[hit] = pos[hit]
        for j, b in enumerate(scene.boxes):
            tin = np.full(n, -np.inf, dtype=np.float32)
            tout = np.full(n, np.inf, dtype=np.float32)
            face = np.zeros(n, dtype=np.int32)
            for a, (o, lo, hi) in enumerate(((ox, b.x0, b.x1), (oy, b.y0, b.y1),
                                             (oz, 0.0, b.height))):
                ta = (lo - o) * inv[a]
                tb = (hi - o) * inv[a]
                near = np.minimum(ta, tb)
                far = np.maximum(ta, tb)
                near[np.isnan(near)] = -np.inf
                far[np.isnan(far)] = np.inf
                # Face entered: the low face of the axis if the ray moves up it, else the high.
                face_a = 4 if a == 2 else 2 * a + (dirs[a] < 0)
                upd = near > tin
                tin[upd] = near[upd]
                face[upd] = face_a if np.isscalar(face_a) else face_a[upd]
                np.minimum(tout, far, out=tout)
            hit = (tin <= tout) & (tin > _EPS) & (tin < t)
            _take(hit, t, tin, surf, k + 2 + 5 * j + face)
            along[hit] = np.nan
    return t, surf, along


def render(scene: Scene, pose: CameraPose, intr: Intrinsics) -> RenderOutput:
    """Render ``scene`` from ``pose``: RGB uint8 (H, W, 3), depth float32 metres (H, W)."""
    if not scene.contains(pose.x, pose.y) or not 0 < pose.z < scene.height:
        raise AvsInputError(f'camera at ({pose.x:.2f}, {pose.y:.2f}, {pose.z:.2f}) is outside '
                            f'the room')
    dirs = camera_rays(pose, intr)
    origin = pose.position
    t, surf, along = intersect(scene, origin, dirs)
    if not np.all(np.isfinite(t)):
        raise AvsInputError('some camera rays escape the scene (floor plan not closed?)')
    surfaces = _surfaces(scene)
    unit = scene.scale if scene.scale_ambiguity else 1.0
    rgb = np.empty((t.size, 3), dtype=np.float32)
    # Group pixels by surface once (contiguous slices instead of a mask per surface).
    order = np.argsort(surf, kind='stable')
    bounds = np.concatenate([[0], np.cumsum(np.bincount(surf, minlength=len(surfaces)))])
    for idx in range(len(surfaces)):
        sel = order[bounds[idx]:bounds[idx + 1]]
        if sel.size == 0:
            continue
        kind, normal, mat_name = surfaces[idx]
        mat = get_material(mat_name)
        ts = t[sel]
        p = [np.float32(o) + ts * d[sel] for o, d in zip(origin, dirs)]
        if kind == 'wall':
            u, v = along[sel], p[2]
        elif kind in ('floor', 'ceiling') or normal[2] != 0:
            u, v = p[0], p[1]
        elif normal[0] != 0:
            u, v = p[1], p[2]
        else:
            u, v = p[0], p[2]
        period = mat.period * unit
        albedo = texture_rgb(mat, u / period, v / period, seed=idx * 7919 + 13)
        if scene.texture_contrast != 1.0:
            base = np.asarray(mat.color, dtype=np.float32)
            albedo = np.clip(base + (albedo - base) * np.float32(scene.texture_contrast), 0, 1)
        if kind == 'wall':
            _draw_posters(scene, idx, u, v, albedo)
            _draw_doors(scene, idx, u, v, albedo)
        colour = albedo * _shade(scene, p, normal, unit)[:, None]
        if kind == 'ceiling' and scene.lamps:
            colour[_lamp_discs(scene, p)] = 1.0
        rgb[sel] = colour
    rgb = np.clip(rgb, 0, 1) ** np.float32(1 / 2.2)
    h, w = intr.height, intr.width
    rgb8 = (rgb * 255 + 0.5).astype(np.uint8).reshape(h, w, 3)
    return RenderOutput(rgb8, t.astype(np.float32).reshape(h, w),
                        surf.astype(np.int32).reshape(h, w))


def _draw_doors(scene: Scene, wall: int, u: np.ndarray, v: np.ndarray,
                albedo: np.ndarray) -> None:
    for door in scene.doors:
        if door.wall != wall:
            continue
        inside = (u >= door.offset) & (u <= door.offset + door.width) & (v <= door.height)
        if not np.any(inside):
            continue
        frame = 0.06 * door.width
        edge = ((u - door.offset < frame) | (door.offset + door.width - u < frame)
                | (door.height - v < frame))
        colour = np.where(edge[:, None], _DOOR_FRAME, _DOOR)
        albedo[inside] = colour[inside]


def _draw_posters(scene: Scene, wall: int, u: np.ndarray, v: np.ndarray,
                  albedo: np.ndarray) -> None:
    """Paint the posters of ``wall``: a 3 x 4 grid of saturated colour blocks in a dark frame."""
    for poster in scene.posters:
        if poster.wall != wall:
            continue
        pu = (u - poster.offset) / poster.width
        pv = (v - poster.bottom) / poster.height
        inside = (pu >= 0) & (pu <= 1) & (pv >= 0) & (pv <= 1)
        if not np.any(inside):
            continue
        pu, pv = pu[inside], pv[inside]
        cu, cv = np.floor(pu * 3), np.floor(pv * 4)
        colour = np.stack([lattice_hash(cu, cv, poster.seed + 101 * c) for c in range(3)], 1)
        # Stretch each block's colour away from grey so neighbouring blocks differ strongly.
        colour = np.clip(0.5 + 1.6 * (colour - 0.5), 0.05, 0.95)
        frame = 0.06 * min(poster.width, poster.height)
        edge = np.minimum(np.minimum(pu, 1 - pu) * poster.width,
                          np.minimum(pv, 1 - pv) * poster.height) < frame
        colour[edge] = 0.08
        albedo[inside] = colour


def _lamp_discs(scene: Scene, p: List[np.ndarray]) -> np.ndarray:
    lit = np.zeros(len(p[0]), dtype=bool)
    for lamp in scene.lamps:
        lit |= (p[0] - lamp.x) ** 2 + (p[1] - lamp.y) ** 2 <= lamp.radius ** 2
    return lit


def _shade(scene: Scene, p: List[np.ndarray], normal: np.ndarray, unit: float) -> np.ndarray:
    """Ambient plus Lambertian lamp light; falloff in units of ``unit`` (see module doc)."""
    n = len(p[0])
    if not scene.lamps:
        # A diffuse overhead light: depends on surface orientation only, never on distance.
        return np.full(n, scene.ambient + (1 - scene.ambient) * (0.6 + 0.4 * abs(normal[2])),
                       dtype=np.float32)
    shade = np.full(n, scene.ambient, dtype=np.float32)
    drop = 0.05 * scene.height
    per_lamp = (1 - scene.ambient) / len(scene.lamps)
    # Scale-free falloff when ambiguous (distance in room units), 1/d^2 in metres otherwise.
    ref2 = (1.5 * unit if scene.scale_ambiguity else 1.5) ** 2
    for lamp in scene.lamps:
        lx, ly, lz = (np.float32(lamp.x) - p[0], np.float32(lamp.y) - p[1],
                      np.float32(scene.height - drop) - p[2])
        d2 = lx * lx + ly * ly + lz * lz
        dot = lx * np.float32(normal[0]) + ly * np.float32(normal[1]) + lz * np.float32(normal[2])
        cos = np.clip(dot / np.sqrt(np.maximum(d2, _EPS)), 0, 1)
        shade += np.float32(per_lamp * lamp.power * 2.0) * cos / (1.0 + d2 / np.float32(ref2))
    return shade
