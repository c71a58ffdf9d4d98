"""PIDM's denoiser: a guided-diffusion UNet whose attention blocks cross-attend to a source encoder.

Our own modules, written from the facts of the official code (github.com/ankanbhunia/PIDM at
e4f1d88, read, never copied). Parameter names follow the official state dict, so the released
``ema`` weights load after ``checkpoint.official_key_map`` only drops the weights the official
forward never uses (listed there, measured in tests/fixtures/pidm/manifest.json).

Facts (official file:line):
- ``config/diffconfig.py:49-84`` published size: 256², in 3+20, model_channels 128, out 6 (ε and the
  learned-variance interpolation), channel_mult (1,1,2,2,4,4), 2 res blocks, attention at 32/16/8,
  embed 512, one head, resblock up/down, zero-initialised output convs.
- ``models/unet.py:116-265`` layout: input blocks = conv_in, then per level ``num_res_blocks`` res
  blocks (the last one followed by attention at the listed resolutions) and a down res block between
  levels; middle = res, attention, res; output blocks = per level ``num_res_blocks + 1`` res blocks on
  [h, skip] (attention after the block with index ``num_res_blocks - 1``, an up res block after the
  last one except at level 0); out = norm, SiLU, conv.
- ``models/unet_autoenc.py:40-49,237-296`` the time embedding is an MLP under ``time_embed.time_embed``;
  the source encoder (``models/unet.py:578-700``, ``BeatGANsEncoder``) is the UNet's input-block
  stack on the RGB source, without attention and without time; its every block output is kept.
  UNet input block k cross-attends to encoder output k, the middle block to the last one, output
  block k to encoder output ``-k-1``.
- ``models/blocks.py:33-42`` res blocks inside a block get the time embedding only (their second
  "cond" input is always None there), attention blocks get the encoder feature.
- ``models/blocks.py:181-254,257-336`` res block: norm, SiLU, conv (up/down between the SiLU and the
  conv, on the skip too: nearest x2 / 2x2 average); then norm, ``h * (1 + scale) + shift`` from the
  time embedding, SiLU, dropout, conv; 1x1 conv skip when the channels change.
- ``models/blocks.py:430-495,535-570`` attention: q from the group-normed UNet feature, k and v from
  the (un-normed) encoder feature, 1x1 convs; the "legacy" head split of ``cat([q, kv])``;
  q and k each scaled by ch^-1/4, softmax in float32; zero-initialised output conv; residual.
- ``models/nn.py:32-35,110-122`` GroupNorm with min(32, C) groups (``norm_groups``, 32 officially) computed
  in float32; sinusoidal
  timestep embedding, cos first, max period 10000, fractional t allowed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class PIDMConfig:
    """The architecture. Defaults are the published DeepFashion model (``PIDMConfig()``)."""

    image_size: int = 256                 # height; decides where attention sits (with attention_resolutions)
    in_channels: int = 23                 # noisy RGB + 20 pose channels
    model_channels: int = 128
    out_channels: int = 6                 # eps (3) + learned-variance values (3)
    num_res_blocks: int = 2
    embed_channels: int = 512
    attention_resolutions: tuple = (32, 16, 8)
    channel_mult: tuple = (1, 1, 2, 2, 4, 4)
    dropout: float = 0.1
    num_heads: int = 1
    source_channels: int = 3
    norm_groups: int = 32                 # GroupNorm(min(norm_groups, C)); 32 officially
    extra: dict = field(default_factory=dict)  # free-form notes (not architecture)

    def __post_init__(self):
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions)
        self.channel_mult = tuple(int(m) for m in self.channel_mult)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["attention_resolutions"] = list(self.attention_resolutions)
        d["channel_mult"] = list(self.channel_mult)
        return d

    @property
    def downsampling(self) -> int:
        """Image sides must be multiples of this."""
        return 2 ** (len(self.channel_mult) - 1)


class GroupNorm32(nn.GroupNorm):
    """Group norm computed in float32 whatever the input dtype (the official fp16 behaviour)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


