"""Procedural surface textures evaluated per pixel from surface coordinates.

Every function takes surface coordinates (u, v) already divided by the material's period (so a
texture looks the same whenever u and v do, which is what makes scale-ambiguous scenes scale
free) and a seed, and returns RGB in [0, 1] as float32 (N, 3). Noise is a hash-based value
noise, so textures are deterministic and need no stored images.
"""

from avs_net_ros.sim.materials import Material

import numpy as np


def lattice_hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Return a uniform [0, 1) value per integer lattice point (a 32-bit integer mix)."""
    # uint32 arithmetic wraps modulo 2**32, which is what the mix needs.
    with np.errstate(over='ignore'):
        h = (ix.astype(np.int32).view(np.uint32) * np.uint32(374761393)
             + iy.astype(np.int32).view(np.uint32) * np.uint32(668265263)
             + np.uint32((seed * 1442695041) & 0xFFFFFFFF))
        h = (h ^ (h >> np.uint32(13))) * np.uint32(1274126177)
        h = h ^ (h >> np.uint32(16))
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 0x1000000)


def value_noise(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] with one lattice cell per unit of u and v."""
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = (u - iu).astype(np.float32), (v - iv).astype(np.float32)
    fu = fu * fu * (3 - 2 * fu)
    fv = fv * fv * (3 - 2 * fv)
    iu, iv = iu.astype(np.int32), iv.astype(np.int32)
    a = lattice_hash(iu, iv, seed)
    b = lattice_hash(iu + 1, iv, seed)
    c = lattice_hash(iu, iv + 1, seed)
    d = lattice_hash(iu + 1, iv + 1, seed)
    return (a + (b - a) * fu) + ((c + (d - c) * fu) - (a + (b - a) * fu)) * fv


def fractal_noise(u: np.ndarray, v: np.ndarray, seed: int, octaves: int = 3) -> np.ndarray:
    """Sum of ``octaves`` value-noise layers, each twice as fine and half as strong, in [0, 1]."""
    total = np.zeros(np.shape(u), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        f = 2.0 ** o
        total += amp * value_noise(u * f, v * f, seed + 31 * o)
        norm += amp
        amp *= 0.5
    return total / norm


def _mix(material: Material, f: np.ndarray) -> np.ndarray:
    c0 = np.asarray(material.color, dtype=np.float32)
    c1 = np.asarray(material.accent, dtype=np.float32)
    f = np.clip(f, 0, 1)[:, None]
    return c0 * (1 - f) + c1 * f


def _lines(x: np.ndarray, width: float) -> np.ndarray:
    """1 within ``width`` of an integer (a grout/mortar/seam line), else 0, with soft edges."""
    d = np.abs(x - np.round(x))
    return np.clip((width - d) / (0.5 * width) + 0.5, 0, 1)


def texture_rgb(material: Material, u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Return the material's colour at surface coordinates (u, v) (in periods), (N, 3)."""
    u = np.asarray(u, dtype=np.float32)
    v = np.asarray(v, dtype=np.float32)
    kind = material.texture
    if kind == 'plaster':
        f = 0.6 * fractal_noise(u * 2, v * 2, seed, 3) + 0.4 * value_noise(u * 11, v * 11, seed)
    elif kind == 'concrete':
        f = 0.7 * fractal_noise(u * 3, v * 3, seed, 4) + 0.3 * value_noise(u * 40, v * 40, seed)
        f = f + 0.35 * (value_noise(u * 90, v * 90, seed + 7) > 0.93)
    elif kind == 'carpet':
        f = 0.5 * value_noise(u * 3, v * 3, seed) + 0.5 * value_noise(u * 1.7, v * 1.7, seed + 1)
    elif kind == 'brick':
        row = np.floor(v)
        uu = u / 2.2 + 0.5 * (row % 2)
        brick = lattice_hash(np.floor(uu), row, seed)
        mortar = np.maximum(_lines(v, 0.08), _lines(uu, 0.035))
        f = 0.35 * brick + 0.15 * value_noise(u * 6, v * 6, seed + 3)
        f = f * (1 - mortar) + mortar
    elif kind == 'planks':
        col = np.floor(u)
        vv = v / 7.0 + lattice_hash(col, col * 0 + 17, seed)
        plank = lattice_hash(col, np.floor(vv), seed)
        grain = value_noise(u * 25, v * 1.5, seed + 5)
        seam = np.maximum(_lines(u, 0.03), _lines(vv, 0.004))
        f = 0.45 * plank + 0.3 * grain
        f = f * (1 - seam) + seam
    elif kind == 'tiles':
        tile = lattice_hash(np.floor(u), np.floor(v), seed)
        grout = np.maximum(_lines(u, 0.025), _lines(v, 0.025))
        f = 0.25 * tile + 0.2 * fractal_noise(u * 4, v * 4, seed + 9, 2)
        f = f * (1 - grout) + grout
    elif kind == 'panels':
        panel = lattice_hash(np.floor(u), np.floor(v / 3.0), seed)
        grain = value_noise(u * 1.5, v * 20, seed + 2)
        seam = np.maximum(_lines(u, 0.02), _lines(v / 3.0, 0.006))
        f = 0.3 * panel + 0.35 * grain
        f = f * (1 - seam) + seam
    else:
        raise ValueError(f'unknown texture kind {kind!r}')
    return _mix(material, f)
