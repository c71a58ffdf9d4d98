"""fpdm-bench as Python functions, for notebooks and scripts (docs/python-api.md).

    from fpdm_bench import api

    api.run(model="keypoint-warp", out="runs/kw", limit=8, protocol="paired")   # results.json as a dict
    api.run(model="copy-source", out="runs/cs", limit=8, protocol="paired")
    frame = api.load_runs(["runs/kw", "runs/cs"])                             # one row per (run, metric)
    api.plot_metrics(frame).savefig("metrics.png")

Three kinds of function:

- ``run``, ``score``, ``sweep``, ``profile``, ``comparison``, ``report`` do the work of the command of
  the same name (``compare`` for ``comparison``) and return what it writes (results.json, the sweep's
  rows, the profile JSON, the comparison, the report's manifest). The commands call these functions:
  the command line only parses options and prints. ``check_data`` is the check of `data check`.
- ``load_runs``, ``load_samples``, ``load_sweep``, ``load_profiles``, ``load_profile_stages``,
  ``compare`` and ``per_sample`` return pandas DataFrames in long format whose columns and rows are
  those of the CSV files fpdm-bench writes (the report's tables, sweep.csv, timing-*.csv,
  per-sample-*.csv, ``compare --format csv``): each frame is made from the rows the CSV writer
  writes, by the same function.
- ``plot_metrics``, ``plot_robustness``, ``plot_timing_stages``, ``plot_timing_steps`` draw the
  report's figures from those frames, by the report's own figure functions, and return matplotlib
  Figures (made without pyplot: ``fig.savefig(path)``; a notebook shows a returned figure).

Nothing heavy is imported with this module; each function imports what it needs.
"""
from __future__ import annotations

import os
from pathlib import Path

from fpdm_bench.errors import BenchError


def _quiet(message: str) -> None:
    """The ``log`` of ``log=None``: nothing is printed."""


def _log(log):
    return _quiet if log is None else log


def default_device(device: str | None = None) -> str:
    """``device``, else cuda when available, else cpu (what the commands take without --device)."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _plain(value):
    """Paths as strings (config.json and results.json store the settings as JSON)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _size(size):
    """[H, W] from "HxW" or a pair; None stays None."""
    if isinstance(size, str):
        from fpdm_bench.commands.options import parse_size

        return parse_size(size)
    return None if size is None else [int(v) for v in size]


def _names(value) -> list[str]:
    """A list of names from a list or from "a,b" (as the commands take them)."""
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    return [str(v) for v in value]


def _paths(paths) -> list[Path]:
    """One path or several."""
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _frame(rows: list[dict], columns: list[str]):
    """A DataFrame of ``rows`` with exactly ``columns``; a column of integers with gaps stays integer
    (pandas' nullable Int64) rather than turning into floats."""
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=columns)
    for c in columns:
        values = [r.get(c) for r in rows]
        given = [v for v in values if v is not None]
        if given and len(given) < len(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in given):
            frame[c] = pd.array(values, dtype="Int64")
    return frame


