"""PoCoLD's networks: the double-attention UNet, the multi-scale reference image encoder and the
channel mapper of the target pose.

Our own modules, from the facts of the official code (github.com/BrandonHanx/PoCoLD at c5c7bb7,
``src/model.py``; read, never copied; docs/models/pocold.md). Parameter names are the official
ones (diffusers' ``ResnetBlock2D`` / ``Downsample2D`` / ``Upsample2D`` / ``DownBlock2D`` /
``Timesteps`` / ``TimestepEmbedding``, as the official code builds on them), so a pipeline folder
written by the official training loads strictly.

- ``DoubleAttention`` (:244-417): the reference tokens (LayerNorm'd) give k and v, the UNet tokens q;
  per head, ``num_filters`` learned extraction filters attend over the reference positions
  (softmax over positions) and learned distribution filters over the query positions (softmax over
  the *filters*); their product is the [query, reference] attention, applied to v; ``to_out`` and
  a residual scaled by the learned ``scale``. The official ``__init__`` first sets
  ``self.scale = dim_head ** -0.5`` and then overwrites it with that parameter (init 1), so the
  attention logits are multiplied by the learned scale, not by dim_head^-1/2; reproduced. Logits and
  softmax in float32 (``upcast_*`` True). With no reference the block is skipped
  (``skip_if_none``, the default; the other branch, ``to_out(to_q(x))`` without residual, is kept).
- Down / mid / up blocks (:420-733): resnet then double attention per layer, diffusers' resample
  convs; the UNet (:736-1026): conv_in, sinusoidal time embedding (``flip_sin_to_cos``), down
  blocks with reference level i, mid with the last level, up blocks with the levels reversed,
  GroupNorm-SiLU-conv out. The constraint-map attention penalty exists only in training with
  ``use_constraint_penalty`` (the published config has it off); it is not ported.
- ``MultiScaleReferenceImageEncoder`` (:1029-1103): conv_in then diffusers ``DownBlock2D`` s, the
  first without downsampling, returning every block's output (one per UNet level).
- ``ChannelMapper`` (:23-45): a 1x1 conv of the pose map concatenated to the latents.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from diffusers.models.unets.unet_2d_blocks import DownBlock2D
from torch import nn


def _tokens(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def _map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return x.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)


class DoubleAttention(nn.Module):
    def __init__(self, query_dim: int, cross_attention_dim: int, num_filters: int, heads: int = 8,
                 dim_head: int = 64, eps: float = 1e-5, skip_if_none: bool = True):
        super().__init__()
        inner = dim_head * heads
        self.heads, self.skip_if_none = heads, skip_if_none
        self.norm = nn.LayerNorm(cross_attention_dim, eps=eps)
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(cross_attention_dim, inner, bias=False)
        self.to_v = nn.Linear(cross_attention_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, query_dim)
        self.extraction_filters = nn.Parameter(torch.randn(num_filters, inner))
        self.distribution_filters = nn.Parameter(torch.randn(num_filters, inner))
        self.scale = nn.Parameter(torch.ones(1))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, H*d] -> [B, H, N, d]
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        b, _, h, w = hidden.shape
        if reference is None:
            if self.skip_if_none:
                return hidden
            return _map(self.to_out(self.to_q(_tokens(hidden))), h, w).contiguous()
        x = _tokens(hidden)
        ref = self.norm(_tokens(reference))
        q, k, v = self._heads(self.to_q(x)), self._heads(self.to_k(ref)), self._heads(self.to_v(ref))
        ext = self._heads(self.extraction_filters.expand(b, -1, -1))
        dist = self._heads(self.distribution_filters.expand(b, -1, -1))
        scale = self.scale.float()
        spatial = ((ext.float() @ k.float().transpose(-1, -2)) * scale).softmax(-1).to(q.dtype)   # [B,H,F,Lref]
        channel = ((dist.float() @ q.float().transpose(-1, -2)) * scale).softmax(-2).to(q.dtype)  # [B,H,F,L]
        out = (channel.transpose(-1, -2) @ spatial) @ v                                            # [B,H,L,d]
        out = self.to_out(out.transpose(1, 2).reshape(b, h * w, -1))
        # The official ``to_out(...) + residual * scale``, summed into the fresh ``hidden * scale`` (addition
        # commutes: the same numbers) so that the result keeps hidden's standard layout. ``_map`` is a permuted
        # (channels-last) view; returned as is, every following ResnetBlock2D ran on channels-last (the full branch
        # measured ~0.93x with this; docs/speed-vs-official.md). No extra copy is made.
        return (hidden * self.scale).add_(_map(out, h, w))


def _resnet(cin: int, cout: int, temb: int, groups: int, eps: float) -> ResnetBlock2D:
    return ResnetBlock2D(in_channels=cin, out_channels=cout, temb_channels=temb, eps=eps, groups=groups,
                         non_linearity="silu")


class DownBlock(nn.Module):
    def __init__(self, cin, cout, temb, filters, layers, heads, ref_dim, groups, eps, downsample, skip_if_none):
        super().__init__()
        self.resnets = nn.ModuleList(_resnet(cin if i == 0 else cout, cout, temb, groups, eps) for i in range(layers))
        self.attentions = nn.ModuleList(DoubleAttention(cout, ref_dim, filters, heads, cout // heads, eps, skip_if_none)
                                        for _ in range(layers))
        self.downsamplers = (nn.ModuleList([Downsample2D(cout, use_conv=True, out_channels=cout, padding=1, name="op")])
                             if downsample else None)

    def forward(self, x, temb, reference):
        states = ()
        for resnet, attn in zip(self.resnets, self.attentions):
            x = attn(resnet(x, temb), reference)
            states += (x,)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            states += (x,)
        return x, states


class UpBlock(nn.Module):
    def __init__(self, cin, cout, prev, temb, filters, layers, heads, ref_dim, groups, eps, upsample, skip_if_none):
        super().__init__()
        self.resnets = nn.ModuleList(
            _resnet((prev if i == 0 else cout) + (cin if i == layers - 1 else cout), cout, temb, groups, eps)
            for i in range(layers))
        self.attentions = nn.ModuleList(DoubleAttention(cout, ref_dim, filters, heads, cout // heads, eps, skip_if_none)
                                        for _ in range(layers))
        self.upsamplers = nn.ModuleList([Upsample2D(cout, use_conv=True, out_channels=cout)]) if upsample else None

    def forward(self, x, skips, temb, reference, size=None):
        for resnet, attn in zip(self.resnets, self.attentions):
            x = attn(resnet(torch.cat([x, skips[-1]], 1), temb), reference)
            skips = skips[:-1]
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, size)
        return x


class MidBlock(nn.Module):
    def __init__(self, c, temb, filters, heads, ref_dim, groups, eps, skip_if_none):
        super().__init__()
        self.resnets = nn.ModuleList([_resnet(c, c, temb, groups, eps), _resnet(c, c, temb, groups, eps)])
        self.attentions = nn.ModuleList([DoubleAttention(c, ref_dim, filters, heads, c // heads, eps, skip_if_none)])

    def forward(self, x, temb, reference):
        x = self.resnets[0](x, temb)
        return self.resnets[1](self.attentions[0](x, reference), temb)


@dataclass
class UNetConfig:
    """``UNet2DDoubleAttentionConditionModel``'s arguments (its ``config.json``); the published values
    by default, with ``attn_heads_nums`` 8 as ``inference.py`` passes it."""

    in_channels: int = 8
    out_channels: int = 4
    block_out_channels: tuple = (128, 256, 512, 512)
    num_filters: int | tuple = 64
    layers_per_block: int = 2
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    cross_attention_channels: tuple = (128, 256, 512, 512)
    attn_heads_nums: int | tuple = 8
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    skip_if_none: bool = True
    sample_size: int | None = None

    KNOWN_UNUSED = ("_class_name", "_diffusers_version", "center_input_sample", "downsample_padding",
                    "mid_block_scale_factor", "act_fn", "upcast_attention", "upcast_softmax",
                    "resnet_time_scale_shift", "use_constraint_penalty")

    @classmethod
    def from_json(cls, cfg: dict) -> "UNetConfig":
        """From the official ``unet/config.json``; settings this port does not implement must have
        the values the published model uses."""
        fixed = {"center_input_sample": False, "downsample_padding": 1, "mid_block_scale_factor": 1, "act_fn": "silu",
                 "upcast_attention": True, "upcast_softmax": True, "resnet_time_scale_shift": "default"}
        bad = {k: cfg[k] for k, v in fixed.items() if k in cfg and cfg[k] != v}
        if bad:
            raise ValueError(f"pocold unet config: not supported by this port: {bad}")
        names = {f for f in cls.__dataclass_fields__}
        unknown = [k for k in cfg if k not in names and k not in cls.KNOWN_UNUSED]
        if unknown:
            raise ValueError(f"pocold unet config: unknown keys {unknown}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


def _per_level(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


class DoubleAttentionUNet(nn.Module):
    """``forward(latents_with_pose, t, references=[per level] or None)`` -> noise prediction."""

    def __init__(self, cfg: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = cfg
        ch, n, eps, g = tuple(cfg.block_out_channels), len(cfg.block_out_channels), cfg.norm_eps, cfg.norm_num_groups
        heads, filters = _per_level(cfg.attn_heads_nums, n), _per_level(cfg.num_filters, n)
        refs = tuple(cfg.cross_attention_channels)
        temb = ch[0] * 4
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.time_proj = Timesteps(ch[0], cfg.flip_sin_to_cos, cfg.freq_shift)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.down_blocks = nn.ModuleList(
            DownBlock(ch[max(i - 1, 0)], ch[i], temb, filters[i], cfg.layers_per_block, heads[i], refs[i], g, eps,
                      i < n - 1, cfg.skip_if_none) for i in range(n))
        self.mid_block = MidBlock(ch[-1], temb, filters[-1], heads[-1], refs[-1], g, eps, cfg.skip_if_none)
        rch, rh, rf, rr = ch[::-1], heads[::-1], filters[::-1], refs[::-1]
        self.up_blocks = nn.ModuleList(
            UpBlock(rch[min(i + 1, n - 1)], rch[i], rch[max(i - 1, 0)], temb, rf[i], cfg.layers_per_block + 1, rh[i],
                    rr[i], g, eps, i < n - 1, cfg.skip_if_none) for i in range(n))
        self.conv_norm_out = nn.GroupNorm(num_channels=ch[0], num_groups=g, eps=eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(ch[0], cfg.out_channels, 3, padding=1)

    def forward(self, sample: torch.Tensor, t, references: list | None = None) -> torch.Tensor:
        n = len(self.down_blocks)
        refs = list(references) if references is not None else [None] * n
        t = torch.as_tensor(t, device=sample.device)
        t = (t[None] if t.ndim == 0 else t).expand(sample.shape[0])
        emb = self.time_embedding(self.time_proj(t).to(sample.dtype))
        # sizes that are not a multiple of 2^(levels-1) upsample to the skip's size (as diffusers does)
        odd = any(s % 2 ** (n - 1) for s in sample.shape[-2:])
        x = self.conv_in(sample)
        skips = (x,)
        for i, block in enumerate(self.down_blocks):
            x, states = block(x, emb, refs[i])
            skips += states
        x = self.mid_block(x, emb, refs[-1])
        for i, block in enumerate(self.up_blocks):
            k = len(block.resnets)
            here, skips = skips[-k:], skips[:-k]
            size = skips[-1].shape[2:] if odd and i < n - 1 else None
            x = block(x, here, emb, refs[::-1][i], size)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


@dataclass
class ReferenceEncoderConfig:
    """``MultiScaleReferenceImageEncoder``'s arguments (``rie/config.json``)."""

    in_channels: int = 4
    block_out_channels: tuple = (128, 256, 512, 512)
    num_layers: int = 1
    norm_eps: float = 1e-5
    use_time_emb: bool = False
    down_block_types: tuple = field(default_factory=lambda: ("DownBlock2D",) * 4)

    @classmethod
    def from_json(cls, cfg: dict) -> "ReferenceEncoderConfig":
        if cfg.get("use_time_emb"):
            raise ValueError("pocold rie config: use_time_emb is not supported by this port (the published model has "
                             "it off)")
        if any(b != "DownBlock2D" for b in cfg.get("down_block_types", ())):
            raise ValueError(f"pocold rie config: only DownBlock2D blocks are supported, got {cfg['down_block_types']}")
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


