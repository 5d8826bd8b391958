"""Cross-modal attention that fuses echo tokens into the image bottleneck (after Pano-Echo).

Pano-Echo (``echo_literature.md`` section 3.3): one LayerNorm shared by both modalities, two
multi-head attentions (image queries on echo keys/values, and echo queries on image
keys/values), and the fused bottleneck = image + echo + A(image->echo) + A(echo->image).

Changes, and why:

- Positions: Pano-Echo uses Transformer-XL relative-position attention (with its rel-shift and
  a score scale of 1/sqrt(d_model)). Here a fixed 2-D sinusoidal encoding is added to queries
  and keys and scores are scaled by 1/sqrt(d_head), the standard form: fewer parameters, a
  plain ONNX graph, and the grid is 2-D (an image bottleneck), not a 1-D sequence.
- Dropout on attention weights and outputs defaults to 0.1 as in Pano-Echo.
Both token maps must be on the same (h, w) grid; the echo encoder pools to it.
"""

import math

import torch
from torch import nn


def sinusoid_2d(h: int, w: int, dim: int, device: torch.device,
                dtype: torch.dtype) -> torch.Tensor:
    """Return a (h*w, dim) encoding: half the channels for rows, half for columns."""
    quarter = dim // 4
    freq = torch.exp(torch.arange(quarter, device=device, dtype=torch.float32)
                     * (-math.log(10000.0) / max(quarter, 1)))
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None] * freq
    xs = torch.arange(w, device=device, dtype=torch.float32)[:, None] * freq
    row = torch.cat([ys.sin(), ys.cos()], dim=1)[:, None, :].expand(h, w, 2 * quarter)
    col = torch.cat([xs.sin(), xs.cos()], dim=1)[None, :, :].expand(h, w, 2 * quarter)
    pe = torch.cat([row, col], dim=2).reshape(h * w, 4 * quarter)
    if pe.shape[1] < dim:
        pe = torch.cat([pe, pe.new_zeros(h * w, dim - pe.shape[1])], dim=1)
    return pe.to(dtype)


class MultiHeadAttention(nn.Module):
    """Multi-head attention over token sequences (B, N, D); queries and keys carry positions."""

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f'attention width {dim} is not divisible by {heads} heads')
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)
        self.out_drop = nn.Dropout(dropout)
        for lin in (self.q, self.k, self.v, self.out):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor,
                value: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(query)), self._split(self.k(key)), self._split(self.v(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        attn = self.attn_drop(torch.softmax(scores, dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(query.shape)
        return self.out_drop(self.out(x))


class CrossModalAttention(nn.Module):
    """Fuse (B, D, h, w) image and echo maps into one (B, D, h, w) bottleneck."""

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)  # shared by both modalities, as in Pano-Echo
        self.image_to_echo = MultiHeadAttention(dim, heads, dropout)
        self.echo_to_image = MultiHeadAttention(dim, heads, dropout)

    def forward(self, image: torch.Tensor, echo: torch.Tensor) -> torch.Tensor:
        if image.shape != echo.shape:
            raise ValueError(f'image {tuple(image.shape)} and echo {tuple(echo.shape)} tokens '
                             f'must have the same shape')
        b, d, h, w = image.shape
        ti = image.flatten(2).transpose(1, 2)
        te = echo.flatten(2).transpose(1, 2)
        pos = sinusoid_2d(h, w, d, image.device, image.dtype)
        ni, ne = self.norm(ti), self.norm(te)
        a_ie = self.image_to_echo(ni + pos, ne + pos, ne)
        a_ei = self.echo_to_image(ne + pos, ni + pos, ni)
        fused = ti + te + a_ie + a_ei
        return fused.transpose(1, 2).reshape(b, d, h, w)
