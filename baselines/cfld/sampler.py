"""CFLD's sampler: DDPM, 50 steps, three-branch guidance in one batched UNet call.

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``pose_transfer_test.py:79-98,270-352``, read, never
copied; docs/models/cfld.md): ``DDPMScheduler`` configured from SD's scheduler JSON (scaled_linear
0.00085 -> 0.012 over 1000 steps, "leading" spacing with offset 1, epsilon prediction, no
clipping, fixed_small variance; 50 steps = 981, 961, ..., 1, noise drawn at every step); per step
one UNet call on [uc, down, full] = [(null vector, no residuals), (null vector, pose residuals),
(decoder output, pose + appearance residuals)], guided as
``uc + s_pose * (down - uc) + s_app * (full - down)`` with both scales 2. The official noise comes
from one global RNG (seed 3407), so its samples depend on the batch; here every pair's initial and
step noise come from its own generator (diffusers draws per generator when given a list).
"""
from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler

SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
             "clip_sample": False, "steps_offset": 1, "timestep_spacing": "leading", "prediction_type": "epsilon",
             "variance_type": "fixed_small", "thresholding": False}


#: ddpm = the official; ddim = the same schedule and timesteps sampled deterministically (eta 0), an
#: fpdm-bench option for the sampling search every tiny model gets (docs/training.md)
SCHEDULERS = ("ddpm", "ddim")


def make_scheduler(steps: int = 50, kind: str = "ddpm"):
    if kind == "ddim":
        scheduler = DDIMScheduler(**{k: v for k, v in SCHEDULER.items() if k != "variance_type"}, set_alpha_to_one=False)
    else:
        scheduler = DDPMScheduler(**SCHEDULER)
    scheduler.set_timesteps(int(steps))
    return scheduler


def guided_eps(unet, latents, t, null_text, text, pose, appearance, pose_scale: float = 2.0,
               appearance_scale: float = 2.0) -> torch.Tensor:
    """The three branches in one batch of 3B, combined as the official ``uc_down_full`` guidance."""
    zero = torch.zeros_like
    out = unet(torch.cat([latents] * 3), t, torch.cat([null_text, null_text, text]),
               pose=[torch.cat([zero(p), p, p]) for p in pose],
               appearance={k: torch.cat([zero(v), zero(v), v]) for k, v in appearance.items()})
    uc, down, full = out.chunk(3)
    return uc + pose_scale * (down - uc) + appearance_scale * (full - down)


@torch.no_grad()
def sample(unet, latents, null_text, text, pose, appearance, generators, steps: int = 50,
           pose_scale: float = 2.0, appearance_scale: float = 2.0, progress=None, scheduler: str = "ddpm") -> torch.Tensor:
    scheduler = make_scheduler(steps, scheduler)
    for t in scheduler.timesteps:
        eps = guided_eps(unet, latents, t, null_text, text, pose, appearance, pose_scale, appearance_scale)
        latents = scheduler.step(eps, t, latents, generator=generators).prev_sample
        if progress:
            progress()
    return latents
