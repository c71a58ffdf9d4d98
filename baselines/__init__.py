"""Baseline adapters (PIDM, CFLD, PoCoLD) and the floors that appear in every table."""
from fpdm_bench import _tv_shim  # noqa: F401  (must precede any torchvision/diffusers import)
