"""Timing charts from profile JSON files (`fpdm-bench profile --out FILE.json`).

- latency per stage: one stacked bar per (model, steps, batch size): milliseconds per image in each
  stage the model declares (source encoder, fusion, pose encoder, denoiser, VAE decoder, ...) and
  ``other`` = the median total minus the stage medians (sampler arithmetic, resizing, glue), so the
  bar's height is the median total; whisker = the interquartile range (inclusive quartiles, as
  ``profile`` summarises) of the timed calls' totals, so one slow call (a page fault, another job on
  the machine) does not flatten the bars; min and max stay in the CSV. Beside it, hatched, the
  metric pass on the same images (scoring, not generation). Models without stage hooks: one
  ``generate`` segment. The legend sits outside the axes (right), and the bar labels are rotated when
  they would touch, so no text overlaps.
- latency vs steps: milliseconds per image against the sampler steps, one line per (model, batch
  size), whisker = IQR; models that take no steps as dashed horizontal lines. Log scale. When no
  line has two steps values (every profile timed one ``--steps``) there is no curve to draw: the
  numbers are given as a table instead, with a note saying why.
"""
from __future__ import annotations

import html
import statistics
from pathlib import Path

from fpdm_bench.data.base import read_json
from fpdm_bench.errors import DataError
from fpdm_bench.io import write_csv
from fpdm_bench.models.random_init import label
from fpdm_bench.reporting._common import (WIDTH_2COL, Artefact, model_colour, new_figure, records, renderer,
                                        save_figure, style)

STAGE_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
                 "#ccb974", "#64b5cd"]
BAR_COLUMNS = ["model", "steps", "batch_size", "segment", "ms_per_image", "total_ms_per_image", "total_q1",
               "total_q3", "total_min", "total_max", "device"]
STEP_COLUMNS = ["model", "batch_size", "steps", "ms_per_image", "ms_per_image_q1", "ms_per_image_q3",
                "ms_per_image_min", "ms_per_image_max", "device"]


def quartiles(summary: dict) -> tuple[float, float]:
    """(Q1, Q3) of a profile summary's timed values (inclusive quartiles, as ``profile.summarize``);
    the median twice when there are fewer than two values (no spread to show)."""
    vals = [float(v) for v in summary.get("values") or [] if v is not None]
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
        return q1, q3
    med = summary["median"]
    if summary.get("iqr") is not None and not vals:  # an older profile without the values: centred
        return med - summary["iqr"] / 2, med + summary["iqr"] / 2
    return med, med


def _overlapping(boxes) -> bool:
    boxes = sorted(boxes, key=lambda b: b.x0)
    return any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:]))


def fit_tick_labels(fig, ax) -> None:
    """Rotate the x tick labels (30°, then 90°) while any two of them overlap (measured with the
    figure's renderer); the figure grows by what the rotation adds to their height, so the axes keep
    theirs."""
    def extents():
        r = renderer(fig)
        return [t.get_window_extent(r) for t in ax.get_xticklabels() if t.get_text()]

    boxes = extents()
    h0 = max((b.height for b in boxes), default=0.0)
    for angle in (30, 90):
        if not _overlapping(boxes):
            return
        for t in ax.get_xticklabels():
            t.set_rotation(angle)
            t.set_ha("right" if angle < 90 else "center")
            t.set_rotation_mode("anchor" if angle < 90 else "default")
        grow = max((b.height for b in extents()), default=0.0) - h0
        if grow > 0:
            w, h = fig.get_size_inches()
            fig.set_size_inches(w, h + grow / fig.dpi)
            h0 += grow
        boxes = extents()


def is_profile(path: Path) -> bool:
    """Whether ``path`` is a profile JSON (its format tag is in its first 4 KiB)."""
    from fpdm_bench.profile import FORMAT

    path = Path(path)
    if not (path.is_file() and path.suffix == ".json"):
        return False
    try:
        with open(path) as f:
            return f'"{FORMAT}"' in f.read(4096)
    except OSError:
        return False


