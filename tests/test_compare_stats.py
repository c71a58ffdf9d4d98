"""`fpdm-bench compare` with statistics: regression scenarios on real runs, refusals, and the statistics
(paired bootstrap, FID/KID joint bootstrap, FID∞) checked against direct computations.

The runs use the fixture dataset (40 pairs, 32x24) and a test protocol with FID/KID on TinyFeatures
(a 16-d stand-in for Inception, patched into the metrics' network builder), so every path of compare
is exercised in seconds.
"""
import json
import math
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_fixture
from helpers import NoisyTarget, TinyFeatures

from fpdm_bench.commands.compare import compare_cmd
from fpdm_bench.errors import BenchError
from fpdm_bench.models import MODELS
from fpdm_bench.protocols import PROTOCOLS, Protocol, register
from fpdm_bench.runner import RunConfig, run
from fpdm_bench.stats import verdict as V
from fpdm_bench.stats.comparison import Options, compare_runs
from fpdm_bench.stats.fid_infinity import fid_infinity, fit_inverse_n
from fpdm_bench.stats.frechet import FrechetProjection
from fpdm_bench.stats.paired import match_pairs, paired_bootstrap
from fpdm_bench.stats.setmetric import fid_difference, kid_difference


class SkipFirst(NoisyTarget):
    """NoisyTarget that cannot produce the first three pairs (the runner records them as skipped)."""

    name = "noisy-target-skip"

    def prepare(self, pairs, dataset, log=print):
        return {r.pair_id: "test: not produced" for r in pairs[:3]}


for _name, _cls in (("noisy-target", NoisyTarget), ("noisy-target-skip", SkipFirst)):
    if _name not in MODELS:
        MODELS.register(_name, _cls, "test model")
if "t-stats" not in PROTOCOLS:
    register(Protocol(name="t-stats", description="test: paired metrics + FID/KID", source="test",
                      metrics={"fid": {}, "kid": {}, "ssim": {"variant": "uniform51"}, "psnr": {},
                               "mae": {"variant": "mean_abs"}}))
