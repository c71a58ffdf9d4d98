"""The patch-PCA autoencoder of the tiny stage-2 recipe (fpdm_bench/modeling/patch_pca.py).

The reference is numpy's SVD of the centred patch matrix (a different algorithm from the code's
float64 covariance + eigh). Tolerances: 1e-6 on the float64 fit; 1e-5 on float32 round trips
(einsum sums 48-768 products in an order that depends on the CPU kernels).
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fpdm_bench.errors import BenchError  # noqa: E402
from fpdm_bench.modeling.patch_pca import PatchPCAAutoencoder  # noqa: E402
from fpdm_bench_reference.stage2.model import Stage2Model, build_model  # noqa: E402
from helpers import FUSION_DIM, micro_config  # noqa: E402


def images(n=6, h=16, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    # smooth-ish images so the spectrum is not flat: low-res noise upsampled plus a little fine noise
    low = torch.rand(n, 3, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (x + 0.05 * torch.rand(n, 3, h, w, generator=g)).clamp(0, 1) * 2 - 1


def patches(x, p):
    return torch.nn.functional.pixel_unshuffle(x.double(), p).permute(0, 2, 3, 1).reshape(-1, 3 * p * p).numpy()


def test_fit_matches_numpy_svd():
    x = images()
    ae = PatchPCAAutoencoder(patch=4, latent_channels=10)
    info = ae.fit(x, chunk=4)  # several chunks: the accumulation must not depend on them
    rows = patches(x, 4)
    centred = rows - rows.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s ** 2
    assert info["explained_variance"] == pytest.approx(var[:10].sum() / var.sum(), abs=1e-6)
    np.testing.assert_allclose(ae.mean.double().numpy(), rows.mean(0), atol=1e-6)
    basis = ae.basis.double().numpy()
    np.testing.assert_allclose(basis.T @ basis, np.eye(10), atol=1e-6)  # orthonormal
    # same components up to sign (distinct eigenvalues here), and the sign rule: largest entry positive
    np.testing.assert_allclose(np.abs(basis.T @ vt[:10].T), np.eye(10), atol=1e-5)
    top = basis[np.abs(basis).argmax(0), np.arange(10)]
    assert (top > 0).all()


def test_full_rank_round_trip_is_exact_and_truncation_loses_what_pca_says():
    x = images()
    full = PatchPCAAutoencoder(patch=2, latent_channels=12)
    full.fit(x)
    z = full.encode(x).latent_dist
    assert z.mean.shape == (6, 12, 8, 6)
    torch.testing.assert_close(z.sample(torch.Generator().manual_seed(0)), z.mean)  # a point posterior
    torch.testing.assert_close(full.decode(z.mean).sample, x, atol=1e-5, rtol=0)
    few = PatchPCAAutoencoder(patch=2, latent_channels=3)
    info = few.fit(x)
    err = (few.decode(few.encode(x).latent_dist.mean).sample - x).double()
    # squared reconstruction error of PCA = the variance it left out (on the fitting data)
    rows = patches(x, 2)
    total = ((rows - rows.mean(0)) ** 2).sum()
    assert float((err ** 2).sum()) == pytest.approx((1 - info["explained_variance"]) * total, rel=1e-4)


def test_fit_does_not_depend_on_image_order():
    x = images()
    a, b = PatchPCAAutoencoder(patch=4, latent_channels=6), PatchPCAAutoencoder(patch=4, latent_channels=6)
    a.fit(x)
    b.fit(x.flip(0))
    torch.testing.assert_close(a.basis, b.basis, atol=1e-6, rtol=0)


def test_config_errors_name_the_problem():
    with pytest.raises(BenchError, match="latent_channels must be in 1..48"):
        build_model(micro_config("stage2.vae.config={patch: 4, latent_channels: 49}"), FUSION_DIM)
    with pytest.raises(BenchError, match="unexpected keyword|got an unexpected"):
        build_model(micro_config("stage2.vae.config={patch: 4, latent_channels: 4, block_out_channels: [8]}"), FUSION_DIM)


def test_saved_model_keeps_the_fitted_basis(tmp_path):
    torch.manual_seed(0)
    m = build_model(micro_config(), FUSION_DIM)
    m.vae.fit(images(h=32, w=24))
    m.config["vae"]["scaling_factor"] = 0.5
    m.save_pretrained(tmp_path / "s2")
    back = Stage2Model.from_pretrained(tmp_path / "s2")
    assert isinstance(back.vae, PatchPCAAutoencoder) and back.vae_scale_factor == 4 and back.scaling_factor == 0.5
    torch.testing.assert_close(back.vae.basis, m.vae.basis)
    x = images(n=2, h=32, w=24) / 2 + 0.5
    torch.testing.assert_close(back.decode_latents(back.encode_latents(x, sample=False)),
                               m.decode_latents(m.encode_latents(x, sample=False)))


def test_whitened_latents_have_unit_variance_and_decode_the_same():
    x = images()
    plain, white = PatchPCAAutoencoder(patch=4, latent_channels=8), PatchPCAAutoencoder(patch=4, latent_channels=8, whiten=True)
    plain.fit(x)
    white.fit(x)
    z = white.encode(x).latent_dist.mean
    # population variance over the fitting patches is 1 per channel (mean 0: the patch mean was removed)
    torch.testing.assert_close(z.double().pow(2).mean((0, 2, 3)), torch.ones(8, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(white.decode(z).sample, plain.decode(plain.encode(x).latent_dist.mean).sample,
                               atol=1e-5, rtol=0)
