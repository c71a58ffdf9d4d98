"""Precision/recall/density/coverage: equal to the ``prdc`` package's on the same features, computed
from the Inception rows FID and KID use (one network pass per image), and recomputed by ``compare``
and ``merge`` from the stored features without any network.

Tolerance against the package: 1e-12. The numbers are counts over strict comparisons of distances
with k-NN radii divided by n (n·k for density); both sides compute float64 distances the same way
(‖x‖² + ‖y‖² - 2x·y), so every comparison agrees unless a distance lies within ~1e-13 of a radius,
which continuous features never do (a flipped comparison would show as a difference of 1/n, not
1e-12). What remains is the last bit of density's division, (1/k)·mean vs sum/(k·n).
"""
import contextlib
import io
import json
import shutil

import numpy as np
import pytest
from conftest import make_fixture
from helpers import NoisyTarget, TinyFeatures
from prdc import compute_prdc

from fpdm_bench.metrics import inception
from fpdm_bench.metrics.neighbours import Balls, knn_radii
from fpdm_bench.metrics.prdc import PRDC
from fpdm_bench.models import MODELS
from fpdm_bench.protocols import PROTOCOLS, Protocol, register
from fpdm_bench.runner import RunConfig, merge, run
from fpdm_bench.stats.comparison import compare_runs
from fpdm_bench.stats.prdc import prdc_difference

TOL = 1e-12
OUTPUTS = list(PRDC.outputs)


def _package(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        return {o: float(v) for o, v in compute_prdc(real, fake, k).items()}


def _clusters(rng, n, d=16, shift=0.0, spread=1.0):
    """Features around 6 fixed centres (a manifold with gaps: values well inside (0, 1))."""
    centres = np.random.default_rng(123).normal(size=(6, d)) * 2.5
    return centres[rng.integers(0, 6, n)] + rng.normal(size=(n, d)) * spread + shift


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_equal_the_prdc_package_on_the_same_features(k, dtype):
    rng = np.random.default_rng(k)
    real = _clusters(rng, 260).astype(dtype)
    fake = _clusters(rng, 230, shift=0.5, spread=1.1).astype(dtype)
    ours, theirs = Balls(real, fake, k).values(), _package(real, fake, k)
    assert ours.keys() == theirs.keys() == PRDC.outputs.keys()
    assert all(abs(ours[o] - theirs[o]) <= TOL for o in OUTPUTS), (ours, theirs)
    assert all(0.02 < theirs[o] < 0.98 for o in ("precision", "recall", "coverage"))  # no saturated number


def test_the_metric_over_batches_equals_the_package_and_its_ci_is_order_free():
    rng = np.random.default_rng(0)
    real, fake = _clusters(rng, 200), _clusters(rng, 120, shift=0.3)
    ids = [f"p{i}" for i in range(len(fake))]
    a, b = PRDC(replicates=20), PRDC(replicates=20)
    a.update(fake[:50], ids[:50])
    rest = PRDC(replicates=20)
    rest.update(fake[50:], ids[50:])
    a.merge(rest)
    order = rng.permutation(len(fake))  # another order, batching and process split: same bootstrap weights
    b.update(fake[order], [ids[i] for i in order])
    ra, rb = a.compute(real), b.compute(real)
    theirs = _package(real.astype(np.float32), fake.astype(np.float32), 5)  # the metric keeps float32 rows
    for o in OUTPUTS:
        assert abs(ra[o]["value"] - theirs[o]) <= TOL and ra[o]["n"] == 120 and ra[o]["metric"] == "prdc"
        assert ra[o]["ci95"] == pytest.approx(rb[o]["ci95"], abs=1e-12)
        lo, hi = ra[o]["ci95"]
        assert lo <= ra[o]["value"] <= hi and hi > lo


def test_a_resample_is_the_direct_computation_on_the_multiset_with_the_balls_fixed():
    rng = np.random.default_rng(1)
    real, fake, k = _clusters(rng, 80), _clusters(rng, 70, shift=0.2), 5
    balls = Balls(real, fake, k)
    counts = np.bincount(rng.integers(0, 70, 70), minlength=70)
    d = np.sqrt(((real[:, None, :] - fake[None, :, :]) ** 2).sum(-1))  # brute force
    r, s = knn_radii(real, k), knn_radii(fake, k)
    inside = d < r[:, None]
    keep = counts > 0
    want = {"precision": (counts * inside.any(0)).sum() / counts.sum(),
            "recall": (d < s[None, :])[:, keep].any(1).mean(),
            "density": (counts * inside.sum(0)).sum() / (k * counts.sum()),
            "coverage": inside[:, keep].any(1).mean()}
    got = balls.values(counts)
    assert all(abs(got[o] - want[o]) <= TOL for o in OUTPUTS)
    same = prdc_difference(balls, balls, replicates=10)
    assert all(x.delta == 0 and x.ci95 == [0.0, 0.0] for x in same.values())


# --- in a run: one Inception pass for FID, KID and PRDC; compare and merge use the stored rows -----


class CountingFeatures(TinyFeatures):
    """TinyFeatures standing in for Inception, counting the images it embeds (raises when closed)."""

    def __init__(self):
        super().__init__()
        self.images, self.closed = 0, False

    def forward(self, x):
        if self.closed:
            raise AssertionError("the Inception stand-in was called")
        self.images += len(x)
        return super().forward(x)


if "noisy-target" not in MODELS:
    MODELS.register("noisy-target", NoisyTarget, "test model")
if "t-prdc" not in PROTOCOLS:
    register(Protocol(name="t-prdc", description="test: FID, KID and PRDC on one feature network", source="test",
                      metrics={"fid": {}, "kid": {}, "prdc": {"replicates": 20}, "mae": {"variant": "mean_abs"}}))


@pytest.fixture(scope="module")
def prdc_runs(tmp_path_factory):
    """Two runs (noise 0.1 and 0.3) on the 40-pair fixture; the stand-in counts what it embeds."""
    root = make_fixture(tmp_path_factory.mktemp("prdc-data"), n_images=20)
    out = tmp_path_factory.mktemp("prdc-runs")
    net = CountingFeatures()
    seen = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inception, "build", lambda backbone, path=None, device="cpu": net)  # undone after the module
        # a cache of its own: another test may have cached this fixture's reference statistics already
        mp.setenv("FPDM_BENCH_CACHE", str(tmp_path_factory.mktemp("prdc-cache")))
        for name, noise in (("a", 0.1), ("b", 0.3)):
            before = net.images
            run(RunConfig(model="noisy-target", dataset="fixture", data_root=str(root), out=str(out / name),
                          progress=False, protocol="t-prdc", workers=0, batch_size=8, model_args={"noise": noise}),
                log=lambda m: None)
            seen[name] = net.images - before
        yield {"a": out / "a", "b": out / "b", "seen": seen, "net": net}  # the cache stays for the module's tests


