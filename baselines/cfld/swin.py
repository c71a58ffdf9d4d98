"""CFLD's source encoder: a Swin Transformer (v1) returning every stage's tokens.

Our own modules, from the facts of the official code (github.com/YanzuoLu/CFLD at f2ea2a7,
``models/swin_transformer.py``, itself the Microsoft Swin with ``forward_features`` returning the
stage outputs; docs/models/cfld.md). Parameter and buffer names are the official ones, so the
``backbone.*`` entries of the released ``pytorch_model.bin`` load strictly, buffers included:

- patch embedding: 4x4 conv with stride 4, LayerNorm on the tokens (:433-470);
- per stage: blocks alternating plain and shifted (by window // 2) window attention; a stage whose
  resolution is not above the window uses one window of that size and no shift (:201-204); window
  attention with a learned relative-position bias table indexed by ``relative_position_index``,
  q scaled by head_dim^-1/2, and for shifted blocks the ``attn_mask`` (-100 between different
  shifted regions) (:72-168, :214-236); pre-norm residual attention and a 4x GELU MLP (:243-290);
- between stages, patch merging: the four 2x2 neighbours concatenated in the order (0,0), (1,0),
  (0,1), (1,1), LayerNorm, a bias-free 4C -> 2C linear (:310-357);
- ``forward`` returns (the mean of the last stage's tokens, [each stage's tokens before merging])
  (:591-619); CFLD's config has no final norm (``LAST_NORM False``), no absolute position
  embedding, no masking, dropout and drop-path inactive at inference.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SwinConfig:
    img_size: int = 256
    patch_size: int = 4
    in_chans: int = 3
    embed_dim: int = 128
    depths: tuple = (2, 2, 18, 2)
    num_heads: tuple = (4, 8, 16, 32)
    window_size: int = 16
    mlp_ratio: float = 4.0


def _windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * nW, w*w, C], windows in row-major order."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _unwindows(x: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    b = x.shape[0] // ((h // w) * (wd // w))
    x = x.view(b, h // w, wd // w, w, w, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, wd, -1)


def relative_position_index(w: int) -> torch.Tensor:
    """[w*w, w*w] index into the (2w-1)^2 bias table for each pair of positions in a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
    return rel[..., 0] * (2 * w - 1) + rel[..., 1]


def shift_mask(h: int, wd: int, w: int, shift: int) -> torch.Tensor:
    """[nW, w*w, w*w]: 0 within a shifted region, -100 across regions."""
    regions = torch.zeros(1, h, wd, 1)
    cuts = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    for n, (hs, ws) in enumerate((a, b) for a in cuts for b in cuts):
        regions[:, hs, ws, :] = n
    ids = _windows(regions, w).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, heads: int):
        super().__init__()
        self.window, self.heads = window, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b // nw, nw, self.heads, n, n) + mask[None, :, None]).view(-1, self.heads, n, n)
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, resolution: tuple[int, int], heads: int, window: int, shift: int, mlp_ratio: float):
        super().__init__()
        if min(resolution) <= window:  # one window covers the stage: no shift
            window, shift = min(resolution), 0
        self.resolution, self.window, self.shift = resolution, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.register_buffer("attn_mask", shift_mask(*resolution, window, shift) if shift else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = _unwindows(self.attn(_windows(y, self.window), self.attn_mask), self.window, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim: int, resolution: tuple[int, int]):
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Stage(nn.Module):
    def __init__(self, dim, resolution, depth, heads, window, mlp_ratio, merge: bool):
        super().__init__()
        self.blocks = nn.ModuleList(SwinBlock(dim, resolution, heads, window, 0 if i % 2 == 0 else window // 2,
                                              mlp_ratio) for i in range(depth))
        self.downsample = PatchMerging(dim, resolution) if merge else None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return (self.downsample(x) if self.downsample is not None else x), x


class PatchEmbed(nn.Module):
    def __init__(self, cfg: SwinConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinBackbone(nn.Module):
    """``forward(x [B, 3, S, S] in [-1, 1])`` -> (pooled [B, C4], [stage tokens [B, L_i, C_i]])."""

    def __init__(self, cfg: SwinConfig):
        super().__init__()
        self.config = cfg
        self.patch_embed = PatchEmbed(cfg)
        side = cfg.img_size // cfg.patch_size
        n = len(cfg.depths)
        self.layers = nn.ModuleList(
            Stage(cfg.embed_dim * 2 ** i, (side >> i, side >> i), cfg.depths[i], cfg.num_heads[i], cfg.window_size,
                  cfg.mlp_ratio, merge=i < n - 1) for i in range(n))

    def forward(self, x: torch.Tensor):
        x = self.patch_embed(x)
        features = []
        for layer in self.layers:
            x, feature = layer(x)
            features.append(feature)
        return x.mean(dim=1), features