class ReferenceEncoder(nn.Module):
    """The VAE latent of the source -> one feature map per UNet level."""

    def __init__(self, cfg: ReferenceEncoderConfig = ReferenceEncoderConfig()):
        super().__init__()
        self.config = cfg
        ch = tuple(cfg.block_out_channels)
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownBlock2D(in_channels=ch[max(i - 1, 0)], out_channels=ch[i], temb_channels=None, num_layers=cfg.num_layers,
                        resnet_eps=cfg.norm_eps, resnet_act_fn="silu", resnet_groups=32, add_downsample=i > 0,
                        downsample_padding=1) for i in range(len(ch)))

    def forward(self, latents: torch.Tensor) -> list[torch.Tensor]:
        x, out = self.conv_in(latents), []
        for block in self.down_blocks:
            x, _ = block(hidden_states=x, temb=None)
            out.append(x)
        return out


class ChannelMapper(nn.Module):
    """``cat([latents, cond_conv(pose)])`` (``concat`` True, published) or ``latents + cond_conv(pose)``."""

    def __init__(self, in_channels: int = 25, out_channels: int = 4, concat: bool = True, bias: bool = True):
        super().__init__()
        self.concat = concat
        self.cond_conv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, latents: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        c = self.cond_conv(pose)
        return torch.cat([latents, c], 1) if self.concat else latents + c