def _run_config(values: dict):
    """A RunConfig from keyword arguments, with a clear error for a misspelt setting."""
    import dataclasses

    from fpdm_bench.run_config import RunConfig

    known = [f.name for f in dataclasses.fields(RunConfig)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise BenchError(f"unknown run setting(s) {', '.join(unknown)}; the settings are {', '.join(known)}")
    return RunConfig(**values)


# --- doing the work (the commands call these) ---------------------------------------------------


def run(model: str | None = None, dataset: str | None = None, out=None, *, config=None, steps: int | None = None,
        guidance: float | None = None, scheduler: str | None = None, log=print, **settings) -> dict | None:
    """Generate and score ``model`` on ``dataset``'s pairs into the run directory ``out``, as
    `fpdm-bench run` does (an unfinished run resumes, a finished one is read and nothing runs).
    Returns the results.json dict (its ``config`` is every setting that ran), or None on a shard that
    is not the last to finish. ``settings``: any other field of ``fpdm_bench.run_config.RunConfig``
    (``limit``, ``protocol``, ``batch_size``, ``seed``, ``device``, ``perturb``, ``model_args``,
    ``progress``, ...); ``config``: a RunConfig or a dict of fields, overridden by the arguments;
    ``steps``, ``guidance``, ``scheduler``: short for entries of ``model_args``; ``log=None``: silent."""
    import dataclasses

    from fpdm_bench.runner import run as run_config

    base = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
    given = {k: v for k, v in (("model", model), ("dataset", dataset), ("out", out)) if v is not None}
    values = _plain({**base, **given, **settings})
    values["model_args"] = {**values.get("model_args", {}), **{
        k: v for k, v in (("steps", steps), ("guidance", guidance), ("scheduler", scheduler)) if v is not None}}
    values["device"] = default_device(values.get("device"))
    if "size" in values:
        values["size"] = _size(values["size"])
    return run_config(_run_config(values), log=_log(log))


def score(generated, dataset: str | None = None, *, real=None, device: str | None = None, size=None, log=print,
          **options) -> dict:
    """Score the folder of images ``generated`` against ``dataset``'s pairs, or against the folder of
    real images ``real`` (files paired by name), as `fpdm-bench score` does; returns the results.json
    dict (``kind: score``, with ``per_sample``) and writes it to ``out=`` when given. ``options``:
    ``data_root``, ``split``, ``protocol`` (default standard), ``out``, ``force``, ``limit``,
    ``batch_size``, ``convert``, ``weights`` ({metric: file}), ``reference_folder``, ``allow_upsampled``;
    ``size``: "HxW" or [H, W] the generated images are resized to first."""
    from fpdm_bench.folders import score as score_folder

    return score_folder(generated, dataset, real=real, device=default_device(device), size=_size(size), log=_log(log),
                        **_plain(options))


def sweep(models, perturbations, out, severities=(0, 1, 2, 3, 4, 5), *, log=print, **settings) -> list[dict]:
    """Run every (model, perturbation, severity) cell into the sweep folder ``out`` and write its
    sweep.csv and sweep.json, as `fpdm-bench sweep` does; returns the rows of sweep.csv (as dicts;
    ``load_sweep(out)`` gives them as a DataFrame). ``models``, ``perturbations``: lists or "a,b";
    ``settings``: the RunConfig fields every cell shares (``dataset``, ``limit``, ``protocol``, ...)."""
    from fpdm_bench.sweep import sweep as run_sweep

    values = _plain(settings)
    values["device"] = default_device(values.get("device"))
    base = _run_config({"model": "", "out": "", **values})
    return run_sweep(base, _names(models), _names(perturbations), [int(s) for s in severities], out, log=_log(log))


def profile(model: str, *, out=None, log=print, **settings) -> dict:
    """Time ``model`` per batch size and number of steps, as `fpdm-bench profile` does; returns the
    profile (what ``out=`` receives as JSON). ``settings``: fields of
    ``fpdm_bench.profile.ProfileConfig`` (``batch_sizes``, ``steps``: lists or "1,4"; ``repeats``,
    ``warmup``, ``dataset``, ``protocol``, ``metric_pass``, ``device``, ...)."""
    import json

    from fpdm_bench.io import atomic_write_text
    from fpdm_bench.profile import ProfileConfig, parse_int_list
    from fpdm_bench.profile import profile as measure

    values = _plain(settings)
    for key in ("batch_sizes", "steps"):
        if values.get(key) is not None:
            values[key] = parse_int_list(values[key], key)
    values["device"] = default_device(values.get("device"))
    report = measure(ProfileConfig(model=model, **values), log=_log(log))
    if out:
        atomic_write_text(out, json.dumps(report, indent=2, default=str) + "\n")
    return report


def comparison(baseline, candidate, *, tolerance=None, tolerance_file=None, rtol: float | None = None,
               atol: float | None = None, resamples: int = 2000, set_replicates: int = 50, seed: int = 0,
               features: bool = True, fid_infinity: bool = True, use_ci: bool = True):
    """Compare ``candidate`` with ``baseline`` (run directories or results.json files), as
    `fpdm-bench compare` does: a ``fpdm_bench.stats.comparison.Comparison`` (its ``rows``, ``notes``,
    ``failures()``; ``compare`` gives the rows as a DataFrame). ``tolerance``: {metric: value} or
    "fid=0.5,lpips=1%" (or a list of such); the other options are compare's (``features=False`` is
    --no-features, ``use_ci=False`` --no-ci)."""
    from fpdm_bench.stats import verdict as V
    from fpdm_bench.stats.comparison import Options, compare_runs

    tolerances = V.load_file(tolerance_file) if tolerance_file else {}
    if isinstance(tolerance, dict):
        tolerances.update({str(k): V.parse_one(str(k), v) for k, v in tolerance.items()})
    else:
        tolerances.update(V.parse_spec([tolerance] if isinstance(tolerance, str) else tolerance))
    if resamples < 2 or set_replicates < 2:
        raise BenchError("--resamples and --set-replicates need at least 2")
    opts = Options(tolerances=tolerances, rtol=rtol, atol=atol, resamples=resamples, set_replicates=set_replicates,
                   seed=seed, features=features, fid_infinity=fid_infinity, use_ci=use_ci)
    c = compare_runs(_plain(baseline), _plain(candidate), opts)
    if not c.rows:
        raise BenchError("the two results have no metric in common")
    return c


def report(inputs, out=None, *, fmt: str = "text", log=print, **options):
    """Without ``out``: the metric table of the runs ``inputs`` (``fmt``: text, markdown or csv), as
    `fpdm-bench report RUN…` prints it. With ``out``: the report folder of runs, sweeps, profiles (and
    ``stage1=``), as `fpdm-bench report … --out DIR` writes it; returns its manifest (report.json).
    ``options``: those of ``fpdm_bench.reporting.build_report`` (``labels``, ``baseline``, ``rows``,
    ``pairs``, ``k``, ``floors``, ``title``, ``force``, ``seed``, ...)."""
    inputs = _paths(inputs)
    if out is None:
        from fpdm_bench.report import format_table, load_results
        from fpdm_bench.reporting import classify

        for p in inputs:
            kind = classify(p)
            if kind != "run":
                raise BenchError(f"{p} is a {kind} input: it goes into a report folder (add --out DIR); "
                                 "without --out, report prints the table of run directories")
        return format_table([load_results(p) for p in inputs], fmt=fmt)
    from fpdm_bench.reporting import build_report

    return build_report(inputs, out, log=_log(log), **_plain(options))


# --- reading what was written, as DataFrames ------------------------------------------------------


def _groups(paths, labels, floors):
    from fpdm_bench.reporting import parse_labels, run_groups

    paths = _paths(paths)
    specs = list(labels.items()) if isinstance(labels, dict) else labels
    return run_groups(paths, floors, parse_labels(specs, paths))


def load_runs(paths, *, labels=None, floors=None, significance: bool = False, seed: int = 0):
    """The metrics of the runs at ``paths`` (run directories or results.json files, of `run` or
    `score`), one row per (run, metric), columns ``fpdm_bench.reporting.tables.RUN_COLUMNS``: the
    report's tables in long format (table, dataset, split, protocol, perturbation, model, role, n,
    metric, higher_is_better, value, ci95_low, ci95_high, best, significant, run). A report's
    ``tables/table<N>-….csv`` is the rows of ``table == N`` pivoted on ``metric``. ``labels``: a
    run's name ({run: name} or ["RUN=NAME"], as `report --label`); ``floors``: the models shown as
    floors (default: the registered ones); ``significance=True`` runs the report's tests behind the
    ``significant`` column (bootstraps; otherwise it is empty)."""
    from fpdm_bench.reporting.tables import RUN_COLUMNS, build_tables, long_rows

    tables = build_tables(_groups(paths, labels, floors), seed, significance)
    return _frame([d for t in tables for d in long_rows(t)], RUN_COLUMNS)


def load_samples(paths, *, labels=None):
    """The per-sample metrics of the runs at ``paths``, one row per (run, pair, metric): model,
    pair_id, metric, value, run (``fpdm_bench.reporting.per_sample.SAMPLE_COLUMNS``), from each
    run's samples.jsonl, or the per-sample records of a `score` results.json."""
    from fpdm_bench.reporting.per_sample import SAMPLE_COLUMNS, sample_rows

    rows = [d for group in _groups(paths, labels, None) for r in group for d in sample_rows(r)]
    return _frame(rows, SAMPLE_COLUMNS)


def per_sample(paths, *, baseline: str | None = None, metric: str | None = None, k: int = 4, labels=None,
               floors=None):
    """The report's per-sample view as a DataFrame: for every model (not a floor) other than the
    baseline, every pair's values and difference on a per-sample metric, sorted; the rows of the
    report's per-sample-<M>-vs-<B>.csv (``fpdm_bench.reporting.per_sample.CSV_COLUMNS``; ``shown``
    marks the ``k`` pairs of each end the figure shows). The runs must share their pairs (one table);
    ``floors=()`` lets floors take part."""
    from fpdm_bench.reporting.per_sample import CSV_COLUMNS, pairing, pick_metric, rank

    groups = _groups(paths, labels, floors)
    if len(groups) != 1:
        raise BenchError(f"the per-sample view needs runs of one dataset, protocol and pairs; these make {len(groups)} "
                         "tables")
    base, others = pairing(groups[0], baseline)
    if base is None or not others:
        raise BenchError("the per-sample view needs a baseline and another model (not a floor) with samples.jsonl")
    key = pick_metric([base] + others, metric)
    return _frame([d for other in others for d in rank(base, other, key, k)[0]], CSV_COLUMNS)


def load_sweep(path):
    """The table of a sweep folder (or its sweep.json), one row per (model, perturbation, severity,
    metric): the rows and columns of its sweep.csv (``fpdm_bench.sweep.COLUMNS``)."""
    from fpdm_bench.reporting.curves import load_sweep as read_sweep
    from fpdm_bench.sweep import COLUMNS

    return _frame(read_sweep(Path(path))["rows"], COLUMNS)


def load_profiles(paths):
    """Profile JSON files (`fpdm-bench profile --out`), one row per (model, batch size, steps): ms
    per image and its spread, the rows of the report's timing-steps.csv
    (``fpdm_bench.reporting.timing.STEP_COLUMNS``)."""
    from fpdm_bench.reporting.timing import STEP_COLUMNS, load_profile, step_data

    return _frame(step_data([load_profile(p) for p in _paths(paths)]), STEP_COLUMNS)


def load_profile_stages(paths):
    """Profile JSON files, one row per (model, steps, batch size, stage): ms per image in each stage,
    ``other``, and the metric pass; the rows of the report's timing-stages.csv
    (``fpdm_bench.reporting.timing.BAR_COLUMNS``)."""
    from fpdm_bench.reporting.timing import BAR_COLUMNS, bar_data, load_profile

    return _frame(bar_data([load_profile(p) for p in _paths(paths)]), BAR_COLUMNS)


def compare(baseline, candidate, **options):
    """``comparison(baseline, candidate, **options)`` as a DataFrame, one row per metric: the rows of
    `fpdm-bench compare --format csv` (``fpdm_bench.stats.comparison.COLUMNS``)."""
    from fpdm_bench.stats.comparison import COLUMNS

    return _frame(comparison(baseline, candidate, **options).records(), COLUMNS)


# --- the report's figures, from those frames ------------------------------------------------------


def plot_metrics(frame, metrics: list[str] | None = None):
    """Runs' metrics (a ``load_runs`` frame): one panel per metric, one point per run with its 95 % CI;
    floors hollow."""
    from fpdm_bench.reporting.runs import build_figure

    return build_figure(frame, metrics)


def plot_robustness(frame, metric: str):
    """The report's robustness curves of ``metric`` from a ``load_sweep`` frame: metric vs severity,
    one line per model with its CI band, one panel per perturbation."""
    from fpdm_bench.reporting.curves import build_figure, curve_data

    return build_figure(curve_data(frame, metric), metric)


def plot_timing_stages(frame):
    """The report's latency-per-stage bars from a ``load_profile_stages`` frame."""
    from fpdm_bench.reporting.timing import build_bar_figure

    return build_bar_figure(frame)


def plot_timing_steps(frame):
    """The report's latency-vs-steps chart from a ``load_profiles`` frame."""
    from fpdm_bench.reporting.timing import build_steps_figure

    return build_steps_figure(frame)


# --- data -------------------------------------------------------------------------------------------


def check_data(dataset: str, root=None, **options):
    """Check a dataset folder as a run would read it (`fpdm-bench data check`): a
    ``fpdm_bench.data.check.CheckReport`` (``ok``, ``problems``, ``to_dict()``). ``options``: those of
    ``fpdm_bench.data.check.check_dataset`` (``split``, ``decode``, ``convert``)."""
    from fpdm_bench.data.check import check_dataset

    return check_dataset(dataset, _plain(root), **options)
