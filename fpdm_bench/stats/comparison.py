"""The comparison of two runs, metric by metric: the difference, its 95 % CI, the verdict.

For each metric both runs report, the CI of the difference new - base comes from the best data the
two runs hold, as the metric class declares (``Metric.resample``, see ``fpdm_bench.metrics.base``):

1. ``"paired"`` (per-sample metrics: SSIM, PSNR, MAE, LPIPS, pose, …) of two run directories: the
   paired bootstrap of the per-pair differences over the pairs both runs scored (:mod:`.paired`);
   ``"sequence"`` (per-video metrics: flicker, tOF, tLP): the same over the videos both runs scored
   (their sequences.jsonl);
2. ``"frechet"`` (Fréchet distances: FID, FD-DINOv2) with stored features: the joint bootstrap of the
   difference (:mod:`.setmetric`), plus each run's FID∞ (:mod:`.fid_infinity`) as an extra row
   ``<key>_inf``. When the two runs scored different numbers of images (skipped pairs), raw FIDs are
   not ranked: the verdict is on FID∞ and says so;
3. ``"kid"`` (KID) with stored features: the joint bootstrap of the difference;
   ``"prdc"`` (precision, recall, density, coverage) the same, with the k-NN balls fixed (:mod:`.prdc`);
4. otherwise (``None``; or the data above is not there: results.json files only, runs from before
   features were stored, reference statistics no longer cached): the two results.json CIs, taken as
   independent (wider than a paired interval), with a note saying why; with no CI at all, the fixed
   tolerance decides (:mod:`.verdict`).

The verdict rule and the tolerances are in :mod:`.verdict`.
"""
from __future__ import annotations

import importlib
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from fpdm_bench.errors import BenchError
from fpdm_bench.stats import verdict as V
from fpdm_bench.stats.paired import finite_pairs, match_pairs, paired_bootstrap
from fpdm_bench.stats.rundata import RunData, Unavailable, check_comparable
from fpdm_bench.stats.setmetric import REPLICATES

RECOMPUTE_RTOL = 1e-6  # a recomputed FID or mean must match results.json this closely


@dataclass
class Options:
    tolerances: dict = field(default_factory=dict)  # metric -> verdict.Tolerance
    atol: float | None = None  # default tolerance of metrics not in ``tolerances`` (None: see verdict.py)
    rtol: float | None = None
    resamples: int = 2000  # paired bootstrap
    set_replicates: int = REPLICATES  # FID/KID joint bootstrap
    seed: int = 0
    features: bool = True  # use stored features for FID/KID (False: results.json CIs only)
    fid_infinity: bool = True
    use_ci: bool = True  # False: the tolerance alone decides (reproduction checks); CIs are still reported
    cache: str | None = None  # refstats cache folder (default $FPDM_BENCH_CACHE or ~/.cache/fpdm-bench)

    def tolerance(self, key: str, fallback_key: str | None = None, has_ci: bool = True) -> V.Tolerance:
        if key in self.tolerances:
            return self.tolerances[key]
        if fallback_key and fallback_key in self.tolerances:
            return self.tolerances[fallback_key]
        atol, rtol = V.DEFAULT_WITH_CI if has_ci else V.DEFAULT_WITHOUT_CI
        return V.Tolerance(abs=atol if self.atol is None else self.atol, rel=rtol if self.rtol is None else self.rtol)


@dataclass
class Row:
    metric: str
    base: float | None
    new: float | None
    delta: float | None
    ci95: list[float] | None
    tolerance: float | None
    tolerance_rule: str
    verdict: str
    reason: str
    method: str
    higher_is_better: bool | None
    n: list[int | None]  # images each run's number is over
    exact: bool
    gating: bool = True  # counts for the exit status (FID∞ is informative when the n agree)
    seconds: float | None = None


