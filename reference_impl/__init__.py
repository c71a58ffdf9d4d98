"""Reference FPDM implementation (stage 1 fusion embedding, stage 2 latent diffusion)."""
from fpdm_bench import _tv_shim  # noqa: F401  (must precede any torchvision/diffusers import)
