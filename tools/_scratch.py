"""What the scripts that run official code share (they run in a scratch venv without fpdm-bench
installed, so they import this file from tools/, not the package)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def torchvision_op_shim() -> str:
    """Apply the project's torchvision shim (fpdm_bench/_tv_shim.py, loaded by path: importing the
    package would need its dependencies) so ``import torchvision`` works on a CPU-only torch."""
    spec = importlib.util.spec_from_file_location("_fpdm_tv_shim", ROOT / "fpdm_bench" / "_tv_shim.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    globals()["_shim"] = module  # keep its torch.library.Library alive
    return module.apply()


def jsonable(value):
    """Tuples -> lists, keys -> str, 0-d arrays / numpy scalars -> Python numbers (for json.dump)."""
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def start(doc: str, official_help: str, argv=None) -> tuple[Path, Path, dict]:
    """Parse ``--official DIR --out DIR``, make the output folder, run torch on one thread, apply the
    torchvision shim and put the official checkout first on sys.path. Returns (official, out, notes)."""
    import argparse
    import sys

    import torch

    ap = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    ap.add_argument("--official", required=True, type=Path, help=official_help)
    ap.add_argument("--out", required=True, type=Path, help="fixture folder to write")
    args = ap.parse_args(argv)
    official, out_dir = args.official.resolve(), args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    notes = {"torchvision_shim": torchvision_op_shim()}
    sys.path.insert(0, str(official))
    return official, out_dir, notes
