"""CFLD's hybrid-granularity appearance encoder: per UNet up-block cross-attention, a residual for
its query computed from one Swin stage.

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``models/appearance_encoder.py:12-103``, read, never
copied; docs/models/cfld.md). The released config (``TO_QUERIES``, 1x1 conv-ins) only: for entry
i = 0..8 the tokens of the current Swin stage, read as a square map (row-major), go through a 1x1
conv (``zero_conv_ins``, zero-initialised), ``depth`` diffusers ``BasicTransformerBlock`` s with
``double_self_attention`` (two self-attentions and a GEGLU feed-forward), and a 1x1 conv to the
UNet block's width (``zero_conv_outs``, zero-initialised); the result, tokens [B, H*W, C], is the
query residual of up-block attention ``block_idx[i]`` (11, 10, ..., 3). Entries 0-2 read stage 1,
3-5 stage 2, 6-8 stage 3 (the official loop drops a stage whenever the input width changes).
"""
from __future__ import annotations

import torch
from diffusers.models.attention import BasicTransformerBlock
from torch import nn

BLOCK_IDX = (11, 10, 9, 8, 7, 6, 5, 4, 3)


class AppearanceEncoder(nn.Module):
    """``forward([stage tokens])`` -> {``block_idx``: query residual [B, H*W, ctx_dim]}."""

    def __init__(self, inner_dims=(128,) * 3 + (256,) * 3 + (512,) * 3, ctx_dims=(320,) * 3 + (640,) * 3 + (1280,) * 3,
                 embed_dims=(64,) * 3 + (128,) * 3 + (256,) * 3, heads=(2,) * 3 + (4,) * 3 + (8,) * 3, depth: int = 4,
                 block_idx=BLOCK_IDX):
        super().__init__()
        self.inner_dims, self.embed_dims, self.ctx_dims = tuple(inner_dims), tuple(embed_dims), tuple(ctx_dims)
        self.block_idx = tuple(block_idx)
        self.zero_conv_ins = nn.ModuleList(nn.Conv2d(i, e, 1) for i, e in zip(inner_dims, embed_dims))
        self.zero_conv_outs = nn.ModuleList(nn.Conv2d(e, c, 1) for e, c in zip(embed_dims, ctx_dims))
        self.blocks = nn.ModuleList(
            nn.Sequential(*[BasicTransformerBlock(dim=e, num_attention_heads=h, attention_head_dim=e // h,
                                                  double_self_attention=True) for _ in range(depth)])
            for e, h in zip(embed_dims, heads))
        for p in [*self.zero_conv_ins.parameters(), *self.zero_conv_outs.parameters()]:
            nn.init.zeros_(p)

    def forward(self, features: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        stage, out = 0, {}
        for i, block in enumerate(self.blocks):
            if i and self.inner_dims[i] != self.inner_dims[i - 1]:
                stage += 1
            tokens = features[stage]
            b, n, _ = tokens.shape
            side = int(n ** 0.5)
            h = self.zero_conv_ins[i](tokens.permute(0, 2, 1).reshape(b, self.inner_dims[i], side, side))
            hh, ww = h.shape[-2:]
            h = block(h.reshape(b, self.embed_dims[i], hh * ww).permute(0, 2, 1))
            h = self.zero_conv_outs[i](h.permute(0, 2, 1).reshape(b, self.embed_dims[i], hh, ww))
            out[self.block_idx[i]] = h.reshape(b, self.ctx_dims[i], hh * ww).permute(0, 2, 1)
        return out
