"""PIDM's Gaussian diffusion: the schedule, classifier-free guidance, the two samplers, the loss.

Facts (github.com/ankanbhunia/PIDM at e4f1d88, read, never copied):
- ``config/diffusion.conf`` linear betas 1e-4 .. 2e-2 over 1000 steps (float64, ``diffusion.py:62-89``).
- The network predicts eps and, in 3 more channels, v in [-1, 1] that interpolates the log-variance
  between the posterior's (clipped) and beta's (``diffusion.py:302-318``, improved DDPM's
  "learned range").
- Guidance (``models/unet_autoenc.py:117-131``): ``null + s * (cond - null)`` on all 6 output
  channels, where "null" is the encoder's features of an all-zero source image and the pose is kept
  (``diffusion.py:27``, ``:496``).
- DDIM (``diffusion.py:26-57``, used by ``utils/gen.py`` and ``predict.py``): timesteps
  ``range(0, 1000, 1000 // steps)`` visited in reverse, eta 0, no clipping of x0, alphas in float64;
  ``utils/gen.py`` uses 100 steps and ``ddim_steps`` hard-codes the guidance scale 2.
- Ancestral (``diffusion.py:438-530``, ``p_sample_loop``): all 1000 steps, x0 clipped to [-1, 1],
  posterior mean, learned variance, no noise at t = 0. ``utils/gen.py``'s "ddpm" branch calls a
  different loop that mixes source features across the batch; that is not reproduced. Here the
  ancestral sampler may also run on a subsequence of the steps (improved DDPM respacing: betas
  recomputed from the kept alpha-bars); with every step it is the official loop.
- Loss (``diffusion.py:947-1023``, ``train.py:118-125``): MSE on eps + the variational bound term
  for the variance with the mean's gradient stopped (in bits per dimension, not rescaled); t
  uniform in [0, 1000); the condition dropped (zero source image) with probability 0.1.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from fpdm_bench.seeding import per_sample_randn

SAMPLERS = ("ddim", "ddpm")


def linear_betas(n: int = 1000, start: float = 1e-4, end: float = 2e-2) -> np.ndarray:
    return np.linspace(start, end, n, dtype=np.float64)


def ddim_timesteps(steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """The official DDIM grid: 0, T/steps, 2T/steps, ... (ascending; sampled in reverse)."""
    if not 1 <= int(steps) <= num_train_timesteps:
        raise ValueError(f"pidm: steps must be in 1..{num_train_timesteps}, got {steps}")
    return list(range(0, num_train_timesteps, num_train_timesteps // int(steps)))


def respaced_timesteps(steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """``steps`` timesteps spread evenly over [0, T-1], both ends included (all of them when steps = T)."""
    if not 1 <= int(steps) <= num_train_timesteps:
        raise ValueError(f"pidm: steps must be in 1..{num_train_timesteps}, got {steps}")
    if steps == 1:
        return [num_train_timesteps - 1]
    return sorted({round(i * (num_train_timesteps - 1) / (steps - 1)) for i in range(steps)})


def _take(arr: np.ndarray, idx: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """arr[idx] as float32 broadcast over ``like`` (the official ``_extract_into_tensor``)."""
    out = torch.from_numpy(arr).to(idx.device)[idx].float()
    return out.view(-1, *([1] * (like.ndim - 1))).to(like.device)


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """Log-likelihood (nats) of 8-bit images x in [-1, 1] under a Gaussian discretised to bins of 2/255."""
    centered, inv_std = x - means, torch.exp(-log_scales)
    cdf_plus = _approx_std_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


class GaussianDiffusion:
    """The process for a beta schedule (float64 numpy); ``timestep_map`` maps the (possibly respaced)
    step index to the timestep the network was trained with."""

    def __init__(self, betas: np.ndarray, timestep_map: list[int] | None = None):
        betas = np.asarray(betas, dtype=np.float64)
        self.betas = betas
        self.num_timesteps = len(betas)
        self.timestep_map = list(timestep_map) if timestep_map is not None else list(range(len(betas)))
        acp = np.cumprod(1.0 - betas)
        acp_prev = np.append(1.0, acp[:-1])
        self.alphas_cumprod = acp
        self.sqrt_alphas_cumprod = np.sqrt(acp)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - acp)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / acp)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / acp - 1)
        self.posterior_variance = betas * (1.0 - acp_prev) / (1.0 - acp)
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(acp_prev) / (1.0 - acp)
        self.posterior_mean_coef2 = (1.0 - acp_prev) * np.sqrt(1.0 - betas) / (1.0 - acp)

    @classmethod
    def pidm(cls) -> "GaussianDiffusion":
        return cls(linear_betas())

    def respaced(self, steps: int) -> "GaussianDiffusion":
        """The same process on ``respaced_timesteps(steps)``: betas from the kept alpha-bars."""
        keep = respaced_timesteps(steps, self.num_timesteps)
        last, betas = 1.0, []
        for t in keep:
            betas.append(1.0 - self.alphas_cumprod[t] / last)
            last = self.alphas_cumprod[t]
        return GaussianDiffusion(np.array(betas), [self.timestep_map[t] for t in keep])

    # -- forward process ---------------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return _take(self.sqrt_alphas_cumprod, t, x0) * x0 + _take(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise

    def q_posterior(self, x0, xt, t):
        mean = _take(self.posterior_mean_coef1, t, xt) * x0 + _take(self.posterior_mean_coef2, t, xt) * xt
        return mean, _take(self.posterior_log_variance_clipped, t, xt)

    # -- reverse process ---------------------------------------------------------------------------
    def p_mean_variance(self, out: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, clip: bool = True) -> dict:
        """Mean, log-variance and x0 of p(x_{t-1} | x_t) from the 6-channel network output."""
        eps, v = out.split(xt.shape[1], dim=1)
        min_log = _take(self.posterior_log_variance_clipped, t, xt)
        max_log = _take(np.log(self.betas), t, xt)
        frac = (v + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = _take(self.sqrt_recip_alphas_cumprod, t, xt) * xt - _take(self.sqrt_recipm1_alphas_cumprod, t, xt) * eps
        if clip:
            x0 = x0.clamp(-1, 1)
        mean, _ = self.q_posterior(x0, xt, t)
        return {"mean": mean, "log_variance": log_var, "pred_xstart": x0}

    def training_losses(self, out: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                        noise: torch.Tensor) -> dict:
        """Per-sample losses from the network output at (xt, t): ``mse`` (eps), ``vb`` (variance, bits
        per dimension, the mean's gradient stopped) and ``loss`` = mse + vb."""
        eps, v = out.split(x0.shape[1], dim=1)
        frozen = torch.cat([eps.detach(), v], dim=1)
        true_mean, true_log_var = self.q_posterior(x0, xt, t)
        p = self.p_mean_variance(frozen, xt, t, clip=False)
        kl = normal_kl(true_mean, true_log_var, p["mean"], p["log_variance"]).mean(dim=(1, 2, 3)) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, p["mean"], 0.5 * p["log_variance"])
        nll = nll.mean(dim=(1, 2, 3)) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
        return {"mse": mse, "vb": vb, "loss": mse + vb}


