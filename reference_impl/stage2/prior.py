"""The tiny recipe's image prior: stage 2 diffuses the target's *residual* over a cheap first guess.

``stage2.prior`` (absent or ``none`` = the paper: the diffusion model generates the image itself;
``keypoint-warp``: the keypoint warp of the source onto the target pose). The prior is one recipe
option shared by every tiny model (FPDM, PIDM, CFLD, PoCoLD), implemented once in
``fpdm_bench.modeling.warp_prior`` and re-exported here for stage 2: the prior image at the batch's
size, the residual the VAE encodes, ``prior + upsampled residual`` at sampling. Stage 2 also sees the
prior (resized to the model resolution) as three more channels of the pose embedding's input.

Why (measured, docs/models/fpdm.md, "The shipped tiny checkpoints"): at 64x44 / 64x52 the image itself
cannot be generated precisely enough by a model trained from scratch in minutes on 2 CPU cores; a
residual is mostly zero where the warp is right, so the loss of the low resolution and of the
patch-PCA latent only touches what the model changes. Not in the FPDM paper; the paper config keeps
``prior`` unset.
"""
from __future__ import annotations

from fpdm_bench.modeling.warp_prior import PRIORS, check_prior, prior_images

__all__ = ["PRIORS", "check_prior", "prior_images"]
