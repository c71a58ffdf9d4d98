"""SSIM in the three variants PGPIS papers report, computed the way scikit-image computes them.

All variants follow ``skimage.metrics.structural_similarity(target, generated, channel_axis=...)``:
per-channel SSIM maps averaged over the region where the window lies fully inside the image (skimage
crops ``(win_size - 1) // 2`` pixels on each side), then over channels. Computed in float64 with a
"valid" box/Gaussian filter, so it matches skimage to ~1e-12 (the test checks 1e-4) while running
batched in torch.

Variants (name -> what the repos pass to skimage):
  ``uniform51``           win_size=51, uniform window, sample covariance, data_range=1
                          (the ``ssim`` of GFLA, PIDM, CFLD, PoCoLD and FPDM scripts)
  ``gauss1.5``            Gaussian σ=1.5 (truncate 3.5 -> 11×11), population covariance, data_range=1
                          (Wang et al.'s SSIM; torchmetrics' default)
  ``gauss1.5-predrange``  as ``gauss1.5`` but data_range = max - min of the *generated* image: the
                          ``ssim_256`` of FPDM, CFLD and PoCoLD
  ``gauss1.2-predrange``  σ=1.2 (9×9), same data-range quirk: PIDM's ``ssim_256``
(The repos compute ``ssim_256`` on 0-255 values with data_range = 255·(max - min); SSIM is invariant
to that common scaling, so it is computed here on [0, 1].)

Images smaller than the window (tiny test fixtures) use the largest odd window that fits; the
metric's settings in results.json record that.
"""
from __future__ import annotations

import torch

from fpdm_bench.metrics.base import PairedMetric

VARIANTS = {
    "uniform51": {"gaussian": False, "win_size": 51, "sample_covariance": True, "data_range": "fixed"},
    "gauss1.5": {"gaussian": True, "sigma": 1.5, "sample_covariance": False, "data_range": "fixed"},
    "gauss1.2": {"gaussian": True, "sigma": 1.2, "sample_covariance": False, "data_range": "fixed"},
    "gauss1.5-predrange": {"gaussian": True, "sigma": 1.5, "sample_covariance": False, "data_range": "generated"},
    "gauss1.2-predrange": {"gaussian": True, "sigma": 1.2, "sample_covariance": False, "data_range": "generated"},
}
TRUNCATE = 3.5  # skimage's Gaussian truncation (in σ)
K1, K2 = 0.01, 0.03


def window_size(variant: str) -> int:
    v = VARIANTS[variant]
    if v["gaussian"]:
        return 2 * int(TRUNCATE * v["sigma"] + 0.5) + 1
    return v["win_size"]


def _kernel(variant: dict, win: int, dtype) -> torch.Tensor:
    if not variant["gaussian"]:
        return torch.full((win,), 1.0 / win, dtype=dtype)
    r = win // 2
    t = torch.arange(-r, r + 1, dtype=dtype)
    k = torch.exp(-0.5 * (t / variant["sigma"]) ** 2)
    return k / k.sum()


def _band(n: int, k: torch.Tensor) -> torch.Tensor:
    """[n, n - len(k) + 1] matrix whose columns are the 1-D kernel shifted: x @ band = 'valid' filter."""
    win = len(k)
    m = n - win + 1
    band = torch.zeros(n, m, dtype=k.dtype)
    cols = torch.arange(m)
    for i in range(win):
        band[cols + i, cols] = k[i]
    return band


def _filter(x: torch.Tensor, variant: dict, win: int) -> torch.Tensor:
    """'Valid' local mean of x [N,1,H,W] over a win×win (box or Gaussian) window.

    The window is separable, so it is two matrix products with banded matrices (BLAS, float64):
    several times faster on a CPU than float64 convolutions or integral images, same sums."""
    k = _kernel(variant, win, x.dtype)
    h, w = x.shape[-2:]
    return _band(h, k).to(x.device).T @ (x @ _band(w, k).to(x.device))


def ssim(generated: torch.Tensor, target: torch.Tensor, variant: str = "uniform51") -> torch.Tensor:
    """[B,C,H,W] pairs in [0,1] -> [B] mean SSIM (see the module docstring for the variants)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown SSIM variant {variant!r}; known: {', '.join(VARIANTS)}")
    v = VARIANTS[variant]
    b, c, h, w = generated.shape
    win = min(window_size(variant), _largest_odd(min(h, w)))
    x = target.double().reshape(b * c, 1, h, w)
    y = generated.double().reshape(b * c, 1, h, w)
    if v["data_range"] == "fixed":
        rng = torch.ones(b, dtype=torch.float64, device=x.device)
    else:
        flat = generated.double().flatten(1)
        rng = flat.amax(1) - flat.amin(1)
    rng = rng.repeat_interleave(c).view(-1, 1, 1, 1)
    c1, c2 = (K1 * rng) ** 2, (K2 * rng) ** 2
    # Filter the five moments in one call: [5·N, 1, H, W].
    m = _filter(torch.cat([x, y, x * x, y * y, x * y]), v, win).split(b * c)
    ux, uy, uxx, uyy, uxy = m
    n = win * win
    norm = n / (n - 1) if v["sample_covariance"] else 1.0
    vx, vy, vxy = norm * (uxx - ux * ux), norm * (uyy - uy * uy), norm * (uxy - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(b, -1).mean(1)


def _largest_odd(n: int) -> int:
    return n if n % 2 else n - 1


def effective_window(variant: str, size: tuple[int, int]) -> int:
    return min(window_size(variant), _largest_odd(min(size)))


class SSIM(PairedMetric):
    """Structural similarity (skimage's computation) in one of the field's variants."""

    name = "ssim"
    higher_is_better = True
    title = latex_title = "SSIM"
    # the protocols' other SSIM keys (protocols/records.py)
    key_titles = {"ssim_256": ("SSIM 256", r"SSIM$_{256}$"), "ssim_gauss": ("SSIM σ1.5", r"SSIM$_{\sigma 1.5}$")}
    order = 50
    sample_rank = 2
    sweep_summary = True

    def __init__(self, key: str | None = None, variant: str = "uniform51", drop_remainder: int = 0):
        super().__init__(key, drop_remainder)
        if variant not in VARIANTS:
            raise ValueError(f"unknown SSIM variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.variant = variant
        self.clipped_window: int | None = None

    def settings(self) -> dict:
        out = {"variant": self.variant, **super().settings()}
        if self.clipped_window:
            out["window_clipped"] = f"{self.clipped_window} (images smaller than the window)"
        return out

    def per_sample(self, generated, target, batch):
        win = effective_window(self.variant, tuple(generated.shape[-2:]))
        if win != window_size(self.variant):
            self.clipped_window = win
        return ssim(generated, target, self.variant)
