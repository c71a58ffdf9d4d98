"""Robustness curves from sweep folders (fpdm_bench.sweep): metric vs severity, one line per model
with its 95 % CI band, one panel per perturbation; one figure per metric.

The x axis is the severity (0 = clean, shared by every perturbation); tick labels add the
perturbation's parameter value (σ in px, area fraction, ...) from the perturbation registry.
"""
from __future__ import annotations

import math
from pathlib import Path

from fpdm_bench.data.base import read_json
from fpdm_bench.errors import DataError
from fpdm_bench.io import write_csv
from fpdm_bench.reporting._common import (WIDTH_2COL, Artefact, legend_above, model_colour, new_figure, records, save_figure, slug,
                                        style)
from fpdm_bench.reporting.tables import title

CSV_COLUMNS = ["metric", "perturbation", "model", "severity", "value", "ci95_low", "ci95_high", "n", "level", "unit"]


def is_sweep(path: Path) -> bool:
    path = Path(path)
    return (path.is_dir() and (path / "sweep.json").is_file()) or (path.is_file() and path.name == "sweep.json")


def load_sweep(path: Path) -> dict:
    path = Path(path)
    f = path / "sweep.json" if path.is_dir() else path
    data = read_json(f, "sweep table")
    if not isinstance(data, dict) or "rows" not in data:
        raise DataError(f, "no 'rows': not a sweep.json written by `fpdm-bench sweep`")
    data["_path"] = str(f)
    return data


def _levels(pert: str) -> tuple[list, str]:
    try:
        from fpdm_bench.perturb import get_perturbation

        p = get_perturbation(pert)
        return list(p.levels), p.unit
    except Exception:  # a perturbation this installation does not know: severities only
        return [], ""


def _direction(metric: str) -> bool | None:
    from fpdm_bench.metrics.base import metric_direction

    try:
        return metric_direction(metric)
    except Exception:
        return None


def curve_data(rows, metric: str) -> list[dict]:
    """The plotted points of one metric: per (perturbation, model, severity), sorted; rows without
    a finite value are left out. ``rows``: the sweep's rows (sweep.json, or the DataFrame of
    ``fpdm_bench.api.load_sweep``)."""
    rows = records(rows)
    out = []
    for r in rows:
        v = r.get("value")
        if r["metric"] != metric or v is None or not math.isfinite(float(v)):
            continue
        levels, unit = _levels(r["perturbation"])
        s = int(r["severity"])
        out.append({"metric": metric, "perturbation": r["perturbation"], "model": r["model"], "severity": s,
                    "value": float(v), "ci95_low": None if r.get("ci95_low") is None else float(r["ci95_low"]),
                    "ci95_high": None if r.get("ci95_high") is None else float(r["ci95_high"]), "n": r.get("n"),
                    "level": 0.0 if s == 0 else (levels[s - 1] if s <= len(levels) else None), "unit": unit})
    perts = list(dict.fromkeys(r["perturbation"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    return sorted(out, key=lambda d: (perts.index(d["perturbation"]), models.index(d["model"]), d["severity"]))


def build_figure(data: list[dict], metric: str, colours: dict | None = None):
    """The figure of one metric from ``curve_data`` rows (a list or a DataFrame; nothing else)."""
    data = records(data)
    colours = {} if colours is None else colours
    perts = list(dict.fromkeys(d["perturbation"] for d in data))
    models = list(dict.fromkeys(d["model"] for d in data))
    n = len(perts)
    width = min(WIDTH_2COL, 0.4 + 2.2 * n)
    with style():
        fig = new_figure(width, 2.1)
        axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
        up = _direction(metric)
        arrow = {True: " ↑", False: " ↓", None: ""}[up]
        for ax, pert in zip(axes, perts):
            sevs = sorted({d["severity"] for d in data if d["perturbation"] == pert})
            for m in models:
                pts = [d for d in data if d["perturbation"] == pert and d["model"] == m]
                if not pts:
                    continue
                c = model_colour(m, colours)
                xs = [d["severity"] for d in pts]
                ax.plot(xs, [d["value"] for d in pts], marker="o", color=c, label=m)
                if all(d["ci95_low"] is not None and d["ci95_high"] is not None for d in pts):
                    ax.fill_between(xs, [d["ci95_low"] for d in pts], [d["ci95_high"] for d in pts], color=c,
                                    alpha=0.18, linewidth=0)
            levels, unit = _levels(pert)
            ax.set_xticks(sevs)
            ax.set_xticklabels([f"{s}" if s == 0 or s > len(levels) else f"{s}\n({levels[s - 1]:g})" for s in sevs])
            ax.set_title(pert)
            ax.set_xlabel("severity" + (f" ({unit})" if unit else ""))
        axes[0].set_ylabel(title(metric) + arrow)
        legend_above(fig, axes)
    return fig


def write_curves(sweeps: list[Path], root: Path, metrics: list[str] | None = None, log=print,
                 colours: dict | None = None) -> list[Artefact]:
    """One figure (PNG, PDF, SVG, CSV) per metric and sweep under ``root``/figures, in the metrics'
    display order (``Metric.order``)."""
    from fpdm_bench.metrics.base import display_key

    out = Path(root) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    arts = []
    for k, path in enumerate(sweeps, 1):
        sweep = load_sweep(path)
        rows = sweep["rows"]
        settings = sweep.get("sweep", {})
        present = {r["metric"] for r in rows if r.get("value") is not None}
        keys = sorted(present, key=display_key)
        if metrics:
            keys = [m for m in keys if m in metrics]
        prefix = "robustness" if len(sweeps) == 1 else f"robustness{k}"
        for metric in keys:
            data = curve_data(rows, metric)
            if not data:
                continue
            fig = build_figure(data, metric, colours)
            stem = f"{prefix}-{slug(metric)}"
            files, size = save_figure(fig, out, stem)
            files["csv"] = write_csv(out / f"{stem}.csv", data, CSV_COLUMNS)
            files = {kind: f"figures/{name}" for kind, name in files.items()}
            where = ", ".join(f"{key} {settings[key]}" for key in ("dataset", "protocol", "limit", "seed")
                              if settings.get(key) is not None)
            caption = (f"{title(metric)} vs perturbation severity (0 = clean), one line per "
                       f"model, band = 95 % CI of results.json; sweep {Path(sweep['_path']).parent.name}"
                       + (f" ({where})" if where else "") + ". Tick labels: severity (parameter value).")
            arts.append(Artefact("robustness", stem, f"Robustness: {title(metric)}", caption,
                                 files, size, meta={"sweep": sweep["_path"], "metric": metric}))
        log(f"robustness curves: {len(keys)} metrics from {sweep['_path']}")
    return arts
