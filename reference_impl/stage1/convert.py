"""Load the official FPDM stage-1 checkpoint (PyTorch-Lightning ``.ckpt``) into FusionModel.

The official LightningModule (``src/fusion/models.py``) holds:

- ``img_encoder``: ``CLIPVisionModelWithProjection`` (its keys are transformers' own, unchanged);
- ``pose_encoder``: the *same* module object again, so a saved state dict repeats every tower
  tensor under this second prefix;
- ``attention``: an auxiliary patch-token attention block trained alongside (not used for the
  fusion embedding, not part of this reimplementation);
- ``combiner``: ``kpt_projection_layer``, ``image_projection_layer``, ``combiner_layer``,
  ``output_layer``, ``dynamic_scalar`` (Sequential: 0 Linear, 1 ReLU, 2 Dropout, 3 Linear,
  4 Sigmoid).

Ours: ``tower`` and ``combiner.{pose_proj, image_proj, combine, output, gate}``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from fpdm_bench.errors import BenchError, WeightsMissing

TOWER_PREFIX = "img_encoder."
DUPLICATE_TOWER_PREFIX = "pose_encoder."
DROPPED_PREFIXES = ("attention.",)
COMBINER_NAMES = {
    "kpt_projection_layer": "pose_proj",
    "image_projection_layer": "image_proj",
    "combiner_layer": "combine",
    "output_layer": "output",
    "dynamic_scalar": "gate",
}


def convert_official_stage1(state_dict: dict, return_dropped: bool = False):
    """Official Lightning state dict (or the whole .ckpt dict) -> FusionModel state dict.

    The duplicate ``pose_encoder.*`` copy is checked equal to ``img_encoder.*`` and dropped; the
    ``attention.*`` branch and ``position_ids`` buffers (rebuilt by transformers) are dropped. Any
    other unknown key is an error, so a layout change is noticed instead of silently ignored.
    With return_dropped, also returns the list of dropped keys.
    """
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    out, dropped, unknown = {}, [], []
    for key, value in state_dict.items():
        if key.endswith("position_ids") or key.startswith(DROPPED_PREFIXES):
            dropped.append(key)
        elif key.startswith(DUPLICATE_TOWER_PREFIX):
            twin = TOWER_PREFIX + key[len(DUPLICATE_TOWER_PREFIX):]
            if twin in state_dict and not torch.equal(state_dict[twin], value):
                raise BenchError(f"official checkpoint: {key} differs from {twin}; the two encoders should be one module")
            if twin not in state_dict:  # keep it if the checkpoint only has this copy
                out["tower." + key[len(DUPLICATE_TOWER_PREFIX):]] = value
            else:
                dropped.append(key)
        elif key.startswith(TOWER_PREFIX):
            out["tower." + key[len(TOWER_PREFIX):]] = value
        elif key.startswith("combiner."):
            head, _, rest = key[len("combiner."):].partition(".")
            if head not in COMBINER_NAMES:
                unknown.append(key)
            else:
                out[f"combiner.{COMBINER_NAMES[head]}.{rest}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise BenchError(f"official checkpoint: {len(unknown)} unexpected key(s), e.g. {unknown[:5]}")
    return (out, dropped) if return_dropped else out


def load_official_checkpoint(ckpt_path: str | Path, config: dict, trust_pickle: bool = False):
    """FusionModel (built from ``config``'s stage1 section) with the official .ckpt weights loaded.

    Lightning checkpoints pickle their hyper-parameters, which ``weights_only`` loading refuses;
    pass trust_pickle=True only for a file from a source you trust.
    """
    from fpdm_bench_reference.stage1.model import build_model

    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise WeightsMissing("official FPDM stage-1 checkpoint", ckpt_path.name, str(ckpt_path.parent))
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as e:  # torch raises UnpicklingError or RuntimeError depending on content
        raise BenchError(f"{ckpt_path}: could not load ({str(e).splitlines()[0][:200]}); if it is a Lightning "
                         "checkpoint you trust, retry with trust_pickle=True") from None
    model = build_model(config)
    state = convert_official_stage1(ckpt)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise BenchError(f"{ckpt_path}: does not fit the configured model (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}); check stage1.combiner sizes and the CLIP tower")
    return model.eval()
