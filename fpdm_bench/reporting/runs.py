"""A figure of runs' metrics: one panel per metric, one point per run with its 95 % CI whisker, the
floors hollow. It is drawn from the long rows of the metric tables (``tables.long_rows``: the
DataFrame of ``fpdm_bench.api.load_runs``), so it shows exactly the numbers of the tables; the
report itself shows them as tables, and this figure is what the Python API draws of runs.
"""
from __future__ import annotations

import math

from fpdm_bench.reporting._common import WIDTH_2COL, model_colour, new_figure, records, style
from fpdm_bench.reporting.tables import title


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def build_figure(data, metrics: list[str] | None = None, colours: dict | None = None):
    """The figure of the rows ``data`` (a list of ``tables.RUN_COLUMNS`` rows, or their DataFrame):
    ``metrics`` (default: every metric in the rows, in their order), one horizontal panel each; a run
    is a row of every panel, named by its model label (and its table's number when the rows hold
    several tables). Values that are not finite (an oracle's PSNR of inf) are left out of the panel."""
    data = records(data)
    colours = {} if colours is None else colours
    keys = list(metrics or dict.fromkeys(d["metric"] for d in data))
    several = len({d.get("table") for d in data}) > 1
    runs = list(dict.fromkeys((d.get("table"), d["model"]) for d in data))
    names = [f"{m} (table {t})" if several else m for t, m in runs]
    with style():
        fig = new_figure(min(WIDTH_2COL, 1.2 + 1.5 * len(keys)), 0.7 + 0.22 * len(runs))
        axes = fig.subplots(1, max(1, len(keys)), sharey=True, squeeze=False)[0]
        for ax, key in zip(axes, keys):
            for y, (run, name) in enumerate(zip(runs, names)):
                d = next((d for d in data if (d.get("table"), d["model"]) == run and d["metric"] == key), None)
                if d is None or not _finite(d["value"]):
                    continue
                lo, hi = d.get("ci95_low"), d.get("ci95_high")
                err = [[d["value"] - lo], [hi - d["value"]]] if _finite(lo) and _finite(hi) else None
                c = model_colour(run[1], colours)
                floor = d.get("role") == "floor"
                ax.errorbar([d["value"]], [y], xerr=err, fmt="o", color=c, capsize=1.5, linewidth=0.8,
                            markerfacecolor="white" if floor else c, label=name)
            up = next((d.get("higher_is_better") for d in data if d["metric"] == key), None)
            ax.set_title(title(key) + {True: " ↑", False: " ↓", None: ""}[up])
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(range(len(runs)), names)
        axes[0].set_ylim(len(runs) - 0.5, -0.5)  # the first run on top, as in the tables
    return fig
