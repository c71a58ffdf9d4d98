"""The per-sample view: the pairs where two models differ most on a per-sample metric.

For a baseline run B and each other model M (not a floor) on the same pairs: the per-sample
difference of a paired metric (from both runs' samples.jsonl), signed so that positive means M is
better (the metric registry's direction). The figure shows the ``k`` pairs where M beats B most and
the ``k`` where it loses most, as rows of source | target pose | ground truth | B | M with the two
values; the CSV next to it has every pair, sorted, with the shown ones marked.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fpdm_bench.errors import BenchError
from fpdm_bench.io import write_csv
from fpdm_bench.reporting._common import Artefact, slug
from fpdm_bench.reporting.grid import GridSource, cell_size, make_grid, save_png
from fpdm_bench.reporting.tables import Row, title as column_title

CSV_COLUMNS = ["order", "pair_id", "baseline", "model", "metric", "baseline_value", "model_value", "diff_better",
               "shown"]


def pick_metric(rows: list[Row], wanted: str | None = None) -> str:
    """The per-sample metric of the view: ``wanted``, else of the keys every run has per-sample values
    of, the first by the ``sample_rank`` its metric class declares (lpips, ssim, mae, psnr for the
    built-ins), then any, alphabetically."""
    common = None
    for r in rows:
        s = r.per_sample() or {}
        keys = set.intersection(*(set(m) for m in s.values())) if s else set()
        common = keys if common is None else common & keys
    common = common or set()
    if wanted:
        if wanted not in common:
            raise BenchError(f"--sample-metric {wanted}: not a per-sample metric of every run "
                             f"(these have: {', '.join(sorted(common)) or 'none'})")
        return wanted
    if common:
        return min(common, key=_preference)
    raise BenchError("the per-sample view needs runs with per-sample metrics (samples.jsonl)")


def _preference(key: str) -> tuple:
    """Sort key of a per-sample key: ranked metrics' own keys by ``Metric.sample_rank``, then the rest
    alphabetically."""
    from fpdm_bench.metrics.base import METRICS

    rank = None
    if key in METRICS:
        try:
            cls = METRICS.get(key)
        except Exception:  # noqa: BLE001 - a broken third-party entry point: no preference
            cls = None
        rank = getattr(cls, "sample_rank", None)
    return (0, rank, key) if rank is not None else (1, 0, key)


def differences(base: Row, other: Row, key: str) -> list[dict]:
    """Every pair's values and ``diff_better`` (positive: ``other`` is better), sorted best first."""
    a, b = base.per_sample() or {}, other.per_sample() or {}
    if set(a) != set(b):
        raise BenchError(f"{base.label} and {other.label} hold different pairs; the per-sample view needs the same pairs")
    up = base.results.higher_is_better(key)
    sign = -1.0 if up is False else 1.0
    out = []
    for p in sorted(a):
        va, vb = a[p].get(key), b[p].get(key)
        if va is None or vb is None or not (math.isfinite(va) and math.isfinite(vb)):
            continue
        out.append({"pair_id": p, "baseline": base.label, "model": other.label, "metric": key,
                    "baseline_value": float(va), "model_value": float(vb), "diff_better": sign * (float(vb) - float(va))})
    out.sort(key=lambda d: (-d["diff_better"], d["pair_id"]))
    for i, d in enumerate(out):
        d["order"] = i
    return out