@dataclass
class Comparison:
    base: RunData
    new: RunData
    rows: list[Row]
    notes: list[str]
    options: Options
    compared_pairs: int | None
    changed: dict  # config fields that differ: key -> [base, new]

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.gating and r.verdict == V.WORSE]

    def failures(self, exact: bool = False) -> list[Row]:
        """Rows that make `compare` exit 1: regressions, and with ``exact`` any value that differs."""
        return [r for r in self.rows if (r.gating and r.verdict == V.WORSE)
                or (exact and not r.exact and r.metric in self.base.results.metrics)]

    def records(self) -> list[dict]:
        """The rows as ``COLUMNS`` (the CI and the n split in two; no timings, so the same runs always
        give the same rows): `compare --format csv` and the DataFrame of ``fpdm_bench.api.compare``."""
        return [{"base_run": self.base.label, "new_run": self.new.label, "metric": r.metric, "base": r.base,
                 "new": r.new, "delta": r.delta, "ci95_low": r.ci95[0] if r.ci95 else None,
                 "ci95_high": r.ci95[1] if r.ci95 else None, "tolerance": r.tolerance,
                 "tolerance_rule": r.tolerance_rule, "verdict": r.verdict, "gating": r.gating, "exact": r.exact,
                 "higher_is_better": r.higher_is_better, "n_base": r.n[0], "n_new": r.n[1], "method": r.method,
                 "reason": r.reason} for r in self.rows]

    def to_dict(self) -> dict:
        return {"base": self.base.label, "new": self.new.label, "protocol": self.base.results.protocol,
                "dataset": self.base.results.dataset, "compared_pairs": self.compared_pairs, "changed": self.changed,
                "rows": [asdict(r) for r in self.rows], "notes": self.notes,
                "regressions": [r.metric for r in self.regressions],
                "settings": {k: v for k, v in asdict(self.options).items() if k != "tolerances"}
                | {"tolerances": {k: str(v) for k, v in self.options.tolerances.items()}}}


#: The long format of a comparison, one row per metric (``Comparison.records``).
COLUMNS = ["base_run", "new_run", "metric", "base", "new", "delta", "ci95_low", "ci95_high", "tolerance",
           "tolerance_rule", "verdict", "gating", "exact", "higher_is_better", "n_base", "n_new", "method", "reason"]


CONFIG_FIELDS = ("model", "checkpoint", "model_args", "seed", "batch_size", "dtype", "device", "limit", "split",
                 "size")


def config_changes(base: RunData, new: RunData) -> dict:
    a, b = base.results.data.get("config", {}), new.results.data.get("config", {})
    return {k: [a.get(k), b.get(k)] for k in CONFIG_FIELDS if k in a and k in b and a.get(k) != b.get(k)}


def _entry_n(run: RunData, key: str):
    n = run.entry(key).get("n")
    return int(n) if isinstance(n, (int, float)) else None


def _ci_from_results(run_b: RunData, run_n: RunData, key: str, delta: float) -> list[float] | None:
    """Δ ± √(hb² + hn²) from the two results.json CIs (half-widths hb, hn; independent runs)."""
    cb, cn = run_b.entry(key).get("ci95"), run_n.entry(key).get("ci95")
    if not (cb and cn) or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in [*cb, *cn]):
        return None
    h = math.hypot((cb[1] - cb[0]) / 2, (cn[1] - cn[0]) / 2)
    return [delta - h, delta + h]