def guided(model, x: torch.Tensor, pose: torch.Tensor, t: torch.Tensor, feats, null_feats, scale: float):
    """``null + scale * (cond - null)`` on the full output. scale 1 = no guidance (one branch). On a
    GPU both branches run in one batch; on the CPU as two calls, as the official code runs them:
    there the batched call (and re-joining the 18 source feature maps every step) measured 1.03x the
    official step time, two calls 0.92x (docs/speed-vs-official.md)."""
    inp = torch.cat([x, pose], dim=1).to(pose.dtype)
    if scale == 1:
        return model(inp, t, feats)
    if inp.device.type == "cpu":
        cond, null = model(inp, t, feats), model(inp, t, null_feats)
    else:
        both = model(torch.cat([inp, inp]), torch.cat([t, t]), [torch.cat([c, n]) for c, n in zip(feats, null_feats)])
        cond, null = both.chunk(2)
    return null + (cond - null) * scale


@torch.no_grad()
def ddim_sample(model, source: torch.Tensor, pose: torch.Tensor, noise: torch.Tensor, steps: int = 100,
                guidance: float = 2.0, diffusion: GaussianDiffusion | None = None, progress=None) -> torch.Tensor:
    """The official DDIM loop (eta 0). The state stays float64, as the official loop's does (its
    alphas are float64 and promote it); the network runs in its own dtype."""
    diffusion = diffusion or GaussianDiffusion.pidm()
    acp = torch.from_numpy(diffusion.alphas_cumprod).to(noise.device)
    feats, null_feats = model.encode(source), model.encode(torch.zeros_like(source))
    seq = ddim_timesteps(steps, diffusion.num_timesteps)
    x = noise.double()
    n = x.shape[0]
    for i, j in zip(reversed(seq), reversed([-1] + seq[:-1])):
        t = torch.full((n,), float(i), device=x.device)
        a = acp[i]
        a_next = acp[j] if j >= 0 else torch.ones((), dtype=acp.dtype, device=acp.device)
        out = guided(model, x.to(pose.dtype), pose, t, feats, null_feats, guidance)
        eps = out[:, :x.shape[1]].double()
        x0 = (x - eps * (1 - a).sqrt()) / a.sqrt()
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        if progress:
            progress()
    return x


@torch.no_grad()
def ancestral_sample(model, source: torch.Tensor, pose: torch.Tensor, noise: torch.Tensor,
                     generators: list[torch.Generator], steps: int = 1000, guidance: float = 2.0,
                     diffusion: GaussianDiffusion | None = None, progress=None) -> torch.Tensor:
    """Ancestral sampling with the learned variance on ``respaced_timesteps(steps)``; per-step noise
    of sample i comes from generators[i] alone."""
    base = diffusion or GaussianDiffusion.pidm()
    diff = base if steps == base.num_timesteps else base.respaced(steps)
    feats, null_feats = model.encode(source), model.encode(torch.zeros_like(source))
    x = noise.float()
    n = x.shape[0]
    for k in reversed(range(diff.num_timesteps)):
        idx = torch.full((n,), k, device=x.device, dtype=torch.long)
        t = torch.full((n,), float(diff.timestep_map[k]), device=x.device)
        out = guided(model, x.to(pose.dtype), pose, t, feats, null_feats, guidance).float()
        p = diff.p_mean_variance(out, x, idx, clip=True)
        if k > 0:
            z = per_sample_randn(tuple(x.shape[1:]), generators, x.device, x.dtype)
            x = p["mean"] + torch.exp(0.5 * p["log_variance"]) * z
        else:
            x = p["mean"]
        if progress:
            progress()
    return x
