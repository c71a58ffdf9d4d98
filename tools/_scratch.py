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