class _Comparer:
    def __init__(self, base: RunData, new: RunData, options: Options):
        self.b, self.c, self.o = base, new, options
        self.notes: list[str] = []
        self.match = None
        self._prdc: dict = {}  # protocol key -> the joint bootstrap of its four outputs (or why not)
        sb, sc = base.pair_status(), new.pair_status()
        if sb is not None and sc is not None:
            self.match = match_pairs(sb, sc)
            for name, ids in self.match.skipped.items():
                self.notes.append(f"{len(ids)} pair(s) skipped by {name} only ({', '.join(ids[:3])}"
                                  f"{', …' if len(ids) > 3 else ''}): left out of the paired statistics")
        else:
            lacking = [r.label for r in (base, new) if r.records is None]
            self.notes.append(f"no per-sample records for {' and '.join(lacking)} (a results.json without its run "
                              f"directory): CIs of the differences come from the two results.json CIs, taken as "
                              f"independent (wider than a paired CI)")

    # --- helpers -----------------------------------------------------------------------------------
    def row(self, key, bv, cv, delta, ci, method, up, n, gating=True, tol_key=None, seconds=None,
            verdict_override=None) -> Row:
        deciding_ci = ci if self.o.use_ci else None
        tol = self.o.tolerance(key, tol_key, has_ci=deciding_ci is not None)
        tol_value = tol.of(bv) if bv is not None and gating else None
        if verdict_override:
            verdict, reason = verdict_override
        else:
            verdict, reason = V.decide(delta, deciding_ci, up, tol_value or 0.0)
        return Row(key, bv, cv, delta, ci, tol_value, str(tol), verdict, reason, method, up, list(n),
                   bv == cv, gating, seconds)

    def kept(self, run: RunData, key: str) -> list[str]:
        drop = run.dropped_pairs(key)
        return [p for p in run.scored() if p not in drop]

    # --- per metric ----------------------------------------------------------------------------------
    def metric(self, key: str) -> list[Row]:
        b, c = self.b, self.c
        bv, cv = b.results.value(key), c.results.value(key)
        up = b.results.higher_is_better(key)
        if up is None:
            raise BenchError(f"metric {key!r}: no registered metric reports it, so its direction is unknown "
                             f"(is the package that defines it installed?)")
        n = [_entry_n(b, key), _entry_n(c, key)]
        if not (math.isfinite(bv) and math.isfinite(cv)):
            delta = 0.0 if bv == cv else cv - bv
            return [self.row(key, bv, cv, delta, None, "not finite: compared by value", up, n)]
        from fpdm_bench.metrics.base import (FRECHET_BOOTSTRAP, KID_BOOTSTRAP, PAIRED_BOOTSTRAP, PRDC_BOOTSTRAP,
                                             SEQUENCE_BOOTSTRAP)

        cls = b.metric_class(key)
        how = getattr(cls, "resample", None)
        try:
            if how == PAIRED_BOOTSTRAP and self.match is not None:
                return [self.paired(key, bv, cv, up, n)]
            if how == SEQUENCE_BOOTSTRAP and self.match is not None:
                return [self.sequence(key, bv, cv, up, n)]
            if self.o.features and self.match is not None:
                if how == FRECHET_BOOTSTRAP:
                    return self.frechet(key, bv, cv, up, n)
                if how == KID_BOOTSTRAP:
                    return [self.kid(key, bv, cv, up, n)]
                if how == PRDC_BOOTSTRAP:
                    return [self.prdc(key, bv, cv, up, n)]
        except Unavailable as e:
            self.notes.append(f"{key}: {e}; its CI comes from the two results.json CIs instead")
            if e.hint and e.hint not in self.notes:
                self.notes.append(e.hint)
        return [self.from_results(key, bv, cv, up, n, frechet=how == FRECHET_BOOTSTRAP)]

    def from_results(self, key, bv, cv, up, n, frechet=False) -> Row:
        delta = cv - bv
        ci = _ci_from_results(self.b, self.c, key, delta)
        method = "results.json CIs (independent)" if ci else "no CI: fixed tolerance"
        if frechet and n[0] is not None and n[1] is not None and n[0] != n[1]:
            self.notes.append(f"{key}: the runs scored {n[0]} and {n[1]} images and FID depends on n; without stored "
                              f"features there is no FID∞ to rank them by, so {key} is not compared")
            return self.row(key, bv, cv, delta, ci, method, up, n, gating=False,
                            verdict_override=(V.SKIPPED, f"n differs ({n[0]} vs {n[1]}), no features for FID∞"))
        return self.row(key, bv, cv, delta, ci, method, up, n)

    def paired(self, key, bv, cv, up, n) -> Row:
        b, c = self.b, self.c
        drop_b, drop_c = b.dropped_pairs(key), c.dropped_pairs(key)
        vb, vc = b.values(key), c.values(key)
        for run, vals, drop, value in ((b, vb, drop_b, bv), (c, vc, drop_c, cv)):
            if not vals:
                raise Unavailable(f"{run.label}: no per-sample values of {key} in samples.jsonl")
            own = [vals[p] for p in run.scored() if p not in drop and p in vals and math.isfinite(vals[p])]
            mean = math.fsum(own) / len(own) if own else float("nan")
            if not math.isclose(mean, value, rel_tol=1e-9, abs_tol=1e-12):
                raise Unavailable(f"{run.label}'s per-sample values give a mean of {mean:.6g}, not its results.json "
                                  f"{value:.6g} (records and results.json out of step?)")
        ids = [p for p in sorted(self.match.common) if p not in drop_b and p not in drop_c]
        keep, xb, xc = finite_pairs(vb, vc, ids)
        if len(keep) < len(ids):
            self.notes.append(f"{key}: {len(ids) - len(keep)} pair(s) without a finite value in both runs left out")
        pd = paired_bootstrap(xb, xc, self.o.resamples, self.o.seed)
        if abs(pd.delta - (cv - bv)) > 1e-9 * max(1.0, abs(bv)):
            self.notes.append(f"{key}: Δ is over the {pd.n} pairs both runs scored ({pd.delta:+.4g}); the results.json "
                              f"values are over {n[0]} and {n[1]} pairs ({cv - bv:+.4g})")
        return self.row(key, bv, cv, pd.delta, pd.ci95, pd.method, up, n)

    def sequence(self, key, bv, cv, up, n) -> Row:
        """A sequence metric: the paired bootstrap of the per-video differences over the videos both
        runs scored (their sequences.jsonl), the video being the unit as in the runs' own CIs."""
        b, c = self.b, self.c
        vb, vc = b.video_values(key), c.video_values(key)
        for run, vals, value in ((b, vb, bv), (c, vc, cv)):
            if not vals:
                raise Unavailable(f"{run.label}: no per-video values of {key} (sequences.jsonl)")
            own = [v for v in vals.values() if math.isfinite(v)]
            mean = math.fsum(own) / len(own) if own else float("nan")
            if not math.isclose(mean, value, rel_tol=1e-9, abs_tol=1e-12):
                raise Unavailable(f"{run.label}'s per-video values give a mean of {mean:.6g}, not its results.json "
                                  f"{value:.6g} (sequences.jsonl and results.json out of step?)")
        keep, xb, xc = finite_pairs(vb, vc, [v for v in vb if v in vc])
        if len(keep) < max(len(vb), len(vc)):
            self.notes.append(f"{key}: {max(len(vb), len(vc)) - len(keep)} video(s) without a value in both runs "
                              f"left out; Δ is over the {len(keep)} both have")
        pd = paired_bootstrap(xb, xc, self.o.resamples, self.o.seed)
        return self.row(key, bv, cv, pd.delta, pd.ci95,
                        f"paired bootstrap over videos, {pd.resamples} resamples of {pd.n} videos", up, n)

    def _projection(self, run: RunData, key: str, ids: list[str], ref: dict):
        from fpdm_bench.stats.frechet import FrechetProjection

        return FrechetProjection(run.features(key, ids), ref["mu"], ref["sigma"], ref["factor"])

    def frechet(self, key, bv, cv, up, n) -> list[Row]:
        from fpdm_bench.stats.fid_infinity import fid_infinity
        from fpdm_bench.stats.setmetric import fid_difference, fid_infinity_difference

        b, c, o = self.b, self.c, self.o
        t0 = time.perf_counter()
        kb, kc = sorted(self.kept(b, key)), sorted(self.kept(c, key))
        for run, k, m in ((b, kb, n[0]), (c, kc, n[1])):
            if m is not None and len(k) != m:
                raise Unavailable(f"{run.label}: {len(k)} scored pairs but {key} is over {m} images")
        ref = b.reference(key, o.cache)
        pb, pc = self._projection(b, key, kb, ref), self._projection(c, key, kc, ref)
        for run, p, value in ((b, pb, bv), (c, pc, cv)):
            again = p.fid()
            if not math.isclose(again, value, rel_tol=RECOMPUTE_RTOL, abs_tol=1e-9):
                raise Unavailable(f"{run.label}'s stored features give {key} = {again:.6g}, not its results.json "
                                  f"{value:.6g} (features or reference statistics changed?)")
        rows = []
        inf_key = f"{key}_inf"
        if len(kb) == len(kc):
            if kb == kc:
                sd = fid_difference(pb, pc, o.set_replicates, o.seed)
                delta = cv - bv  # = sd.delta to ~1e-9; the table shows results.json's numbers
                ci = [delta - 1.96 * sd.sd, delta + 1.96 * sd.sd] if sd.sd is not None else None
            else:  # same n, other pairs skipped: both FIDs again over the pairs both scored
                common = sorted(set(kb) & set(kc))
                sd = fid_difference(self._projection(b, key, common, ref), self._projection(c, key, common, ref),
                                    o.set_replicates, o.seed)
                delta, ci = sd.delta, sd.ci95
                self.notes.append(f"{key}: the runs skipped different pairs; Δ and its CI are over the {len(common)} "
                                  f"pairs both scored ({sd.base_value:.5g} → {sd.new_value:.5g})")
            rows.append(self.row(key, bv, cv, delta, ci, sd.method, up, n, seconds=time.perf_counter() - t0))
            if o.fid_infinity:
                t1 = time.perf_counter()
                ib, ic = fid_infinity(pb, seed=o.seed), fid_infinity(pc, seed=o.seed)
                rows.append(self.row(inf_key, ib.value, ic.value, ic.value - ib.value, None, ib.describe(), up, n,
                                     gating=False, tol_key=key, seconds=time.perf_counter() - t1,
                                     verdict_override=(V.INFO, f"same n: {key} decides")))
            return rows
        # different numbers of images: FID is biased by k/n, so the raw values are not ranked
        common = sorted(set(kb) & set(kc))
        pos_b, pos_c = {p: i for i, p in enumerate(kb)}, {p: i for i, p in enumerate(kc)}
        rows.append(self.row(key, bv, cv, cv - bv, None, "not ranked: n differs", up, n, gating=False,
                             verdict_override=(V.SKIPPED, f"n differs ({n[0]} vs {n[1]}): see {inf_key}")))
        t1 = time.perf_counter()
        sd = fid_infinity_difference(pb, pc, (np.array([pos_b[p] for p in common], int),
                                              np.array([pos_c[p] for p in common], int)), o.set_replicates, o.seed)
        rows.append(self.row(inf_key, sd.base_value, sd.new_value, sd.delta, sd.ci95, sd.method, up, n, tol_key=key,
                             seconds=time.perf_counter() - t1))
        self.notes.append(f"{key}: the runs scored {n[0]} and {n[1]} images; FID depends on n, so the verdict is on "
                          f"FID∞ ({inf_key}), not on the raw FID")
        return rows

    def kid(self, key, bv, cv, up, n) -> Row:
        from fpdm_bench.stats.setmetric import kid_difference

        importlib.import_module("torchmetrics.image.kid")  # before the clock starts: ~3 s of imports

        b, c, o = self.b, self.c, self.o
        t0 = time.perf_counter()
        kb, kc = self.kept(b, key), self.kept(c, key)
        for run, k, m in ((b, kb, n[0]), (c, kc, n[1])):
            if m is not None and len(k) != m:
                raise Unavailable(f"{run.label}: {len(k)} scored pairs but {key} is over {m} images")
        common = sorted(set(kb) & set(kc))
        ref = b.reference(key, o.cache)["kid_features"]
        size = int(b.settings(key).get("subset_size") or b.entry(key).get("subset_size") or 1000)
        sd = kid_difference(b.features(key, common), c.features(key, common), ref, cv - bv, size,
                            o.set_replicates, seed=o.seed)
        return self.row(key, bv, cv, sd.delta, sd.ci95, sd.method, up, n, seconds=time.perf_counter() - t0)

    def prdc(self, key, bv, cv, up, n) -> Row:
        """One output (precision, recall, density, coverage) of a PRDC-type metric: the joint bootstrap of
        the stored features (stats/prdc.py), done once for the four outputs of the protocol key behind it."""
        name = self.b.entry(key).get("metric") or key
        used = self.b.results.data.get("protocol", {}).get("metrics_used", {})
        pkey = next((k for k, s in used.items() if (s or {}).get("metric") == name), None)
        if pkey is None:
            raise Unavailable(f"{self.b.label}: results.json records no settings of the {name} metric behind {key}")
        if pkey not in self._prdc:
            try:
                self._prdc[pkey] = self._prdc_bootstrap(pkey)
            except Unavailable as e:
                self._prdc[pkey] = e
        done = self._prdc[pkey]
        if isinstance(done, Unavailable):
            raise done
        deltas, seconds, same = done
        sd = deltas[key]
        done[1] = None  # the time of the four outputs' one bootstrap goes on the first row only
        if same:  # the table shows results.json's numbers (= the recomputed ones, checked)
            delta = cv - bv
            ci = [delta - 1.96 * sd.sd, delta + 1.96 * sd.sd] if sd.sd is not None else None
        else:
            delta, ci = sd.delta, sd.ci95
        return self.row(key, bv, cv, delta, ci, sd.method, up, n, seconds=seconds)

    def _prdc_bootstrap(self, pkey: str):
        from fpdm_bench.metrics.neighbours import Balls
        from fpdm_bench.stats.prdc import prdc_difference

        b, c, o = self.b, self.c, self.o
        t0 = time.perf_counter()
        kb, kc = self.kept(b, pkey), self.kept(c, pkey)
        common = sorted(set(kb) & set(kc))
        ref = b.reference(pkey, o.cache)["kid_features"]
        k = int(b.settings(pkey).get("nearest_k") or 5)
        balls = [Balls(ref, run.features(pkey, common), k) for run in (b, c)]
        same = set(kb) == set(kc)
        if same:
            for run, ball in zip((b, c), balls):
                for out, again in ball.values().items():
                    value = run.results.value(out)
                    if value is not None and not math.isclose(again, value, rel_tol=RECOMPUTE_RTOL, abs_tol=1e-9):
                        raise Unavailable(f"{run.label}'s stored features give {out} = {again:.6g}, not its "
                                          f"results.json {value:.6g} (features or reference features changed?)")
        else:
            self.notes.append(f"{pkey}: the runs scored different pairs; Δ and its CI are over the {len(common)} "
                              f"pairs both scored")
        return [prdc_difference(*balls, o.set_replicates, o.seed), time.perf_counter() - t0, same]