def load_profile(path: Path) -> dict:
    from fpdm_bench.profile import FORMAT

    data = read_json(path, "profile JSON")
    if not isinstance(data, dict) or data.get("format") != FORMAT or "rows" not in data:
        raise DataError(path, "not a profile JSON of `fpdm-bench profile --out`")
    data["_path"] = str(path)
    return data


def _steps_label(s) -> str:
    return "-" if s is None else str(s)


def bar_data(profiles: list[dict]) -> list[dict]:
    """One row per (bar, segment), in plotting order; ms per image."""
    out = []
    for p in profiles:
        model = label(p["config"]["model"], bool(p.get("random_weights")))
        device = p["config"].get("device", "?")
        for r in p["rows"]:
            bs = r["batch_size"]
            total = r["seconds_per_image"]
            q1, q3 = quartiles(total)
            base = {"model": model, "steps": r.get("steps"), "batch_size": bs, "total_ms_per_image": total["median"] * 1e3,
                    "total_q1": q1 * 1e3, "total_q3": q3 * 1e3, "total_min": total["min"] * 1e3,
                    "total_max": total["max"] * 1e3, "device": device}
            stages = r.get("stages") or {}
            if stages:
                inside = 0.0
                for name, st in stages.items():
                    ms = st["seconds_per_batch"]["median"] / bs * 1e3
                    inside += ms
                    out.append({**base, "segment": name, "ms_per_image": ms})
                out.append({**base, "segment": "other", "ms_per_image": max(0.0, base["total_ms_per_image"] - inside)})
            else:
                out.append({**base, "segment": "generate", "ms_per_image": base["total_ms_per_image"]})
            mp = r.get("metric_pass")
            if mp:
                out.append({**base, "segment": "metric pass", "ms_per_image": mp["total"]["median"] / bs * 1e3})
    return out


def build_bar_figure(data):
    """The latency-per-stage chart from ``bar_data`` rows (a list, or the DataFrame of
    ``fpdm_bench.api.load_profile_stages``)."""
    data = records(data)
    bars = list(dict.fromkeys((d["model"], d["steps"], d["batch_size"]) for d in data))
    segments = list(dict.fromkeys(d["segment"] for d in data if d["segment"] != "metric pass"))
    colours = {s: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, s in enumerate(segments)}
    with style():
        # the legend goes to the right of the axes: room for it on top of the bars
        fig = new_figure(min(WIDTH_2COL, 2.6 + 0.55 * len(bars)), 2.6)
        ax = fig.subplots()
        has_mp = any(d["segment"] == "metric pass" for d in data)
        w = 0.38 if has_mp else 0.7
        for x, key in enumerate(bars):
            segs = [d for d in data if (d["model"], d["steps"], d["batch_size"]) == key]
            bottom = 0.0
            for d in segs:
                if d["segment"] == "metric pass":
                    ax.bar(x + w / 2 + 0.02, d["ms_per_image"], w, color="white", edgecolor="#555555", hatch="////",
                           linewidth=0.5, label="metric pass")
                    continue
                ax.bar(x - (w / 2 if has_mp else 0), d["ms_per_image"], w, bottom=bottom, color=colours[d["segment"]],
                       label=d["segment"], linewidth=0)
                bottom += d["ms_per_image"]
            t = segs[0]
            xc = x - (w / 2 if has_mp else 0)
            med = t["total_ms_per_image"]
            lo, hi = min(t["total_q1"], med), max(t["total_q3"], med)
            ax.errorbar(xc, med, yerr=[[med - lo], [hi - med]], color="black", capsize=1.5, linewidth=0.6,
                        label="whisker: IQR of the total")
            ax.annotate(f"{med:.3g}", (xc, hi), textcoords="offset points", xytext=(0, 2), ha="center", fontsize=5.5)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([f"{m}\n{'' if s is None else f'{s} steps, '}bs {b}" for m, s, b in bars], fontsize=5.5)
        ax.set_ylabel("ms per image (median; whisker: IQR)")
        ax.grid(axis="x", visible=False)
        ax.margins(y=0.12)  # room for the value labels above the whiskers
        handles, labels = ax.get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        fig.legend(list(seen.values()), list(seen), loc="outside right upper", fontsize=5.5)
        fit_tick_labels(fig, ax)
    return fig