def norm(channels: int, groups: int = 32) -> GroupNorm32:
    return GroupNorm32(min(groups, channels), channels)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[N] (possibly fractional) timesteps -> [N, dim]: cos half first, then sin."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class ResBlock(nn.Module):
    """Residual block; ``emb_channels=None`` = no time modulation (the source encoder's blocks)."""

    def __init__(self, channels: int, out_channels: int, emb_channels: int | None, dropout: float,
                 up: bool = False, down: bool = False, groups: int = 32):
        super().__init__()
        self.in_layers = nn.Sequential(norm(channels, groups), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.up, self.down = up, down
        if emb_channels is not None:
            self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels))
        self.out_layers = nn.Sequential(norm(out_channels, groups), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.down:
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None, skip: torch.Tensor | None = None):
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        if self.up or self.down:
            h = self.in_layers[2](self._resample(self.in_layers[1](self.in_layers[0](x))))
            x = self._resample(x)
        else:
            h = self.in_layers(x)
        h = self.out_layers[0](h)
        if emb is not None and hasattr(self, "emb_layers"):
            scale, shift = self.emb_layers(emb).type(h.dtype)[..., None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.out_layers[3](self.out_layers[2](self.out_layers[1](h)))
        return self.skip_connection(x) + h


class CrossAttention(nn.Module):
    """q from the normed UNet feature, k/v from the encoder feature at the same level."""

    def __init__(self, channels: int, num_heads: int = 1, groups: int = 32):
        super().__init__()
        self.num_heads = num_heads
        self.norm = norm(channels, groups)
        self.to_q = nn.Conv1d(channels, channels, 1)
        self.to_kv = nn.Conv1d(channels, 2 * channels, 1)
        self.proj_out2 = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out2.weight)
        nn.init.zeros_(self.proj_out2.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        q = self.to_q(self.norm(x))
        kv = self.to_kv(cond.reshape(b, c, -1))
        if q.shape[-1] != kv.shape[-1]:
            raise ValueError(f"pidm attention: UNet feature has {q.shape[-1]} positions, encoder feature "
                             f"{kv.shape[-1]}; they must come from the same resolution")
        # The official "legacy" split: concatenate [q, k, v] on channels, then cut into heads.
        heads, ch = self.num_heads, c // self.num_heads
        q, k, v = torch.cat([q, kv], 1).reshape(b * heads, 3 * ch, -1).split(ch, dim=1)
        scale = ch ** -0.25
        w = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        w = torch.softmax(w.float(), dim=-1).type(w.dtype)
        h = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, -1)
        return (x + self.proj_out2(h)).reshape(b, c, *spatial)


class Block(nn.ModuleList):
    """One official ``TimestepEmbedSequential``: a conv, or a res block optionally followed by
    attention and/or an up-sampling res block. Index = the official sub-module index."""

    def forward(self, h, emb=None, cond=None, skip=None):
        for layer in self:
            if isinstance(layer, ResBlock):
                h = layer(h, emb, skip)
                skip = None  # only the first res block of an output block takes the skip
            elif isinstance(layer, CrossAttention):
                h = layer(h, cond)
            else:
                h = layer(h)
        return h


def _input_stack(cfg: PIDMConfig, in_channels: int, emb_channels: int | None, attention: bool):
    """conv_in + levels of res blocks (+ attention) with down blocks between; returns blocks and the
    channel count of each block's output, per level (for the skips)."""
    ch = cfg.model_channels * cfg.channel_mult[0]
    blocks = nn.ModuleList([Block([nn.Conv2d(in_channels, ch, 3, padding=1)])])
    chans = [[ch]] + [[] for _ in cfg.channel_mult[1:]]
    res = cfg.image_size
    for level, mult in enumerate(cfg.channel_mult):
        for i in range(cfg.num_res_blocks):
            out = cfg.model_channels * mult
            layers = [ResBlock(ch, out, emb_channels, cfg.dropout, groups=cfg.norm_groups)]
            ch = out
            if attention and res in cfg.attention_resolutions and i == cfg.num_res_blocks - 1:
                layers.append(CrossAttention(ch, cfg.num_heads, cfg.norm_groups))
            blocks.append(Block(layers))
            chans[level].append(ch)
        if level != len(cfg.channel_mult) - 1:
            res //= 2
            blocks.append(Block([ResBlock(ch, ch, emb_channels, cfg.dropout, down=True, groups=cfg.norm_groups)]))
            chans[level + 1].append(ch)
    return blocks, chans, ch


