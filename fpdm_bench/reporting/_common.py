"""What every artefact of a report shares: the artefact record, figure saving, CSV writing.

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot, no global backend), saved as
PNG at paper resolution (``DPI``) with the exact pixel size ``figsize × DPI`` (no tight bounding
box), and for vector figures also as PDF and SVG with their dates left out, so the same data gives
the same files. The data a figure is drawn from is written next to it as CSV.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from fpdm_bench.io import atomic_write_bytes

DPI = 300
#: single- and double-column figure widths of a two-column paper, inches
WIDTH_1COL = 3.4
WIDTH_2COL = 7.0
#: colours of models whose adapter declares none (``ModelAdapter.colour``), taken in turn
_CYCLE = ["#ff7f0e", "#17becf", "#e377c2", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f"]

RC = {
    "font.size": 7, "axes.titlesize": 7.5, "axes.labelsize": 7, "xtick.labelsize": 6.5, "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "svg.fonttype": "none", "svg.hashsalt": "fpdm-bench", "pdf.fonttype": 42, "savefig.facecolor": "white",
}


@dataclass
class Artefact:
    """One table or figure of the report: its files (relative to the report folder) by kind
    (png, pdf, svg, csv, md, tex), a title and a caption; ``png_size`` is the (width, height) in pixels
    the PNG must have."""

    section: str
    name: str
    title: str
    caption: str = ""
    files: dict[str, str] = field(default_factory=dict)
    png_size: tuple[int, int] | None = None
    html: str | None = None  # an HTML fragment shown instead of / above the image (tables)
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"section": self.section, "name": self.name, "title": self.title, "caption": self.caption,
                "files": dict(self.files), "png_size": list(self.png_size) if self.png_size else None,
                "meta": self.meta}


def model_colour(name: str, taken: dict[str, str]) -> str:
    """The colour of model ``name`` in every figure of a report (``taken``: the colours given so far):
    the one its registered adapter declares (``ModelAdapter.colour``), else the next free colour of
    the cycle (also for a model not installed here)."""
    if name not in taken:
        from fpdm_bench.models import model_fact

        used = set(taken.values())
        taken[name] = model_fact(name, "colour", None) or next((c for c in _CYCLE if c not in used),
                                                               _CYCLE[len(taken) % 8])
    return taken[name]


def new_figure(width: float, height: float):
    """A Figure with the report's style (call inside ``style()``) and a constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def renderer(fig):
    """The Agg renderer of ``fig`` after a layout pass: what text extents are measured with (a Figure
    made without pyplot has no canvas that renders; one is attached)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def style():
    import matplotlib

    return matplotlib.rc_context(RC)


def legend_above(fig, axes) -> None:
    """One legend above the panels for all of ``axes``: each label once, in the order first drawn."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6))


def save_figure(fig, out: Path, stem: str, vector: bool = True) -> tuple[dict[str, str], tuple[int, int]]:
    """Write ``stem``.png (DPI) and, if ``vector``, ``stem``.pdf and ``stem``.svg under ``out``.
    Returns the file names by kind and the PNG's (width, height)."""
    files = {}
    with style():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        atomic_write_bytes(out / f"{stem}.png", buf.getvalue())
        files["png"] = f"{stem}.png"
        if vector:
            buf = io.BytesIO()
            fig.savefig(buf, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Producer": None,
                                                     "Creator": "fpdm-bench report"})
            atomic_write_bytes(out / f"{stem}.pdf", buf.getvalue())
            buf = io.BytesIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "fpdm-bench report"})
            atomic_write_bytes(out / f"{stem}.svg", buf.getvalue())
            files.update(pdf=f"{stem}.pdf", svg=f"{stem}.svg")
    w, h = fig.get_size_inches()
    return files, (int(round(w * DPI)), int(round(h * DPI)))


def records(data) -> list[dict]:
    """The rows of ``data``: a list of dicts as it is, or a pandas DataFrame's rows with its missing
    values as None, so the figures of the report and of the Python API (``fpdm_bench.api``) are drawn
    by one function from the same rows (a frame's rows are the CSV's rows)."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame (pandas is not imported here)
        return data.astype(object).where(data.notna(), None).to_dict("records")
    return list(data)


def slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"