def rank(base: Row, other: Row, key: str, k: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(every pair's row of ``CSV_COLUMNS``, best first, ``shown`` set; the ``k`` pairs most in
    ``other``'s favour; the ``k`` most in ``base``'s, worst first): the view's CSV and its rows."""
    diffs = differences(base, other, key)
    kk = min(k, len(diffs) // 2) or min(k, len(diffs))
    best, worst = diffs[:kk], diffs[-kk:][::-1] if len(diffs) > kk else []
    shown = {d["pair_id"]: "best" for d in best} | {d["pair_id"]: "worst" for d in worst}
    for d in diffs:
        d["shown"] = shown.get(d["pair_id"], "")
    return diffs, best, worst


def pairing(rows: list[Row], baseline: str | None = None) -> tuple[Row | None, list[Row]]:
    """The baseline of the view (the run of model or label ``baseline``, else the first model that is
    not a floor) and the models compared with it, among the runs with per-sample values."""
    usable = [r for r in rows if r.per_sample()]
    if baseline:
        base = next((r for r in usable if r.label == baseline or r.results.model == baseline), None)
        if base is None:
            raise BenchError(f"--baseline {baseline}: no run of that model with per-sample values among "
                             + ", ".join(r.label for r in usable))
    else:
        base = next((r for r in usable if not r.floor), None)
    return base, [r for r in usable if not r.floor and r is not base]


#: One row per (run, pair, per-sample metric): the DataFrame of ``fpdm_bench.api.load_samples``.
SAMPLE_COLUMNS = ["model", "pair_id", "metric", "value", "run"]


def sample_rows(row: Row) -> list[dict]:
    """The per-sample values of a run as rows of ``SAMPLE_COLUMNS``, in the run's order: from its
    samples*.jsonl, or for the results.json of `score` the per-sample records it holds."""
    per = row.per_sample()
    if per is None:
        per = {r["pair_id"]: r.get("metrics", {}) for r in row.results.data.get("per_sample") or []}
    run = str(row.results.path) if row.results.path else None
    return [{"model": row.label, "pair_id": p, "metric": k, "value": v, "run": run}
            for p, metrics in per.items() for k, v in metrics.items()]


LINE_GAP = 4  # px between the lines of a text cell
TEXT_PAD = 6  # px left clear at each side of a text cell


def _text_size(lines: list[tuple[str, str]], font_size: int) -> tuple[int, int]:
    """(H, W) in px a text cell needs to show ``lines`` whole (measured with the font)."""
    font = ImageFont.load_default(size=font_size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    w = max(draw.textbbox((0, 0), t, font=font)[2] for t, _ in lines)
    return len(lines) * (font_size + LINE_GAP) + 2 * TEXT_PAD, int(math.ceil(w)) + 2 * TEXT_PAD


def _text_cell(lines: list[tuple[str, str]], size: tuple[int, int], font_size: int,
               boxes: list | None = None) -> np.ndarray:
    """The lines drawn left-aligned, centred vertically, in a white (H, W) = ``size`` cell (make it
    at least ``_text_size`` so nothing is cut). ``boxes`` gets each line's (x0, y0, x1, y1)."""
    h, w = size
    im = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=font_size)
    y = max(TEXT_PAD, (h - len(lines) * (font_size + LINE_GAP)) // 2)
    for text, colour in lines:
        draw.text((TEXT_PAD, y), text, fill=colour, font=font)
        if boxes is not None:
            boxes.append(draw.textbbox((TEXT_PAD, y), text, font=font))
        y += font_size + LINE_GAP
    return np.asarray(im)


def write_per_sample(rows: list[Row], baseline: str | None, root: Path, k: int = 4, metric: str | None = None,
                     cell_height: int | None = None, log=print) -> list[Artefact]:
    out = Path(root) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    base, others = pairing(rows, baseline)
    if base is None or not others:
        log("per-sample view: skipped (needs a baseline and another model with samples.jsonl)")
        return []
    key = pick_metric([base] + others, metric)
    title = column_title(key)
    src = GridSource([base.results] + [o.results for o in others], [base.run_dir] + [o.run_dir for o in others])
    arts = []
    for j, other in enumerate(others, 1):
        diffs, best, worst = rank(base, other, key, k)
        kk = len(best)
        picked = best + worst
        native = tuple(src.sample(0, picked[0]["pair_id"]).shape[:2])
        cell = cell_size(native, cell_height)
        fs = max(10, cell[0] // 9)
        texts = []
        for d in picked:
            raw = d["model_value"] - d["baseline_value"]
            colour = "#1a7f37" if d["diff_better"] > 0 else "#b42318" if d["diff_better"] < 0 else "black"
            texts.append([(f"rank {d['order'] + 1} of {len(diffs)}", "black"),
                          (f"{other.label} - {base.label}:", "black"), (f"{raw:+.4f} {title}", colour),
                          (f"{base.label} {d['baseline_value']:.4f}", "#444444"),
                          (f"{other.label} {d['model_value']:.4f}", "#444444")])
        # the text column is as wide as its longest line, and the rows as tall as its five lines
        # (images shorter than that are shown larger), so no text is cut
        need = [_text_size(t, fs) for t in texts]
        enlarged = max(n[0] for n in need) > cell[0]
        if enlarged:
            cell = cell_size(native, max(n[0] for n in need))
        text_w = max(int(cell[1] * 1.3), max(n[1] for n in need))
        labels = [_text_cell(t, (cell[0], text_w), fs) for t in texts]
        ids = [d["pair_id"] for d in picked]
        columns = [("pair", labels), ("source", [src.source(p) for p in ids]), ("target pose", [src.pose(p) for p in ids]),
                   ("ground truth", [src.target(p) for p in ids]), (base.label, [src.sample(0, p) for p in ids]),
                   (other.label, [src.sample(j, p) for p in ids])]
        header = max(16, cell[0] // 6)
        img = make_grid(columns, cell, header=header, font_size=max(9, header - 5),
                        widths=[text_w] + [cell[1]] * (len(columns) - 1))
        header = img.height - cell[0] * len(ids)
        draw = ImageDraw.Draw(img)
        if worst:  # a rule between the best and the worst rows
            y = header + len(best) * cell[0]
            draw.line([(0, y), (img.width, y)], fill="black", width=2)
        stem = f"per-sample-{slug(other.label)}-vs-{slug(base.label)}"
        save_png(img, out / f"{stem}.png")
        write_csv(out / f"{stem}.csv", diffs, CSV_COLUMNS)
        mean = float(np.mean([d["diff_better"] for d in diffs])) if diffs else float("nan")
        wins = sum(d["diff_better"] > 0 for d in diffs)
        caption = (f"{other.label} vs {base.label} on per-sample {title}: the {len(best)} pairs ranked most in favour of "
                   f"{other.label} (top) and the {len(worst)} ranked most in favour of {base.label} (below the rule); "
                   f"green: {other.label} better on that pair, red: worse. "
                   f"Over all {len(diffs)} pairs {other.label} is better on {wins} (mean difference "
                   f"{mean:+.4f}, positive = {other.label} better). The CSV lists every pair, sorted."
                   + (f" Images enlarged to {cell[0]} px high to hold the text beside them." if enlarged else ""))
        arts.append(Artefact("per_sample", stem, f"Per-sample: {other.label} vs {base.label} ({title})", caption,
                             {"png": f"figures/{stem}.png", "csv": f"figures/{stem}.csv"}, img.size,
                             meta={"metric": key, "baseline": base.label, "model": other.label,
                                   "pairs": ids, "k": kk}))
    log(f"per-sample view: {len(arts)} comparisons with {base.label} on {key}")
    return arts
