"""The tiny recipe's image prior: stage 2 diffuses the target's *residual* over a cheap first guess.

``stage2.prior`` (absent or ``none`` = the paper: the diffusion model generates the image itself):

- ``keypoint-warp``: the first guess is the non-learned keypoint warp (``fpdm_bench.modeling.keypoint_warp``,
  the keypoint-warp floor's) of the source onto the target pose, at the batch's size. The
  diffusion model then generates ``target - prior`` at the model resolution, conditioned as in the
  paper (fusion vector, source tokens, skeleton) and, in addition, on the prior itself (resized to
  the model resolution, three more channels of the pose embedding's input). The output is
  ``prior + upsampled residual``, at the batch's size.

Why (measured, docs/models/fpdm.md, "The shipped tiny checkpoints"): at 64x44 / 64x52 the image itself cannot be
generated precisely enough by a model trained from scratch in minutes on 2 CPU cores. Resizing
alone caps the PHOENIX MAE above keypoint-warp's; a residual is mostly zero where the warp is
right (the static background of a video, the moved body parts), so the loss of the low resolution
and of the patch-PCA latent only touches what the model changes. This is not in the FPDM paper;
the paper config keeps ``prior`` unset.
"""
from __future__ import annotations

import torch

PRIORS = ("none", "keypoint-warp")


def check_prior(kind: str | None) -> str:
    """The prior named by a stage-2 config (None = 'none'); raises ValueError for an unknown one."""
    kind = kind or "none"
    if kind not in PRIORS:
        raise ValueError(f"prior must be one of {', '.join(PRIORS)}, not {kind!r}")
    return kind


def prior_images(kind: str, source: torch.Tensor, source_kp: torch.Tensor, target_kp: torch.Tensor) -> torch.Tensor:
    """First guesses [B,3,H,W] in [0,1] at the source's size (same device and dtype as ``source``);
    keypoints [B,K,2] in the source's pixels, NaN = missing."""
    if kind == "keypoint-warp":
        from fpdm_bench.modeling.keypoint_warp import warp_batch

        return warp_batch(source, source_kp, target_kp).to(source.device, source.dtype)
    raise ValueError(f"prior {kind!r} draws no image")
