"""Baseline adapters (PIDM, CFLD, PoCoLD) and the floors that appear in every table."""
import fpdm_bench  # noqa: F401  (runs the torchvision shim, which must precede any torchvision/diffusers import)
