"""SSIM (three PGPIS variants), PSNR and MAE against scikit-image / the formulas the repos use."""
import fpdm_bench  # noqa: F401

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fpdm_bench.metrics.mae import mae
from fpdm_bench.metrics.psnr import psnr
from fpdm_bench.metrics.ssim import ssim


def _pair(seed=0, shape=(3, 3, 72, 60)):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(shape, generator=g)
    x = (t + 0.3 * torch.rand(shape, generator=g) - 0.15).clamp(0, 1)
    q = lambda a: (a * 255).round() / 255  # noqa: E731
    return q(x), q(t)


def _np(img):
    return img.permute(1, 2, 0).numpy().astype(np.float64)


@pytest.mark.parametrize("variant,kwargs", [
    ("uniform51", dict(win_size=51, data_range=1)),
    ("gauss1.5", dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)),
    ("gauss1.2", dict(gaussian_weights=True, sigma=1.2, use_sample_covariance=False, data_range=1)),
])
def test_ssim_matches_skimage(variant, kwargs):
    gen, tgt = _pair()
    ours = ssim(gen, tgt, variant)
    ref = [structural_similarity(_np(t), _np(g), channel_axis=2, **kwargs) for g, t in zip(gen, tgt)]
    assert np.abs(ours.numpy() - np.array(ref)).max() <= 1e-4


@pytest.mark.parametrize("variant,sigma", [("gauss1.5-predrange", 1.5), ("gauss1.2-predrange", 1.2)])
def test_ssim_256_quirk_matches_the_repos_call(variant, sigma):
    # The repos call skimage on 0-255 values with data_range = generated max - min.
    gen, tgt = _pair(1)
    gen = gen * 0.6 + 0.2  # generated range 0.2..0.8, so the quirk matters
    ours = ssim(gen, tgt, variant)
    ref = []
    for g, t in zip(gen, tgt):
        g255, t255 = _np(g) * 255, _np(t) * 255
        ref.append(structural_similarity(t255, g255, gaussian_weights=True, sigma=sigma, use_sample_covariance=False,
                                         channel_axis=2, data_range=g255.max() - g255.min()))
    assert np.abs(ours.numpy() - np.array(ref)).max() <= 1e-4
    assert (ours - ssim(gen, tgt, variant.replace("-predrange", ""))).abs().max() > 1e-6  # the quirk is applied


def test_psnr_matches_skimage_and_identical_is_inf():
    gen, tgt = _pair(2)
    ref = [peak_signal_noise_ratio(_np(t), _np(g), data_range=1) for g, t in zip(gen, tgt)]
    assert np.abs(psnr(gen, tgt).numpy() - ref).max() <= 1e-6
    assert torch.isinf(psnr(tgt, tgt)).all()


def test_mae_variants():
    gen, tgt = _pair(3)
    g, t = gen.double().numpy(), tgt.double().numpy()
    plain = np.abs(g - t).reshape(3, -1).mean(1)
    gfla = np.abs(g - t).reshape(3, -1).sum(1) / (g + t).reshape(3, -1).sum(1)
    assert np.allclose(mae(gen, tgt, "mean_abs").numpy(), plain)
    assert np.allclose(mae(gen, tgt, "gfla_normalised").numpy(), gfla)
    with pytest.raises(ValueError, match="unknown MAE variant"):
        mae(gen, tgt, "l2")
