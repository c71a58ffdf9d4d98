"""Robustness sweeps: models × perturbations × severities, each cell a normal resumable run.

Layout under the sweep's folder::

    <model>/clean/                         severity 0, shared by every perturbation of the model
    <model>/<perturbation>/severity-<s>/   one run directory per cell (fpdm_bench.runner)
    sweep.csv, sweep.json                  the long-format table: model, perturbation, severity,
                                           metric, value, ci95 (and the cell's run directory)

A cell whose run has finished is read, not run again, so an interrupted sweep rerun with the same
command picks up where it stopped, and a finished sweep rerun rewrites the same table.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from fpdm_bench.errors import BenchError
from fpdm_bench.io import atomic_write_text, write_csv

COLUMNS = ["model", "perturbation", "severity", "metric", "value", "ci95_low", "ci95_high", "n", "run"]


def cell_dir(out: Path, model: str, perturbation: str, severity: int) -> Path:
    return out / model / ("clean" if severity == 0 else f"{perturbation}/severity-{severity}")


def sweep(base, models: list[str], perturbations: list[str], severities: list[int], out: str | Path,
          log=print) -> list[dict]:
    """Run every cell (``base``: a RunConfig whose model, out and perturb are replaced per cell) and
    write the long-format table; returns its rows."""
    from fpdm_bench.perturb import PERTURBATIONS, check_severity
    from fpdm_bench.results import Results, metric_names
    from fpdm_bench.runner import run

    out = Path(out)
    if not models or not perturbations or not severities:
        raise BenchError("a sweep needs at least one model, one perturbation and one severity")
    for p in perturbations:
        PERTURBATIONS.check(p)
    for s in severities:
        check_severity(s)
    rows = []
    cells = [(m, p, s) for m in models for p in perturbations for s in severities]
    results: dict[Path, dict] = {}
    for k, (model, pert, sev) in enumerate(cells, 1):
        where = cell_dir(out, model, pert, sev)
        if where not in results:
            log(f"[{k}/{len(cells)}] {model}, {'clean' if sev == 0 else f'{pert} severity {sev}'} -> {where}")
            cfg = replace(base, model=model, out=str(where), perturb=f"{pert}:{sev}" if sev else None, shard="0/1")
            res = run(cfg, log=log)
            if res is None:
                raise BenchError(f"{where}: the run did not finish (pairs skipped by another shard?)")
            results[where] = res
        metrics = results[where]["metrics"]
        for key in metric_names([Results(results[where])]):  # display order, whatever order the dict has
            entry = metrics[key]
            ci = entry.get("ci95") or [None, None]
            rows.append({"model": model, "perturbation": pert, "severity": sev, "metric": key,
                         "value": entry.get("value"), "ci95_low": ci[0], "ci95_high": ci[1], "n": entry.get("n"),
                         "run": str(where.relative_to(out))})
    write_table(out, rows, {"models": models, "perturbations": perturbations, "severities": severities,
                            "dataset": base.dataset, "protocol": base.protocol, "limit": base.limit,
                            "seed": base.seed})
    return rows


def write_table(out: Path, rows: list[dict], settings: dict) -> None:
    write_csv(out / "sweep.csv", rows, COLUMNS)
    atomic_write_text(out / "sweep.json", json.dumps({"sweep": settings, "rows": rows}, indent=2) + "\n")


def format_sweep(rows: list[dict], metrics: list[str] | None = None) -> str:
    """A compact text view: one line per (model, perturbation, metric), values across severities."""
    sevs = sorted({r["severity"] for r in rows})
    keys = metrics or sorted({r["metric"] for r in rows})
    table: dict[tuple, dict] = {}
    for r in rows:
        if r["metric"] in keys:
            table.setdefault((r["model"], r["perturbation"], r["metric"]), {})[r["severity"]] = r["value"]
    head = f"{'model':<16} {'perturbation':<18} {'metric':<10} " + " ".join(f"{'s' + str(s):>9}" for s in sevs)
    lines = [head]
    for (m, p, k), vals in table.items():
        lines.append(f"{m:<16} {p:<18} {k:<10} " + " ".join(
            f"{vals[s]:>9.4g}" if vals.get(s) is not None else f"{'-':>9}" for s in sevs))
    return "\n".join(lines)