def step_data(profiles: list[dict]) -> list[dict]:
    out = []
    for p in profiles:
        model = label(p["config"]["model"], bool(p.get("random_weights")))
        for r in p["rows"]:
            per = r["seconds_per_image"]
            q1, q3 = quartiles(per)
            out.append({"model": model, "batch_size": r["batch_size"], "steps": r.get("steps"),
                        "ms_per_image": per["median"] * 1e3, "ms_per_image_q1": q1 * 1e3, "ms_per_image_q3": q3 * 1e3,
                        "ms_per_image_min": per["min"] * 1e3,
                        "ms_per_image_max": per["max"] * 1e3, "device": p["config"].get("device", "?")})
    return sorted(out, key=lambda d: (d["model"], d["batch_size"], -1 if d["steps"] is None else d["steps"]))


def build_steps_figure(data, colours: dict | None = None):
    """The latency-vs-steps chart from ``step_data`` rows (a list, or the DataFrame of
    ``fpdm_bench.api.load_profiles``)."""
    data = records(data)
    colours = {} if colours is None else colours
    lines = list(dict.fromkeys((d["model"], d["batch_size"]) for d in data))
    sizes = sorted({d["batch_size"] for d in data})
    markers = ["o", "s", "^", "D", "v", "P"]
    styles = ["-", "--", ":", "-."]
    steps = sorted({d["steps"] for d in data if d["steps"] is not None})
    with style():
        fig = new_figure(WIDTH_2COL / 2 + 1.3, 2.6)  # + the legend right of the axes
        ax = fig.subplots()
        for m, b in lines:
            pts = [d for d in data if (d["model"], d["batch_size"]) == (m, b)]
            c = model_colour(m, colours)
            k = sizes.index(b)
            if pts[0]["steps"] is None:
                ax.axhline(pts[0]["ms_per_image"], color=c, linestyle=styles[k % len(styles)], linewidth=0.9,
                           label=f"{m}, bs {b} (no steps)")
                continue
            xs = [d["steps"] for d in pts]
            ys = [d["ms_per_image"] for d in pts]
            ax.errorbar(xs, ys, yerr=[[max(0.0, y - d["ms_per_image_q1"]) for y, d in zip(ys, pts)],
                                      [max(0.0, d["ms_per_image_q3"] - y) for y, d in zip(ys, pts)]],
                        color=c, marker=markers[k % len(markers)], linestyle="-", capsize=1.5, label=f"{m}, bs {b}")
        ax.set_yscale("log")
        if steps:
            ax.set_xticks(steps)
        ax.set_xlabel("sampler steps")
        ax.set_ylabel("ms per image (median; whisker: IQR)")
        fig.legend(fontsize=5.5, loc="outside right upper")
        fit_tick_labels(fig, ax)
    return fig


def steps_degenerate(data: list[dict]) -> bool:
    """Whether the latency-vs-steps chart would have no curve: no (model, batch size) line with two
    or more distinct steps values."""
    per_line: dict[tuple, set] = {}
    for d in data:
        if d["steps"] is not None:
            per_line.setdefault((d["model"], d["batch_size"]), set()).add(d["steps"])
    return not any(len(v) > 1 for v in per_line.values())


