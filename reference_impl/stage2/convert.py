"""Map the official FPDM stage-2 checkpoint (PyTorch-Lightning ``.ckpt``) onto Stage2Model.

The official LightningModule ``FPDM`` (``src/diffusion/model.py``, latest version) registers:

- ``vae``: diffusers ``AutoencoderKL`` (diffusers 0.27 key names = ours);
- ``unet``: its own copy of diffusers' ``UNet2DConditionModel`` with ``class_embed_type='mlp'``:
  ``unet.class_embedding.net`` = (0 Linear, 1 GELU, 2 Dropout, 3 Linear, 4 Dropout), which is our
  ``fusion_proj``; every other UNet key is diffusers' own;
- ``sd_model``: holds the same ``unet`` object again (so its tensors repeat under
  ``sd_model.unet.``), ``srcimage_proj_model.net`` (0 Linear, 1 GELU, 2 Dropout, 3 LayerNorm,
  4 Linear, 5 Dropout) = our ``source_proj``, and ``pose_t_proj`` (``pose_proj`` in an earlier
  version), diffusers' ``ControlNetConditioningEmbedding`` = our ``pose_embed``;
- ``src_image_encoder``: DINOv2 (transformers 4.40 names; transformers 5 renamed the attention
  projections, mapped below) = our ``source_encoder``;
- ``fusion_model``: the stage-1 model (see ``reference_impl.stage1.convert``), not part of stage 2.

The metric helpers (FID, LPIPS, ...) are plain objects, not modules, so they have no keys.
"""
from __future__ import annotations

import torch

from fpdm_bench.errors import BenchError

#: official prefix -> ours (first match wins; more specific first)
PREFIXES = (
    ("unet.class_embedding.net.", "fusion_proj."),
    ("unet.", "unet."),
    ("vae.", "vae."),
    ("sd_model.srcimage_proj_model.net.", "source_proj."),
    ("sd_model.pose_t_proj.", "pose_embed."),
    ("sd_model.pose_proj.", "pose_embed."),
    ("src_image_encoder.", "source_encoder."),
)
DUPLICATE_PREFIX = ("sd_model.unet.", "unet.")  # same module object as unet.*
STAGE1_PREFIX = "fusion_model."

#: transformers 4.x DINOv2 attention names -> transformers 5.x
DINOV2_RENAMES = (
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
)


def _rename_dinov2(key: str) -> str:
    for old, new in DINOV2_RENAMES:
        key = key.replace(old, new)
    return key


def convert_official_stage2(state_dict: dict, return_stage1: bool = False):
    """Official Lightning state dict (or the whole .ckpt dict) -> Stage2Model state dict.

    ``sd_model.unet.*`` must equal ``unet.*`` and is dropped; ``fusion_model.*`` (stage 1) is left
    out, or returned with its prefix stripped as a second value when return_stage1 (feed it to
    ``convert_official_stage1``). Any other key is an error, so a layout change is noticed.
    """
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    out, stage1, unknown = {}, {}, []
    for key, value in state_dict.items():
        if key.startswith(STAGE1_PREFIX):
            stage1[key[len(STAGE1_PREFIX):]] = value
            continue
        if key.startswith(DUPLICATE_PREFIX[0]):
            twin = DUPLICATE_PREFIX[1] + key[len(DUPLICATE_PREFIX[0]):]
            if twin not in state_dict:  # only this copy was saved: use it
                key = twin
            elif not torch.equal(state_dict[twin], value):
                raise BenchError(f"official checkpoint: {key} differs from {twin}; they should be one module")
            else:
                continue
        for old, new in PREFIXES:
            if key.startswith(old):
                rest = key[len(old):]
                if new == "source_encoder.":
                    rest = _rename_dinov2("." + rest)[1:]
                    if rest.endswith("position_ids"):
                        break  # a buffer transformers rebuilds
                out[new + rest] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise BenchError(f"official stage-2 checkpoint: {len(unknown)} unexpected key(s), e.g. {unknown[:5]}")
    return (out, stage1) if return_stage1 else out
