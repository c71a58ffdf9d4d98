"""Micro-benchmarks of the metric kernels on a fixed batch: where the metric pass's time goes.

`make bench-kernels` runs this file (`make bench-scoring` runs it with the rest of benchmarks/).
Inputs are fixed (seeded) and built once per module, outside the timed region:

- paired kernels on 8 image pairs at 256x176 (the DeepFashion evaluation size): SSIM in both window
  kinds the protocols use (``uniform51``: 51x51 box, sample covariance; ``gauss1.5``: 11x11
  Gaussian, the ``ssim_gauss`` / ``ssim_256`` family), PSNR and both MAE definitions;
- set kernels on 2048-d Inception-sized features: the Fréchet distance from full-rank statistics
  (with the reference factor computed in the call, and with it precomputed as the scorer caches it
  with the reference statistics), one fold of 64 features into a ``FrechetState`` (10 bootstrap
  replicates, the FID default), KID's compute (64 generated vs 512 reference features, the default
  100 subsets + 10 bootstrap replicates);
- the FID Inception forward on 16 images at 299x299 (one feature chunk of the scorer).

Each benchmark checks its result is finite. Slow kernels run a fixed number of rounds
(``pedantic``) so the file stays under about a minute on two CPU cores. These are measurements, not
timed assertions.
"""
import numpy as np
import pytest
import torch

import fpdm_bench  # noqa: F401  (torchvision shim first)
from fpdm_bench.metrics.fid import FrechetState, frechet_distance, psd_factor
from fpdm_bench.metrics.kid import KID
from fpdm_bench.metrics.mae import mae
from fpdm_bench.metrics.psnr import psnr
from fpdm_bench.metrics.ssim import ssim

PAIRS, SIZE = 8, (256, 176)
DIMS = 2048


@pytest.fixture(scope="module")
def images():
    """8 generated/target pairs in [0, 1]: smooth fields, the generated side shifted and noisier."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand(PAIRS, 3, 16, 11, generator=g)
    target = torch.nn.functional.interpolate(low, size=SIZE, mode="bicubic", align_corners=False).clamp(0, 1)
    generated = (target.roll(5, dims=-1) + 0.05 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    return generated, target


@pytest.fixture(scope="module")
def statistics():
    """Two full-rank 2048-d Gaussians (mean, covariance) and the second one's PSD factor."""
    rng = np.random.default_rng(0)
    out = []
    for shift in (0.0, 0.1):
        a = rng.standard_normal((DIMS, DIMS)) / np.sqrt(DIMS)
        out.append((rng.standard_normal(DIMS) + shift, a @ a.T + 1e-3 * np.eye(DIMS)))
    (mu1, s1), (mu2, s2) = out
    return mu1, s1, mu2, s2, psd_factor(s2)


@pytest.mark.benchmark(group="paired")
@pytest.mark.parametrize("variant", ["uniform51", "gauss1.5"])
def test_ssim(benchmark, images, variant):
    values = benchmark.pedantic(ssim, args=(*images, variant), rounds=5, warmup_rounds=1)
    assert values.shape == (PAIRS,) and torch.isfinite(values).all()
    benchmark.extra_info.update(pairs=PAIRS, size=list(SIZE))


@pytest.mark.benchmark(group="paired")
def test_psnr(benchmark, images):
    values = benchmark(psnr, *images)
    assert torch.isfinite(values).all()


@pytest.mark.benchmark(group="paired")
@pytest.mark.parametrize("variant", ["mean_abs", "gfla_normalised"])
def test_mae(benchmark, images, variant):
    values = benchmark(mae, *images, variant)
    assert torch.isfinite(values).all()


@pytest.mark.benchmark(group="set")
def test_frechet_distance_full(benchmark, statistics):
    """Both sides' statistics given: the reference's PSD factor (a 2048x2048 eigh) is computed too."""
    mu1, s1, mu2, s2, _ = statistics
    value = benchmark.pedantic(frechet_distance, args=(mu1, s1, mu2, s2), rounds=2, warmup_rounds=0)
    assert np.isfinite(value)


@pytest.mark.benchmark(group="set")
def test_frechet_distance_cached_factor(benchmark, statistics):
    """The reference factor precomputed (cached with the reference statistics, as the scorer does)."""
    mu1, s1, mu2, s2, factor = statistics
    value = benchmark.pedantic(frechet_distance, args=(mu1, s1, mu2, s2), kwargs={"factor2": factor}, rounds=3,
                               warmup_rounds=1)
    assert np.isfinite(value)
    assert value == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-6)


@pytest.mark.benchmark(group="set")
def test_frechet_state_fold_64(benchmark):
    """One chunk of 64 features folded into the float64 sums and the 10 bootstrap replicates."""
    state = FrechetState(DIMS, replicates=10, chunk=64)
    feats = np.random.default_rng(1).standard_normal((64, DIMS))
    ids = iter(range(10 ** 6))

    def fold():  # fresh image ids every round: each round is a new chunk of images
        state.update(feats, [str(next(ids)) for _ in range(64)])

    benchmark.pedantic(fold, rounds=5, warmup_rounds=1)
    assert state.n == 64 * 6 and not state._pending
    assert np.isfinite(state.s1).all() and np.isfinite(state.rep_s1).all()


@pytest.mark.benchmark(group="set")
def test_kid_compute(benchmark):
    rng = np.random.default_rng(2)
    kid = KID()
    kid.update(rng.standard_normal((64, DIMS)).astype(np.float32))
    reference = rng.standard_normal((512, DIMS)) + 0.05
    out = benchmark.pedantic(kid.compute, args=(reference,), rounds=3, warmup_rounds=1)["kid"]
    assert np.isfinite(out["value"]) and all(np.isfinite(out["ci95"]))


@pytest.mark.benchmark(group="features")
def test_inception_forward_16_at_299(benchmark):
    from fpdm_bench.errors import WeightsMissing
    from fpdm_bench.metrics import inception

    try:
        net = inception.build("fid-inception")
    except WeightsMissing as e:
        pytest.skip(str(e))
    x = torch.rand(16, 3, 299, 299, generator=torch.Generator().manual_seed(3))
    feats = benchmark.pedantic(net, args=(x,), rounds=3, warmup_rounds=1)
    assert feats.shape == (16, 2048) and torch.isfinite(feats).all()
    benchmark.extra_info.update(images=16, size=[299, 299], threads=torch.get_num_threads())
