"""Reference FPDM implementation (stage 1 fusion embedding, stage 2 latent diffusion)."""
import fpdm_bench  # noqa: F401  (runs the torchvision shim, which must precede any torchvision/diffusers import)
