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
- ``src_image_encoder``: ``AutoModel.from_pretrained('facebook/dinov2-large')`` = transformers
  ``Dinov2Model``, frozen (official model.py l.303-307, l.323) = our ``source_encoder``;
- ``fusion_model``: the stage-1 model (see ``fpdm_bench_reference.stage1.convert``), not part of stage 2.

The metric helpers (FID, LPIPS, ...) are plain objects, not modules, so they have no keys.

DINOv2 names across transformers versions. The official code pins transformers 4.40.1
(requirements.txt l.14), whose ``Dinov2Model`` names the attention projections
``encoder.layer.N.attention.attention.{query,key,value}`` and
``encoder.layer.N.attention.output.dense``; transformers 5 calls them
``encoder.layer.N.attention.{q,k,v,o}_proj``. Every other name and every shape is the same for
dinov2-large (4.57.1 still has the 4.40 names; transformers 5 also splits the SwiGLU MLP of
dinov2-giant, which FPDM does not use and this converter does not handle). ``DINOV2_RENAMES`` is
that map, the same one transformers 5 applies itself when it reads a 4.x checkpoint
(``conversion_mapping.py``, entry ``Dinov2Model``). The converter accepts either naming and writes
the naming of the installed transformers (``dinov2_naming()``), so the result loads strictly under
4.x and 5.x alike. The key lists of both versions are in ``tests/fixtures/fpdm_keys/`` and checked
by ``tests/test_convert_dinov2.py``.

Numerics (not a key issue, but it matters for exact reproduction): transformers 4.40.1 resizes the
37x37 position-embedding grid of dinov2-large to the 36x36 grid of a 512x512 input with
``interpolate(scale_factor=((36 + 0.1) / 37, ...), mode='bicubic')`` (the DINO "+0.1" trick,
modeling_dinov2.py l.96-109 of the 4.40.1 wheel); later versions (4.57.1, 5.x) pass
``size=(36, 36)``. The output grid is the same but the bicubic sample points are not (source
spacing 37/36.1 vs 37/36 grid cells), so whenever the patch grid is not 37x37 the tokens differ
(measured on a seeded random dinov2-large: up to 0.03 at 512x512, 1.1 % relative at 256x176). The
``paper`` config sets ``stage2.source_encoder.pos_interpolation: official``, and ``Stage2Model`` then
resamples as 4.40.1 does under any transformers (``legacy_pos_interpolation``); the weights
themselves convert exactly.
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

#: transformers 4.x Dinov2Model attention names -> transformers 5.x (the only names that differ)
DINOV2_RENAMES = (
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
)
DINOV2_NAMINGS = ("4", "5")
_installed_naming: str | None = None


def dinov2_naming() -> str:
    """'4' or '5': which attention names the installed transformers' ``Dinov2Model`` uses.

    Read off a one-layer model, so it follows the code rather than a version number.
    """
    global _installed_naming
    if _installed_naming is None:
        from transformers import Dinov2Config, Dinov2Model

        with torch.device("meta"):
            keys = Dinov2Model(Dinov2Config(image_size=14, patch_size=14, hidden_size=4, num_hidden_layers=1,
                                             num_attention_heads=1, mlp_ratio=1)).state_dict()
        old, new = DINOV2_RENAMES[0]
        found = [naming for naming, name in zip(DINOV2_NAMINGS, (old, new)) if any(name[1:] in k for k in keys)]
        if len(found) != 1:
            raise BenchError("installed transformers: Dinov2Model attention names are neither the 4.x "
                             f"(attention.attention.query) nor the 5.x (attention.q_proj) ones: {sorted(keys)[:8]}")
        _installed_naming = found[0]
    return _installed_naming


def rename_dinov2(key: str, naming: str) -> str:
    """A Dinov2Model key (either naming) in the ``naming`` ('4' or '5') of transformers."""
    if naming not in DINOV2_NAMINGS:
        raise BenchError(f"DINOv2 naming {naming!r}: expected one of {DINOV2_NAMINGS}")
    pairs = DINOV2_RENAMES if naming == "5" else [(new, old) for old, new in DINOV2_RENAMES]
    for src, dst in pairs:
        key = key.replace(src, dst)
    return key


def convert_official_stage2(state_dict: dict, return_stage1: bool = False, dinov2_names: str | None = None):
    """Official Lightning state dict (or the whole .ckpt dict) -> Stage2Model state dict.

    ``sd_model.unet.*`` must equal ``unet.*`` and is dropped; ``fusion_model.*`` (stage 1) is left
    out, or returned with its prefix stripped as a second value when return_stage1 (feed it to
    ``convert_official_stage1``). Any other key is an error, so a layout change is noticed.
    ``source_encoder.*`` keys come out in the DINOv2 naming ``dinov2_names`` ('4' or '5'; default:
    the installed transformers'), whichever naming the file has.
    """
    naming = dinov2_names or dinov2_naming()
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
                    rest = rename_dinov2("." + rest, naming)[1:]
                    if rest.endswith("position_ids"):
                        break  # a buffer transformers rebuilds
                out[new + rest] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise BenchError(f"official stage-2 checkpoint: {len(unknown)} unexpected key(s), e.g. {unknown[:5]}")
    return (out, stage1) if return_stage1 else out
