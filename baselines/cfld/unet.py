"""CFLD's denoiser: Stable Diffusion 1.5's UNet whose up-block cross-attention queries take the
appearance residuals, and whose first three down blocks take the pose residuals.

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``models/unet.py``, read, never copied;
docs/models/cfld.md):
- the network is diffusers' ``UNet2DConditionModel`` built from SD 1.5's config, wrapped as
  ``.model`` (so ``pytorch_model_1.bin`` holds ``model.<diffusers key>``) (:1906-1911); the official
  up blocks are subclasses that only thread a block index and the residuals through (:1910-1920);
- up block i, attention j has index ``i * len(resnets) + j`` (:955-983; the same number as the
  trainable-block rule ``i * len(attentions) + j``, :1920): 3 i + j for SD 1.5 (layers_per_block 2:
  i 1..3, j 0..2, indices 3..11), 2 i + j for layers_per_block 1; in its cross-attention (``attn2``) the
  residual [B, H*W, C] is added to ``to_q(norm2(h))`` before the heads are split (:57-63); the
  official processor exists only for xformers, so ``QueryResidualProcessor`` is our SDPA one;
- the pose residuals are diffusers' T2I-adapter path (``down_intrablock_additional_residuals``):
  each of the first three down blocks adds one to the output of its last resnet + attention pair.
"""
from __future__ import annotations

import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from torch import nn

# SD 1.5's UNet (runwayml/stable-diffusion-v1-5 unet/config.json, as shipped in the CFLD repo's
# pretrained_models/unet): the architecture only; CFLD's checkpoint carries every weight.
SD15_UNET = {"act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
             "center_input_sample": False, "cross_attention_dim": 768,
             "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
             "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
             "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}


class QueryResidualProcessor:
    """Cross-attention with ``residuals[index]`` (when set) added to the query; SDPA otherwise as
    diffusers' ``AttnProcessor2_0`` (SD's cross-attention has no group norm, residual or rescale)."""

    def __init__(self, index: int, residuals: dict):
        self.index, self.residuals = index, residuals

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        b, n, _ = hidden_states.shape
        query = attn.to_q(hidden_states)
        extra = self.residuals.get(self.index)
        if extra is not None:
            query = query + extra.to(query.dtype)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        key, value = attn.to_k(context), attn.to_v(context)
        d = key.shape[-1] // attn.heads
        q, k, v = (t.view(b, -1, attn.heads, d).transpose(1, 2) for t in (query, key, value))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
        out = out.transpose(1, 2).reshape(b, -1, attn.heads * d).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


class CFLDUNet(nn.Module):
    """``forward(latents, t, text, pose=None, appearance=None)``: pose = [3 residuals] for down blocks
    0-2, appearance = {i * len(resnets) + j: query residual} for the up-block cross-attentions (3 i + j
    for SD 1.5; missing = none)."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.model = UNet2DConditionModel(**{k: v for k, v in (config or SD15_UNET).items() if not k.startswith("_")})
        self._residuals: dict = {}
        for i, block in enumerate(self.model.up_blocks):
            for j, attn in enumerate(getattr(block, "attentions", None) or []):
                for tb in attn.transformer_blocks:
                    tb.attn2.set_processor(QueryResidualProcessor(i * len(block.resnets) + j, self._residuals))

    def forward(self, latents, t, text, pose: list | None = None, appearance: dict | None = None):
        self._residuals.clear()
        self._residuals.update(appearance or {})
        try:
            return self.model(latents, t, encoder_hidden_states=text,
                              down_intrablock_additional_residuals=list(pose) if pose is not None else None).sample
        finally:
            self._residuals.clear()
