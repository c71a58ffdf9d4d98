"""CFLD's Perception-Refined Decoder: learned queries that read the source's last Swin stage and
replace the text embedding of the UNet's cross-attention.

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``models/decoder.py:15-179``, read, never copied;
docs/models/cfld.md): ``n_ctx`` learned queries of width ``ctx_dim`` (``query_feat``) with a learned
``pos_embed``; keys/values = the stage-4 tokens plus a learned ``kv_pos_embed``; ``depth`` blocks that
are diffusers ``BasicTransformerBlock`` s run in another order: cross-attention first (``norm2`` /
``attn2``), then self-attention (``norm1`` / ``attn1``), then the GEGLU feed-forward (``norm3`` /
``ff``), with ``pos_embed`` added *to the residual stream* before each of the two attentions (so it
accumulates, twice per block). Parameter names are diffusers'.
"""
from __future__ import annotations

import torch
from diffusers.models.attention import BasicTransformerBlock
from torch import nn


class CrossAttnFirstBlock(BasicTransformerBlock):
    def forward(self, hidden_states: torch.Tensor, query_pos: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        h = hidden_states + query_pos
        h = self.attn2(self.norm2(h), encoder_hidden_states=encoder_hidden_states) + h
        h = h + query_pos
        h = self.attn1(self.norm1(h)) + h
        return self.ff(self.norm3(h)) + h


class Decoder(nn.Module):
    """``forward(stage4 tokens [B, L, C])`` -> [B, n_ctx, ctx_dim]."""

    def __init__(self, n_ctx: int = 16, ctx_dim: int = 768, heads: int = 24, depth: int = 8, kv_dim: int = 1024,
                 kv_tokens: int = 64):
        super().__init__()
        self.query_feat = nn.Parameter(torch.randn(n_ctx, ctx_dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(n_ctx, ctx_dim) * 0.02)
        self.blocks = nn.ModuleList(CrossAttnFirstBlock(dim=ctx_dim, num_attention_heads=heads,
                                                        attention_head_dim=ctx_dim // heads,
                                                        cross_attention_dim=kv_dim) for _ in range(depth))
        self.kv_pos_embed = nn.Parameter(torch.randn(1, kv_tokens, kv_dim) * 0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b = tokens.shape[0]
        kv = tokens + self.kv_pos_embed.expand(b, -1, -1)
        h = self.query_feat.expand(b, -1, -1)
        pos = self.pos_embed.expand(b, -1, -1)
        for blk in self.blocks:
            h = blk(h, pos, encoder_hidden_states=kv)
        return h