def compare_runs(base, new, options: Options | None = None, labels: tuple[str, str] | None = None,
                 metrics: list[str] | None = None) -> Comparison:
    """Compare ``new`` with ``base`` (run directories, results.json paths, dicts or Results), on
    every metric both report or only on ``metrics``."""
    from fpdm_bench.results import metric_names

    options = options or Options()
    b = RunData(base, labels[0] if labels else None)
    c = RunData(new, labels[1] if labels else None)
    check_comparable(b, c)
    cmp = _Comparer(b, c, options)
    rows: list[Row] = []
    for key in metric_names([b.results, c.results]):
        if metrics is not None and key not in metrics:
            continue
        bv, cv = b.results.value(key), c.results.value(key)
        if bv is None or cv is None:
            why = {run.label: run.entry(key).get("unavailable") or "not reported" for run, v in ((b, bv), (c, cv))
                   if v is None}
            if len(why) == 2 and len(set(why.values())) == 1:
                text = f"in both runs: {next(iter(why.values()))}"
            else:
                text = "; ".join(f"{k}: {v}" for k, v in why.items())
            cmp.notes.append(f"{key}: not compared ({text})")
            continue
        rows.extend(cmp.metric(key))
    unknown = sorted(set(options.tolerances) - {r.metric for r in rows})
    if unknown:
        cmp.notes.append(f"tolerance given for {', '.join(unknown)}, which neither run reports")
    return Comparison(b, c, rows, cmp.notes, options, cmp.match.n if cmp.match else None, config_changes(b, c))
