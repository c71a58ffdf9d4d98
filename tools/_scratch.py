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


def numpy_of(t):
    """A tensor as a float32 numpy array (for golden files)."""
    return t.detach().cpu().float().numpy().astype("float32")


def shapes(module) -> dict:
    """State-dict key -> shape (a key manifest)."""
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def reinit(named_params, gen, std):
    """All-zero -> N(0, std); all-one -> 1 + N(0, std), so zero-initialised layers (zero convs, scales
    at 1) take part in the golden outputs. Returns the names."""
    import torch

    changed = []
    with torch.no_grad():
        for name, p in named_params:
            if p.numel() and bool((p == 0).all()):
                p.copy_(torch.randn(p.shape, generator=gen) * std)
                changed.append(name)
            elif p.numel() and bool((p == 1).all()):
                p.copy_(1 + torch.randn(p.shape, generator=gen) * std)
                changed.append(name)
    return changed


def zip_info(path) -> dict:
    """Pickle protocol, globals and record names of a torch.save zip file."""
    import pickletools
    import zipfile

    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next(n for n in names if n.endswith("data.pkl"))
        data = zf.read(pkl)
    globs, recent = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            globs.add(arg.replace(" ", "."))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            recent.append(arg)
        elif op.name == "STACK_GLOBAL":
            globs.add(f"{recent[-2]}.{recent[-1]}")
    proto = next(arg for op, arg, _ in pickletools.genops(data) if op.name == "PROTO")
    return {"pickle_entry": pkl, "protocol": proto, "globals": sorted(globs),
            "entries": sorted({n.split("/")[1] for n in names if "/" in n and not n.split("/")[1].isdigit()})}
