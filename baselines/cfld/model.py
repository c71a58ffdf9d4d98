"""CFLD's condition network (the released ``pytorch_model.bin``): Swin backbone, appearance encoder,
pose encoder, decoder and the learned null text embedding.

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``pose_transfer_train.py:35-122``, read, never copied;
docs/models/cfld.md): the attribute names are the file's key prefixes (``backbone``,
``appearance_encoder``, ``pose_encoder``, ``decoder``, ``learnable_vector``); at inference
``forward`` gives the null embedding (``learnable_vector`` expanded), the decoder's output from the
last Swin stage, the pose residuals and the appearance residuals. ``CFLDConfig.from_official``
reads the official yacs config (as a dict) so a checkpoint's own config builds the network.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from fpdm_bench_baselines.cfld.appearance import BLOCK_IDX, AppearanceEncoder
from fpdm_bench_baselines.cfld.decoder import Decoder
from fpdm_bench_baselines.cfld.pose_encoder import PoseEncoder
from fpdm_bench_baselines.cfld.swin import SwinBackbone, SwinConfig


@dataclass
class CFLDConfig:
    """The published model by default (configs/fashion_256.yaml on defaults/deepfashion.py)."""

    cond_size: int = 256                      # INPUT.COND.IMG_SIZE (square, the Swin input)
    pose_size: int = 256                      # INPUT.POSE.IMG_SIZE
    pose_sigma: float = 6.0                   # heatmap sigma in canvas pixels (pose_utils.py: 6, at any size)
    swin: dict = field(default_factory=lambda: {"embed_dim": 128, "depths": [2, 2, 18, 2],
                                                "num_heads": [4, 8, 16, 32], "window_size": 16})
    appearance: dict = field(default_factory=lambda: {
        "inner_dims": [128] * 3 + [256] * 3 + [512] * 3, "ctx_dims": [320] * 3 + [640] * 3 + [1280] * 3,
        "embed_dims": [64] * 3 + [128] * 3 + [256] * 3, "heads": [2] * 3 + [4] * 3 + [8] * 3, "depth": 4,
        "block_idx": list(BLOCK_IDX)})
    pose: dict = field(default_factory=lambda: {"pose_channels": 21, "downscale_factor": 4, "in_channels": 320,
                                                "channels": [320, 640, 1280]})
    decoder: dict = field(default_factory=lambda: {"n_ctx": 16, "ctx_dim": 768, "heads": 24, "depth": 8})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_official(cls, cfg: dict) -> "CFLDConfig":
        m, i = cfg["MODEL"], cfg["INPUT"]
        s, a, p, d = (m["COND_STAGE_CONFIG"], m["APPEARANCE_GUIDANCE_CONFIG"], m["POSE_GUIDANCE_CONFIG"],
                      m["DECODER_CONFIG"])
        unsupported = [k for k, ok in (("LAST_NORM", not s.get("LAST_NORM")), ("POSE_QUERY", not d.get("POSE_QUERY")),
                                       ("TO_QUERIES", a.get("TO_QUERIES") and not a.get("TO_SELF_ATTN")),
                                       ("CONVIN 1x1", set(a["CONVIN_KERNEL_SIZE"]) == {1})) if not ok]
        if unsupported:
            raise ValueError(f"cfld: this port covers the released configuration; not supported: {unsupported}")
        return cls(cond_size=i["COND"]["IMG_SIZE"][0], pose_size=i["POSE"]["IMG_SIZE"][0],
                   swin={"embed_dim": s["EMBED_DIM"], "depths": s["DEPTHS"], "num_heads": s["NUM_HEADS"],
                         "window_size": s["WINDOW_SIZE"]},
                   appearance={"inner_dims": a["INNER_DIMS"], "ctx_dims": a["CTX_DIMS"], "embed_dims": a["EMBED_DIMS"],
                               "heads": a["HEADS"], "depth": a["DEPTH"], "block_idx": a["ATTN_RESIDUAL_BLOCK_IDX"]},
                   pose={"pose_channels": p["POSE_CHANNELS"], "downscale_factor": p["DOWNSCALE_FACTOR"],
                         "in_channels": p["IN_CHANNELS"], "channels": p["CHANNELS"]},
                   decoder={"n_ctx": d["N_CTX"], "ctx_dim": d["CTX_DIM"], "heads": d["HEADS"], "depth": d["DEPTH"]})


class CFLDConditioner(nn.Module):
    """``forward(source [B,3,S,S] in [-1,1], pose [B,21,P,P] in [0,1])`` ->
    (null text [B,n,d], text [B,n,d], pose residuals [3], appearance residuals {idx: [B,L,C]})."""

    def __init__(self, cfg: CFLDConfig):
        super().__init__()
        self.config = cfg
        s = cfg.swin
        self.backbone = SwinBackbone(SwinConfig(img_size=cfg.cond_size, embed_dim=s["embed_dim"],
                                                depths=tuple(s["depths"]), num_heads=tuple(s["num_heads"]),
                                                window_size=s["window_size"]))
        a = cfg.appearance
        self.appearance_encoder = AppearanceEncoder(a["inner_dims"], a["ctx_dims"], a["embed_dims"], a["heads"],
                                                    a["depth"], a["block_idx"])
        p = cfg.pose
        self.pose_encoder = PoseEncoder(p["pose_channels"], p["downscale_factor"], p["in_channels"], tuple(p["channels"]))
        d = cfg.decoder
        stage4 = s["embed_dim"] * 2 ** (len(s["depths"]) - 1)
        self.decoder = Decoder(d["n_ctx"], d["ctx_dim"], d["heads"], d["depth"], stage4, (cfg.cond_size // 32) ** 2)
        self.learnable_vector = nn.Parameter(torch.randn(1, d["n_ctx"], d["ctx_dim"]))

    def forward(self, source: torch.Tensor, pose: torch.Tensor):
        _, features = self.backbone(source)
        appearance = self.appearance_encoder(features)
        text = self.decoder(features[-1])
        null = self.learnable_vector.expand(source.shape[0], -1, -1).to(text.dtype)
        return null, text, self.pose_encoder(pose), appearance
