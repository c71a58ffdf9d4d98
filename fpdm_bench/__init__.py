"""fpdm-bench: one harness for pose-guided person image synthesis models.

The torchvision shim must run before anything imports torchvision, transformers or diffusers;
importing this package first is how every entry point guarantees that.
"""
from fpdm_bench import _tv_shim  # noqa: F401  (side effect: see _tv_shim.py)

__version__ = "0.1.0"