class SourceEncoder(nn.Module):
    """The UNet's input-block stack on the source image, without time and attention; returns every
    block's output (official ``BeatGANsEncoder``)."""

    def __init__(self, cfg: PIDMConfig):
        super().__init__()
        self.input_blocks, _, _ = _input_stack(cfg, cfg.source_channels, None, attention=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, h = [], x
        for block in self.input_blocks:
            h = block(h)
            feats.append(h)
        return feats


class PIDMUNet(nn.Module):
    """Denoiser: ``forward(x_and_pose, t, feats)`` -> [B, out_channels, H, W]; ``encode(source)``
    gives ``feats`` (the null condition is ``encode(zeros)``, as the official sampler does)."""

    def __init__(self, cfg: PIDMConfig):
        super().__init__()
        self.config = cfg
        mc, ec = cfg.model_channels, cfg.embed_channels
        self.time_embed = nn.Module()
        self.time_embed.time_embed = nn.Sequential(nn.Linear(mc, ec), nn.SiLU(), nn.Linear(ec, ec))
        self.input_blocks, chans, ch = _input_stack(cfg, cfg.in_channels, ec, attention=True)
        g = cfg.norm_groups
        self.middle_block = Block([ResBlock(ch, ch, ec, cfg.dropout, groups=g), CrossAttention(ch, cfg.num_heads, g),
                                   ResBlock(ch, ch, ec, cfg.dropout, groups=g)])
        self.output_blocks = nn.ModuleList()
        res = cfg.image_size // cfg.downsampling
        self._skips = []  # per output block: does it take a skip (the official has_lateral)
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                ich = chans[level].pop() if chans[level] else 0
                out = mc * mult
                layers = [ResBlock(ch + ich, out, ec, cfg.dropout, groups=g)]
                ch = out
                if res in cfg.attention_resolutions and i == cfg.num_res_blocks - 1:
                    layers.append(CrossAttention(ch, cfg.num_heads, g))
                if level and i == cfg.num_res_blocks:
                    res *= 2
                    layers.append(ResBlock(ch, ch, ec, cfg.dropout, up=True, groups=g))
                self.output_blocks.append(Block(layers))
                self._skips.append(ich > 0)
        self.out = nn.Sequential(norm(ch, g), nn.SiLU(), nn.Conv2d(mc * cfg.channel_mult[0], cfg.out_channels, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)
        self.encoder = SourceEncoder(cfg)
        # blocks per level on the way down: conv_in or the down block, then num_res_blocks res blocks
        self._levels = [1 + cfg.num_res_blocks] * len(cfg.channel_mult)

    def for_inference(self, device, dtype) -> "PIDMUNet":
        """Eval mode on ``device`` in ``dtype``; on the CPU also in channels-last memory format, where
        oneDNN's convolutions are faster (published size, one thread: 0.94x the step time; outputs
        equal to 2e-5). The adapter and tools/bench_vs_official.py use this."""
        model = self.to(device, dtype).eval()
        if torch.device(device).type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        return model

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(source)

    def forward(self, x: torch.Tensor, t: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        if x.shape[-2] % self.config.downsampling or x.shape[-1] % self.config.downsampling:
            raise ValueError(f"pidm: image sides must be multiples of {self.config.downsampling}, got "
                             f"{tuple(x.shape[-2:])}")
        emb = self.time_embed.time_embed(timestep_embedding(t, self.config.model_channels))
        levels = [[] for _ in self._levels]
        k, h = 0, x
        for lvl, n in enumerate(self._levels):
            for _ in range(n):
                h = self.input_blocks[k](h, emb, feats[k])
                levels[lvl].append(h)
                k += 1
        h = self.middle_block(h, emb, feats[-1])
        k = 0
        for lvl in range(len(self._levels)):
            for _ in range(self.config.num_res_blocks + 1):
                stack = levels[-lvl - 1]
                skip = stack.pop() if stack else None
                if not self._skips[k]:
                    skip = None
                h = self.output_blocks[k](h, emb, feats[-k - 1], skip)
                k += 1
        return self.out(h)