if "t-drop" not in PROTOCOLS:
    register(Protocol(name="t-drop", description="test: mae over batches of 7", source="test",
                      metrics={"mae": {"variant": "mean_abs", "drop_remainder": 7}}))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs on a 40-pair fixture set, FID/KID through TinyFeatures: name -> run directory."""
    from fpdm_bench.metrics import inception

    root = make_fixture(tmp_path_factory.mktemp("stats-data"), n_images=20)
    out = tmp_path_factory.mktemp("stats-runs")
    specs = {
        "a": dict(model_args={"noise": 0.1}),
        "a_seed1": dict(model_args={"noise": 0.1}, seed=1),
        "worse": dict(model_args={"noise": 0.3}),
        "skip": dict(model="noisy-target-skip", model_args={"noise": 0.1}),
        "limit": dict(model_args={"noise": 0.1}, limit=30),
        "paired": dict(model_args={"noise": 0.1}, protocol="paired"),
        "perturbed": dict(model_args={"noise": 0.1}, perturb="pose.jitter:2"),
        "drop_a": dict(model_args={"noise": 0.1}, protocol="t-drop"),
        "drop_b": dict(model_args={"noise": 0.12}, protocol="t-drop"),
    }
    tiny = TinyFeatures()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inception, "build", lambda backbone, path=None, device="cpu": tiny)
        for name, kw in specs.items():
            cfg = dict(model="noisy-target", dataset="fixture", data_root=str(root), out=str(out / name),
                       progress=False, protocol="t-stats", workers=0, batch_size=8)
            cfg.update(kw)
            run(RunConfig(**cfg), log=lambda m: None)
    return {name: out / name for name in specs}


def _invoke(*args):
    return CliRunner().invoke(compare_cmd, [str(a) for a in args])


def _rows(cmp):
    return {r.metric: r for r in cmp.rows}


# --- regression scenarios -----------------------------------------------------------------------


def test_a_run_against_itself_passes_with_zero_width_intervals(runs):
    res = _invoke(runs["a"], runs["a"], "--exact")
    assert res.exit_code == 0, res.output
    assert "OK — no regression" in res.output
    rows = _rows(compare_runs(runs["a"], runs["a"]))
    for key in ("fid", "kid", "ssim", "psnr", "mae"):
        assert rows[key].verdict == V.SAME and rows[key].delta == 0.0 and rows[key].ci95 == [0.0, 0.0], key
    assert rows["fid"].method.startswith("joint bootstrap") and rows["ssim"].method.startswith("paired bootstrap")
    assert rows["fid_inf"].delta == 0.0 and not rows["fid_inf"].gating


def test_a_degraded_model_is_flagged_with_exit_1_and_the_metric_named(runs):
    res = _invoke(runs["a"], runs["worse"])
    assert res.exit_code == 1, res.output
    fail = res.stderr.strip()  # the table on stdout, the FAIL line on stderr (as before)
    assert fail.startswith("FAIL") and "ssim" in fail and "psnr" in fail and "mae" in fail and "fid" in fail
    rows = _rows(compare_runs(runs["a"], runs["worse"]))
    assert rows["ssim"].verdict == rows["fid"].verdict == V.WORSE
    assert rows["ssim"].ci95[1] < 0 and rows["fid"].ci95[0] > 0  # each on its bad side
    # the other way round it is an improvement, and passes
    assert _invoke(runs["worse"], runs["a"]).exit_code == 0


def test_keypoint_warp_against_the_oracle_is_a_regression(tmp_path):
    root = make_fixture(tmp_path / "fx", n_images=8)
    for m in ("oracle", "keypoint-warp"):
        run(RunConfig(model=m, dataset="fixture", data_root=str(root), out=str(tmp_path / m), progress=False,
                      protocol="paired", workers=0), log=lambda m: None)
    res = _invoke(tmp_path / "oracle", tmp_path / "keypoint-warp")
    assert res.exit_code == 1 and "WORSE" in res.output and "ssim" in res.stderr, res.output


def test_a_difference_inside_the_ci_is_not_flagged(runs):
    """Two seeds of the same model: every metric differs, none detectably."""
    res = _invoke(runs["a"], runs["a_seed1"])
    assert res.exit_code == 0, res.output
    rows = _rows(compare_runs(runs["a"], runs["a_seed1"], Options(rtol=0)))  # no tolerance: the CI decides
    for key in ("fid", "kid", "ssim", "psnr", "mae"):
        r = rows[key]
        assert r.delta != 0 and r.tolerance == 0 and r.verdict == V.SAME and r.ci95[0] < 0 < r.ci95[1], key


def test_no_ci_decides_by_the_tolerance_alone(runs):
    """A reproduction check (--no-ci): a difference inside the CI but beyond the tolerance counts."""
    rows = _rows(compare_runs(runs["a"], runs["a_seed1"], Options(rtol=0, atol=0, use_ci=False)))
    for key in ("fid", "ssim", "mae"):
        r = rows[key]
        assert r.ci95 is not None and r.ci95[0] < 0 < r.ci95[1], key  # still shown
        assert r.verdict in (V.BETTER, V.WORSE), key  # but no longer "no change"
    assert _invoke(runs["a"], runs["a"], "--no-ci").exit_code == 0
    assert _invoke(runs["a"], runs["a_seed1"], "--no-ci", "--rtol", "10").exit_code == 0


def test_a_tolerance_turns_a_regression_into_no_change(runs, tmp_path):
    rows = _rows(compare_runs(runs["a"], runs["worse"]))
    big = ",".join(f"{k}={abs(rows[k].delta) * 2:.6g}" for k in ("fid", "kid", "ssim", "psnr", "mae"))
    assert _invoke(runs["a"], runs["worse"], "--tolerance", big).exit_code == 0
    tol = tmp_path / "tol.yaml"
    tol.write_text("# kept with the checkpoints\ntolerance:\n  ssim: 100%\n")
    res = _invoke(runs["a"], runs["worse"], "--tolerance-file", tol)
    assert res.exit_code == 1 and "ssim" not in res.stderr.split("(")[0]
    # --rtol keeps its old meaning: differences within it are never a regression
    assert _invoke(runs["a"], runs["worse"], "--rtol", "10", "--atol", "1").exit_code == 0


# --- refusals ------------------------------------------------------------------------------------


def test_mismatched_pairs_protocol_or_perturbation_are_refused(runs):
    with pytest.raises(BenchError, match="different pairs"):
        compare_runs(runs["a"], runs["limit"])
    with pytest.raises(BenchError, match="protocols"):
        compare_runs(runs["a"], runs["paired"])
    with pytest.raises(BenchError, match="perturbed"):
        compare_runs(runs["a"], runs["perturbed"])
    res = _invoke(runs["a"], runs["perturbed"])
    assert res.exit_code != 0 and isinstance(res.exception, BenchError)


def test_pair_sets_must_agree_except_for_skipped_pairs():
    m = match_pairs({"p1": True, "p2": True, "p3": False}, {"p1": True, "p2": False, "p3": True})
    assert m.common == ["p1"] and m.skipped == {"base": ["p3"], "new": ["p2"]}
    with pytest.raises(BenchError, match=r"1 only in base \(p3\); 1 only in new \(p9\)"):
        match_pairs({"p1": True, "p3": True}, {"p1": True, "p9": True})


def test_different_reference_statistics_are_refused(runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs["a"], other)
    res = json.loads((other / "results.json").read_text())
    res["protocol"]["reference_used"]["cache_key"] = "f" * 64
    (other / "results.json").write_text(json.dumps(res))
    with pytest.raises(BenchError, match="different reference statistics"):
        compare_runs(runs["a"], other)


# --- FID/KID paths -------------------------------------------------------------------------------


def test_different_n_ranks_fid_by_fid_infinity(runs):
    cmp = compare_runs(runs["a"], runs["skip"])
    rows = _rows(cmp)
    assert rows["fid"].n == [40, 37] and rows["fid"].verdict == V.SKIPPED and not rows["fid"].gating
    inf = rows["fid_inf"]
    assert inf.gating and inf.ci95 is not None and inf.verdict in (V.SAME, V.BETTER, V.WORSE)
    assert any("verdict is on FID∞" in n for n in cmp.notes)
    assert any("3 pair(s) skipped by new only" in n for n in cmp.notes)
    assert rows["ssim"].method == "paired bootstrap, 2000 resamples of 37 pairs"


def test_runs_without_stored_features_fall_back_to_results_cis(runs, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(runs["worse"], old)
    shutil.rmtree(old / "features")
    lines = [json.loads(x) for x in (old / "samples.jsonl").read_text().splitlines()]
    (old / "samples.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "features"}) + "\n"
                                               for r in lines))
    cmp = compare_runs(runs["a"], old)
    rows = _rows(cmp)
    assert rows["fid"].method == "results.json CIs (independent)" and "fid_inf" not in rows
    assert any(n.startswith("fid: ") and "no stored fid-inception features" in n for n in cmp.notes)
    assert rows["ssim"].method.startswith("paired bootstrap")  # per-sample values are still there
    # a bare results.json (no run directory): every CI from results.json, said once
    bare = tmp_path / "bare.json"
    shutil.copy(runs["worse"] / "results.json", bare)
    cmp = compare_runs(runs["a"], bare)
    assert {r.method for r in cmp.rows} == {"results.json CIs (independent)"}
    assert any("no per-sample records" in n for n in cmp.notes)


def test_a_missing_reference_cache_says_how_to_rebuild_it(runs, tmp_path):
    cmp = compare_runs(runs["a"], runs["worse"], Options(cache=str(tmp_path / "empty")))
    note = next(n for n in cmp.notes if n.startswith("fid: "))
    assert "reference statistics (cache key" in note and "not in" in note
    assert sum("fpdm-bench merge" in n for n in cmp.notes) == 1  # the way to rebuild them, once
    assert _rows(cmp)["fid"].method == "results.json CIs (independent)"


def test_remainder_drops_are_reproduced_for_the_paired_bootstrap(runs):
    rows = _rows(compare_runs(runs["drop_a"], runs["drop_b"]))
    assert rows["mae"].n == [35, 35] and rows["mae"].method == "paired bootstrap, 2000 resamples of 35 pairs"


def test_feature_groups_match_the_scorer():
    """RunData.feature_group mirrors Scorer._groups (network + hash of the view) for a protocol with views."""
    from fpdm_bench.scoring import Scorer
    from fpdm_bench.stats.rundata import RunData

    class MeanAbs(torch.nn.Module):
        def forward(self, a, b, normalize=False):
            return (a - b).abs().mean((1, 2, 3)).view(-1, 1, 1, 1)

    sc = Scorer("pidm", reference_paths=[], networks={"torchvision-inception": TinyFeatures(), "lpips-alex": MeanAbs()})
    res = RunData({"protocol": sc.describe()})
    assert {res.feature_group(m.key) for m in sc.set} == set(sc.feature_groups())


# --- output --------------------------------------------------------------------------------------


def test_markdown_summary_for_a_pull_request(runs, tmp_path):
    md = tmp_path / "summary.md"
    res = _invoke(runs["a"], runs["worse"], "--format", "markdown", "--markdown", md)
    assert res.exit_code == 1
    text = md.read_text()
    assert text == res.stdout and res.stderr.startswith("FAIL — worse: fid")  # the document on stdout, FAIL on stderr
    assert text.startswith("### fpdm-bench compare: **FAIL** — worse: fid, kid, ssim, psnr, mae")
    assert "| metric | base | new | Δ | 95 % CI of Δ | tolerance | verdict |" in text
    assert "| ssim ↑ |" in text and "**WORSE**" in text
    data = json.loads(_invoke(runs["a"], runs["worse"], "--format", "json").stdout)
    assert data["regressions"] == ["fid", "kid", "ssim", "psnr", "mae"]


# --- the statistics themselves ---------------------------------------------------------------------


def test_paired_bootstrap_matches_a_direct_numpy_computation(monkeypatch):
    from fpdm_bench.metrics import bootstrap

    rng = np.random.default_rng(3)
    base, new = rng.normal(size=57), rng.normal(size=57) + 0.1
    d = new - base
    idx = np.random.default_rng(11).integers(0, 57, size=(2000, 57))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    for block in (bootstrap.BLOCK, 57 * 5):  # one block, and many: the same stream
        monkeypatch.setattr(bootstrap, "BLOCK", block)
        pd = paired_bootstrap(base, new, resamples=2000, seed=11)
        assert pd.ci95 == [lo, hi] and pd.delta == pytest.approx(d.mean(), abs=1e-15)


def test_frechet_projection_equals_the_frechet_distance():
    from fpdm_bench.metrics.fid import frechet_distance, psd_factor

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(30, 24))
    mu_r, sig_r = ref.mean(0), np.cov(ref, rowvar=False)
    b = psd_factor(sig_r, ref)
    x = (rng.normal(size=(50, 24)) * 1.3 + 0.2).astype(np.float32)
    p = FrechetProjection(x, mu_r, sig_r, b)
    x64 = x.astype(np.float64)
    assert p.fid() == pytest.approx(frechet_distance(x64.mean(0), np.cov(x64, rowvar=False), mu_r, sig_r, b), rel=1e-10)
    w = np.bincount(rng.integers(0, 50, 50), minlength=50)
    xr = np.repeat(x64, w, axis=0)
    assert p.fid(w) == pytest.approx(frechet_distance(xr.mean(0), np.cov(xr, rowvar=False), mu_r, sig_r, b), rel=1e-10)


def test_fid_bootstrap_of_a_run_against_itself_is_exactly_zero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    ref = rng.normal(size=(40, 16))
    from fpdm_bench.metrics.fid import psd_factor

    mu, sig = ref.mean(0), np.cov(ref, rowvar=False)
    a, b = (FrechetProjection(x.copy(), mu, sig, psd_factor(sig)) for _ in range(2))
    sd = fid_difference(a, b, replicates=50, seed=0)
    assert sd.delta == 0.0 and sd.ci95 == [0.0, 0.0] and sd.sd == 0.0
    kd = kid_difference(x, x.copy(), ref.astype(np.float32), 0.0, subset_size=32, replicates=5)
    assert kd.ci95 == [0.0, 0.0]
    # and a different run gets an interval of nonzero width around its difference
    other = FrechetProjection(x + 0.3 * rng.normal(size=x.shape).astype(np.float32), mu, sig, psd_factor(sig))
    sd = fid_difference(a, other, replicates=50, seed=0)
    assert sd.ci95[0] < sd.delta < sd.ci95[1]


def test_kid_replicates_are_differences_of_the_runs_own_estimator():
    """A KID replicate without the real-real term (it cancels) equals the difference of two
    kid_subsets calls on the same subsets."""
    from fpdm_bench.metrics.kid import kid_subsets
    from fpdm_bench.stats.setmetric import _kid_fake_terms

    rng = np.random.default_rng(0)
    r, a, b = (torch.from_numpy(rng.normal(size=(30, 8)) + s) for s in (0.0, 0.0, 0.2))
    want = (kid_subsets(r, b, 3, 20, torch.Generator().manual_seed(5))
            - kid_subsets(r, a, 3, 20, torch.Generator().manual_seed(5)))
    g = torch.Generator().manual_seed(5)
    got = []
    for _ in range(3):
        ri, fi = torch.randperm(30, generator=g)[:20], torch.randperm(30, generator=g)[:20]
        got.append(float(_kid_fake_terms(r[ri], b[fi]) - _kid_fake_terms(r[ri], a[fi])))
    assert got == pytest.approx(want.tolist(), rel=1e-12, abs=1e-12)


def test_fid_infinity_recovers_the_intercept_of_a_plus_b_over_n():
    """Generated N(e1, I) against the exact reference N(0, I), d = 32: FID∞ = a = 1, and the raw FID
    at n = 2,000 is biased up by b/n ≈ 0.16 (b ≈ d + d²/4). FID∞ lands within 0.06 of a on
    average over four samples (its own noise is ~0.05 per sample), the raw FID does not."""
    d, n = 32, 2000
    inf, raw = [], []
    for seed in range(4):
        x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
        x[:, 0] += 1.0
        p = FrechetProjection(x, np.zeros(d), np.eye(d), np.eye(d))
        fi = fid_infinity(p, seed=seed)
        inf.append(fi.value)
        raw.append(p.fid())
        assert fi.slope > 0 and fi.sizes[0] == 200 and fi.sizes[-1] == n and len(fi.sizes) == 15
    assert abs(np.mean(inf) - 1.0) < 0.06
    assert np.mean(raw) - 1.0 > 0.1
    # the fit itself is exact on an exact a + b/n
    ns = np.array([100, 200, 400, 800])
    assert fit_inverse_n(ns, 3.0 + 50.0 / ns) == pytest.approx((3.0, 50.0), rel=1e-9)


def test_verdict_rule_and_tolerance_parsing(tmp_path):
    up, down = True, False
    assert V.decide(-0.02, [-0.03, -0.01], up, 0.0) == (V.WORSE, "CI excludes 0, beyond tolerance")
    assert V.decide(-0.02, [-0.03, -0.01], up, 0.05)[0] == V.SAME  # within tolerance
    assert V.decide(-0.02, [-0.05, 0.01], up, 0.0)[0] == V.SAME  # CI contains 0
    assert V.decide(2.0, [1.0, 3.0], down, 0.5)[0] == V.WORSE  # FID up
    assert V.decide(-2.0, [-3.0, -1.0], down, 0.5)[0] == V.BETTER
    assert V.decide(0.3, None, down, 0.1)[0] == V.WORSE  # no CI: the tolerance alone
    assert V.decide(-math.inf, None, up, 0.1)[0] == V.WORSE
    tols = V.parse_spec(["fid=0.5,ssim=0.005", "lpips=1%"])
    assert tols["fid"].of(100) == 0.5 and tols["lpips"].of(0.2) == pytest.approx(0.002)
    with pytest.raises(BenchError, match="METRIC=VALUE"):
        V.parse_spec(["fid"])
    with pytest.raises(BenchError, match="percentage"):
        V.parse_spec(["fid=lots"])
    f = tmp_path / "tol.yaml"
    f.write_text("fid: 0.5\nssim: 1%\n")
    assert V.load_file(f) == {"fid": V.Tolerance(abs=0.5), "ssim": V.Tolerance(rel=0.01)}
