"""Camera geometry of view synthesis: intrinsics, poses, back-projection and warping.

Conventions (OpenCV, as ``avs_net_ros.sim.rig``): camera x right, y down, z forward; pixel
(u, v) is the centre of column u, row v. Intrinsics travel normalised by the image size as
``(fx / W, fy / H, (cx + 0.5) / W, (cy + 0.5) / H)``, which resizing leaves unchanged and a
horizontal flip maps to ``1 - cx_n``. A pose ``T`` maps points of the target camera into a
source camera (4x4, ``X_s = T @ X_t``), as Monodepth2's ``cam_T_cam``.
"""

from typing import Tuple

import torch
import torch.nn.functional as F


def intrinsics_matrix(normalised: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Return (B, 3, 3) pixel intrinsics for ``height`` x ``width`` from (B, 4) normalised ones."""
    if normalised.ndim != 2 or normalised.shape[1] != 4:
        raise ValueError(f'normalised intrinsics must be (B, 4), got {tuple(normalised.shape)}')
    fx, fy, cx, cy = normalised.unbind(1)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    rows = [torch.stack([fx * width, zero, cx * width - 0.5], 1),
            torch.stack([zero, fy * height, cy * height - 0.5], 1),
            torch.stack([zero, zero, one], 1)]
    return torch.stack(rows, 1)


def axis_angle_to_matrix(vec: torch.Tensor) -> torch.Tensor:
    """Return (B, 3, 3) rotations from (B, 3) axis-angle vectors (Rodrigues' formula).

    Written as ``I + sin(t)/t [v]x + (1 - cos(t))/t^2 [v]x^2`` with Taylor terms near t = 0,
    so that the gradient at zero rotation is the true one (Monodepth2's unit-axis form has
    none there: a pose network whose output is exactly zero could not start to rotate).
    """
    x, y, z = vec.unbind(1)
    zero = torch.zeros_like(x)
    k = torch.stack([torch.stack([zero, -z, y], 1), torch.stack([z, zero, -x], 1),
                     torch.stack([-y, x, zero], 1)], 1)
    theta2 = (vec * vec).sum(1)
    small = theta2 < 1e-8
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta).view(-1, 1, 1)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta ** 2).view(-1, 1, 1)
    eye = torch.eye(3, dtype=vec.dtype, device=vec.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def pose_matrix(axis_angle: torch.Tensor, translation: torch.Tensor,
                invert: bool = False) -> torch.Tensor:
    """Return (B, 4, 4) ``[R | t]``, or its inverse ``[R^T | -R^T t]`` when ``invert``.

    The pose network sees the earlier frame first; for the previous frame Monodepth2 inverts
    the predicted motion to get the target-to-source transform.
    """
    rot = axis_angle_to_matrix(axis_angle)
    t = translation.view(-1, 3, 1)
    if invert:
        rot = rot.transpose(1, 2)
        t = -rot @ t
    top = torch.cat([rot, t], 2)
    bottom = torch.zeros_like(top[:, :1])
    bottom[..., 3] = 1
    return torch.cat([top, bottom], 1)


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Return (3, H*W) homogeneous pixel centres (u, v, 1), row-major."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                          torch.arange(width, device=device, dtype=dtype), indexing='ij')
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)], 0)


def reproject(depth: torch.Tensor, pose: torch.Tensor, k: torch.Tensor,
              eps: float = 1e-7) -> Tuple[torch.Tensor, torch.Tensor]:
    """Project every target pixel, at its ``depth``, into the source camera.

    Args:
        depth: (B, 1, H, W) target depth (z).
        pose: (B, 4, 4) target-to-source transform.
        k: (B, 3, 3) pixel intrinsics (both views share the camera).
        eps: Guard against division by a zero source depth.

    Returns:
        (grid, z): (B, H, W, 2) source coordinates for ``grid_sample`` (align_corners=True:
        -1 and 1 are the centres of the first and last pixels) and (B, 1, H, W) source depth.

    """
    b, _, h, w = depth.shape
    rays = torch.linalg.inv(k) @ pixel_grid(h, w, depth.device, depth.dtype)  # (B, 3, HW)
    points = rays * depth.reshape(b, 1, -1)
    cam = pose[:, :3, :3] @ points + pose[:, :3, 3:]
    pix = k @ cam
    z = pix[:, 2:]
    uv = pix[:, :2] / (z + eps)
    scale = torch.tensor([w - 1, h - 1], dtype=uv.dtype, device=uv.device).view(1, 2, 1)
    grid = (uv / scale) * 2 - 1
    return grid.view(b, 2, h, w).permute(0, 2, 3, 1), z.view(b, 1, h, w)


def warp(source: torch.Tensor, depth: torch.Tensor, pose: torch.Tensor,
         k: torch.Tensor) -> torch.Tensor:
    """Synthesise the target view from ``source`` (B, C, H, W) (Monodepth2: border padding)."""
    grid, _ = reproject(depth, pose, k)
    return F.grid_sample(source, grid, mode='bilinear', padding_mode='border',
                         align_corners=True)


def disparity_to_depth(sigmoid: torch.Tensor, min_depth: float,
                       max_depth: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Map a sigmoid output to (disparity in [1/max, 1/min], depth = 1 / disparity)."""
    lo, hi = 1.0 / max_depth, 1.0 / min_depth
    disparity = lo + (hi - lo) * sigmoid
    return disparity, 1.0 / disparity