def steps_table_html(data: list[dict], note: str) -> str:
    """The latency-vs-steps numbers as an HTML table (used when the chart would be degenerate)."""
    e = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("model", "batch size", "steps", "ms / image (median)", "IQR", "min–max"))
    body = "".join(
        f'<tr><td class="label">{e(d["model"])}</td><td>{d["batch_size"]}</td><td>{_steps_label(d["steps"])}</td>'
        f'<td>{d["ms_per_image"]:.4g}</td><td>{d["ms_per_image_q1"]:.4g}–{d["ms_per_image_q3"]:.4g}</td>'
        f'<td>{d["ms_per_image_min"]:.4g}–{d["ms_per_image_max"]:.4g}</td></tr>' for d in data)
    return (f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            f'<ul class="notes"><li>{e(note)}</li></ul>')


def _device_note(profiles: list[dict]) -> str:
    parts = []
    for p in profiles:
        t = p.get("timing", {})
        env = p.get("environment", {})
        dev = p["config"].get("device", "?")
        cpu = env.get("cpu") or env.get("processor") or ""
        gpu = env.get("gpu") or env.get("cuda_device") or ""
        parts.append(f"{p['config']['model']}: {dev}{' ' + str(gpu) if gpu and dev != 'cpu' else ''}"
                     f"{', ' + str(cpu) if cpu and dev == 'cpu' else ''}, {t.get('warmup', '?')} warm-up + "
                     f"{t.get('repeats', '?')} timed calls, torch threads {t.get('torch_threads', '?')}")
    return "; ".join(parts)


def write_timing(paths: list[Path], root: Path, log=print, colours: dict | None = None) -> list[Artefact]:
    out = Path(root) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    profiles = [load_profile(p) for p in paths]
    note = _device_note(profiles)
    arts = []
    data = bar_data(profiles)
    files, size = save_figure(build_bar_figure(data), out, "timing-stages")
    files["csv"] = write_csv(out / "timing-stages.csv", data, BAR_COLUMNS)
    arts.append(Artefact("timing", "timing-stages", "Latency per stage",
                         "Milliseconds per image per stage, one bar per model / steps / batch size (median of the timed "
                         "calls; 'other' = total minus the stages; whisker: interquartile range of the total over the "
                         "timed calls, so a single slow call does not stretch it; min and max are in the CSV); hatched: "
                         f"the metric pass on the same images (scoring, not generation). {note}.",
                         {k: f"figures/{v}" for k, v in files.items()}, size))
    data = step_data(profiles)
    if steps_degenerate(data):
        steps = sorted({d["steps"] for d in data if d["steps"] is not None})
        why = (f"one sampler-steps value ({steps[0]})" if steps else "no sampler steps (models without steps)")
        text = (f"Latency vs sampler steps is not drawn: the profiles time {why} per model and batch size, so there "
                "is no curve; the numbers are this table (median, IQR and min-max of the timed calls). Profile "
                "two or more --steps values for the chart.")
        files = {"csv": f"figures/{Path(write_csv(out / 'timing-steps.csv', data, STEP_COLUMNS)).name}"}
        arts.append(Artefact("timing", "timing-steps", "Latency vs sampler steps (table: one steps value)",
                             f"{text} {note}.", files, None, html=steps_table_html(data, f"{text} {note}."),
                             meta={"skipped_figure": "one steps value", "note": text}))
        log(f"timing charts: {len(profiles)} profiles; latency vs steps given as a table ({why})")
        return arts
    files, size = save_figure(build_steps_figure(data, colours), out, "timing-steps")
    files["csv"] = write_csv(out / "timing-steps.csv", data, STEP_COLUMNS)
    arts.append(Artefact("timing", "timing-steps", "Latency vs sampler steps",
                         "Milliseconds per image against the number of sampler steps, one line per model and batch "
                         "size (median; whisker: interquartile range of the timed calls, min-max in the CSV); models "
                         f"without steps dashed. {note}.",
                         {k: f"figures/{v}" for k, v in files.items()}, size))
    log(f"timing charts: {len(profiles)} profiles")
    return arts
