"""Read an official FPDM checkpoint (either stage) and convert it to this implementation's keys.

``load_official_checkpoint(path)`` tells the stages apart by their keys: a stage-2 checkpoint has
``unet.*`` / ``sd_model.*`` (and carries its stage-1 model under ``fusion_model.*``), a stage-1
checkpoint has ``combiner.*`` and ``img_encoder.*`` at the top level. The result holds converted
state dicts; load them into models built from a config (``FusionModel``, ``Stage2Model``) with
``load_state_dict``.

transformers versions: the official code pins transformers 4.40.1. Its DINOv2 source encoder
(``src_image_encoder.*``) has 4.x attention names, which ``fpdm_bench_reference.stage2.convert`` maps to
the naming of the installed transformers (4.x or 5.x; see ``DINOV2_RENAMES`` there). 4.40.1 also
interpolates DINOv2's position embeddings with ``scale_factor`` and a +0.1 offset where later
versions (4.57, 5.x) use ``size=``; the ``paper`` config resamples as 4.40.1 does under any version
(``stage2.source_encoder.pos_interpolation``, see the stage-2 converter's docstring).

The converted folder carries every weight of the checkpoint, the frozen DINOv2 included: official
stage 2 encodes sources with the checkpoint's ``src_image_encoder.*``, so the DINOv2 folder named in
the config only supplies the architecture (a checkpoint without any DINOv2 weights gets that folder's,
stored in the converted folder too; one with only part of them is refused).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import click
import torch

from fpdm_bench.errors import BenchError, WeightsMissing


@dataclass
class OfficialCheckpoint:
    stage: int  # 1 or 2: which training stage wrote the file
    stage1: dict | None  # FusionModel state dict (stage-1 files, and stage-2 files that embed it)
    stage2: dict | None  # Stage2Model state dict (stage-2 files only)
    path: str


def detect_stage(state_dict: dict) -> int:
    """1 or 2 from the key layout of an official Lightning state dict."""
    keys = list(state_dict)
    if any(k.startswith(("sd_model.", "unet.")) for k in keys):
        return 2
    if any(k.startswith("combiner.") for k in keys) and any(k.startswith(("img_encoder.", "pose_encoder.")) for k in keys):
        return 1
    raise BenchError(f"not an official FPDM checkpoint: no stage-1 (combiner.*, img_encoder.*) or stage-2 "
                     f"(unet.*, sd_model.*) keys; first keys: {keys[:5]}")


def convert_official(state_dict: dict, path: str = "<state dict>") -> OfficialCheckpoint:
    """Convert an in-memory official state dict (or .ckpt dict) of either stage."""
    from fpdm_bench_reference.stage1.convert import convert_official_stage1
    from fpdm_bench_reference.stage2.convert import convert_official_stage2

    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    stage = detect_stage(state_dict)
    if stage == 1:
        return OfficialCheckpoint(1, convert_official_stage1(state_dict), None, path)
    stage2, stage1_raw = convert_official_stage2(state_dict, return_stage1=True)
    return OfficialCheckpoint(2, convert_official_stage1(stage1_raw) if stage1_raw else None, stage2, path)


#: modules whose classes a Lightning .ckpt may pickle beside the weights (hyper-parameters as an
#: AttributeDict or argparse Namespace, numpy scalars, the official code's own classes under src.*):
#: read as inert stand-ins by fpdm_bench.safe_load, never imported or called
LIGHTNING_STAND_INS = ("pytorch_lightning", "lightning", "lightning_fabric", "argparse", "omegaconf", "numpy",
                       "src", "__main__")


def load_official_checkpoint(path: str | Path, trust_pickle: bool = False) -> OfficialCheckpoint:
    """Read an official ``.ckpt`` and convert it (stage detected from the keys).

    Lightning pickles its hyper-parameters, which ``weights_only`` loading refuses; such a file is then
    read with the restricted unpickler (``fpdm_bench.safe_load``), which keeps the objects it does not
    need as inert stand-ins and refuses anything else. trust_pickle=True (a plain ``torch.load``) is
    only for a file from a source you trust that neither loader reads.
    """
    from fpdm_bench.safe_load import load_torch_pickle

    path = Path(path)
    if not path.is_file():
        raise WeightsMissing("official FPDM checkpoint", path.name, str(path.parent))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError:  # weights_only met a pickled object: read it without running anything
        try:
            ckpt = load_torch_pickle(path, LIGHTNING_STAND_INS)
        except BenchError as e:
            raise BenchError(f"{e}; if it is a Lightning checkpoint you trust, retry with trust_pickle=True") from None
    except Exception as e:  # RuntimeError, EOFError, ...: not a (whole) torch checkpoint
        raise BenchError(f"{path}: could not load ({str(e).splitlines()[0][:200]}); if it is a Lightning checkpoint "
                         "you trust, retry with trust_pickle=True") from None
    if not isinstance(ckpt, dict):
        raise BenchError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return convert_official(ckpt, str(path))


def convert_to_pipeline(ckpt: str | Path, out_dir: str | Path, stage1_config: dict, stage2_config: dict,
                        stage1_ckpt: str | Path | None = None, trust_pickle: bool = False,
                        save_dtype: torch.dtype | None = None) -> Path:
    """Official checkpoint(s) -> a pipeline folder (``stage1/`` + ``stage2/``) for ``FPDMPipeline``.

    ``ckpt`` is the official stage-2 file (it embeds its stage-1 model); ``stage1_ckpt`` replaces that
    stage-1 model (or supplies it, for files that lack it). The modules are built from the configs
    (for ``paper``: CLIP ViT-L/14, DINOv2-large and SD 2.1 from local folders) and loaded strictly, so a
    checkpoint that does not fit the configured architecture stops with the offending keys. Every
    weight loaded is written, DINOv2's included (``stage2.source_encoder.weights_from`` says whether
    they came from the checkpoint or from the configured folder): the folder is whole.
    """
    from fpdm_bench_reference.stage1.model import build_model as build_stage1
    from fpdm_bench_reference.stage2.model import build_model as build_stage2
    from fpdm_bench_reference.stage2.model import build_scheduler

    main = load_official_checkpoint(ckpt, trust_pickle)
    if main.stage != 2:
        raise BenchError(f"{ckpt}: a stage-1 checkpoint; pass the stage-2 file as the checkpoint "
                         f"(and this one with --stage1-ckpt)")
    stage1_state = main.stage1
    if stage1_ckpt is not None:
        stage1_state = load_official_checkpoint(stage1_ckpt, trust_pickle).stage1
    if stage1_state is None:
        raise BenchError(f"{ckpt}: holds no stage-1 (fusion_model.*) weights; pass --stage1-ckpt")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BenchError(f"{out_dir}: exists and is not empty; choose a new folder (nothing is overwritten)")
    fusion = build_stage1(stage1_config)
    _load_strict(fusion, stage1_state, "stage 1")
    model = build_stage2(stage2_config, fusion.embed_dim)
    _load_strict(model, main.stage2, "stage 2")
    # The folder carries every weight the checkpoint has, its DINOv2 included: the official stage 2 encodes
    # sources with the checkpoint's src_image_encoder.*, which need not be the DINOv2 folder the model was
    # built from (that folder only gives the architecture then). A file without them gets the folder's.
    has_encoder = any(k.startswith("source_encoder.") for k in main.stage2)
    model.config.setdefault("source_encoder", {})["weights_from"] = (
        "checkpoint" if has_encoder else str(model.config.get("source_encoder", {}).get("path")))
    model.store_source_encoder()
    fusion.save_pretrained(out_dir / "stage1")
    model.save_pretrained(out_dir / "stage2", dtype=save_dtype)
    build_scheduler(model.config).save_config(str(out_dir / "stage2"))
    return out_dir


def _load_strict(module: torch.nn.Module, state: dict, what: str) -> None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    if not any(k.startswith("source_encoder.") for k in state):
        # a stage-2 file without its frozen DINOv2 (none of it): the configured folder's is used; one
        # with part of it is incomplete and stops below
        missing = [k for k in missing if not k.startswith("source_encoder.")]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {n} (e.g. {v[:3]})" for n, v in (("missing", missing), ("unexpected", unexpected),
                                                            ("with another shape", wrong)) if v]
        raise BenchError(f"official {what} weights do not fit the configured model: {'; '.join(parts)}. "
                         f"Is the config the one the checkpoint was trained with?")
    module.load_state_dict(state, strict=False)


@click.command("convert")
@click.argument("ckpt", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New pipeline folder (stage1/ + stage2/).")
@click.option("--stage1-ckpt", default=None, type=click.Path(dir_okay=False),
              help="Official stage-1 file, if not the one embedded in CKPT.")
@click.option("--config", "config_name", default="paper", show_default=True, help="Preset or YAML for both stages.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Config override for either stage, e.g. stage1.clip_path=/models/clip-vit-large-patch14.")
@click.option("--fp16", is_flag=True, help="Store the stage-2 weights in float16.")
@click.option("--trust-pickle", is_flag=True, help="Allow unpickling Lightning's hyper-parameters (trusted files only).")
def convert_command(ckpt, out, stage1_ckpt, config_name, overrides, fp16, trust_pickle):
    """Convert an official FPDM checkpoint (PyTorch-Lightning .ckpt) into a pipeline folder.

    The result runs with `fpdm-bench run --model fpdm --checkpoint OUT`. Example:

    \b
      fpdm-bench fpdm convert fpdm_stage2.ckpt --out ckpt/fpdm-paper \\
        --set stage1.clip_path=/models/clip-vit-large-patch14 \\
        --set stage2.vae.path=/models/sd21 --set stage2.unet.path=/models/sd21 \\
        --set stage2.scheduler.path=/models/sd21 --set stage2.source_encoder.path=/models/dinov2-large
    """
    from fpdm_bench_reference.config import load_config

    s1 = [o for o in overrides if o.startswith("stage1.")]
    s2 = [o for o in overrides if not o.startswith("stage1.")]
    out_dir = convert_to_pipeline(ckpt, out, load_config("stage1", config_name, s1), load_config("stage2", config_name, s2),
                                  stage1_ckpt=stage1_ckpt, trust_pickle=trust_pickle,
                                  save_dtype=torch.float16 if fp16 else None)
    click.echo(f"wrote {out_dir} (run it with: fpdm-bench run --model fpdm --checkpoint {out_dir})")