def _stored(run_dir, group="fid-inception"):
    from fpdm_bench.refstats import load_cached
    from fpdm_bench.rundir import FeatureStore, read_records

    res = json.loads((run_dir / "results.json").read_text())
    recs = [r for r in read_records(run_dir).values() if "metrics" in r]
    ref = load_cached(res["protocol"]["reference_used"]["cache_key"]).kid_features
    return res, FeatureStore(run_dir).read(group, recs), ref


def test_inception_embeds_each_image_once_for_fid_kid_and_prdc(prdc_runs):
    res, feats, ref = _stored(prdc_runs["a"])
    # run a: its 40 generated images and the 20 reference images, each once, for all three metrics;
    # run b: its 40 images only (the reference statistics are cached)
    assert prdc_runs["seen"] == {"a": 40 + 20, "b": 40}
    assert {res["protocol"]["metrics_used"][k]["backbone"] for k in ("fid", "kid", "prdc")} == {"fid-inception"}
    assert sorted(p.name for p in (prdc_runs["a"] / "features").glob("*.json")) == ["fid-inception.json"]  # one group
    assert {k: res["metrics"][k]["n"] for k in ("fid", "kid", *OUTPUTS)} == dict.fromkeys(("fid", "kid", *OUTPUTS), 40)
    theirs = _package(ref, feats, 5)  # the package on the stored rows and the cached reference rows
    assert all(abs(res["metrics"][o]["value"] - theirs[o]) <= TOL for o in OUTPUTS)
    assert res["metrics"]["precision"]["n_reference"] == 20


def test_compare_and_merge_recompute_prdc_from_stored_features_with_no_network_call(prdc_runs, tmp_path):
    net = prdc_runs["net"]
    net.closed = True
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(inception, "build", lambda backbone, path=None, device="cpu": net)
            cmp = compare_runs(prdc_runs["a"], prdc_runs["b"])
            rows = {r.metric: r for r in cmp.rows}
            for o in OUTPUTS:
                assert rows[o].method.startswith("joint bootstrap of the features"), (rows[o].method, cmp.notes)
                assert rows[o].ci95[0] <= rows[o].delta <= rows[o].ci95[1]
            assert rows["precision"].delta < 0  # more noise: fewer generated images on the real manifold
            self_cmp = {r.metric: r for r in compare_runs(prdc_runs["a"], prdc_runs["a"]).rows}
            assert all(self_cmp[o].delta == 0 and self_cmp[o].ci95 == [0.0, 0.0] for o in OUTPUTS)
            # merge: results.json rewritten from features/ and the cached reference, no image embedded
            copy = tmp_path / "a"
            shutil.copytree(prdc_runs["a"], copy)
            (copy / "results.json").unlink()
            again = merge(copy, log=lambda m: None)
    finally:
        net.closed = False
    before = json.loads((prdc_runs["a"] / "results.json").read_text())["metrics"]
    assert all(again["metrics"][o] == before[o] for o in OUTPUTS)
