"""Videos of a report: for runs on a dataset whose pairs are frames of videos (PHOENIX, its
synthetic set), one animation per video and one per-frame metric figure per video.

Animation (``videos/video-<k>-<video>.webp``): source (the video's first frame, fixed) | target
pose (drawn as the grid draws it) | ground truth | one column per run, floors included (in a video
the ground-truth floor's column checks that the frames line up, the source floor's shows what a still
frame scores),
column titles as in the grid, and a footer with the frame number that the curves' x axis uses.
Animated WebP, lossless: every browser plays it without a codec or a script, and each cell is
pixel for pixel the grid's cell (a lossy codec would add artefacts of its own beside the models').

Curves (``figures/video-<k>-<video>-per-frame.*``): one panel per metric, one line per run (floors
dashed), x = frame: the per-sample paired metric of the report (``--sample-metric``, as the
per-sample view picks it) from samples.jsonl, and every sequence metric with per-frame values
(flicker, tOF, tLP: the transition from the frame before) from sequences.jsonl.

The videos are the first ``n`` of the runs' pairs in dataset order (deterministic; the same videos
for the same runs), with all their frames that every run has a sample of.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from fpdm_bench.errors import BenchError, DataError
from fpdm_bench.io import write_csv
from fpdm_bench.reporting._common import WIDTH_2COL, Artefact, legend_above, model_colour, new_figure, save_figure, slug, style
from fpdm_bench.reporting.grid import GridSource, cell_size, make_grid

#: playback rate: half of PHOENIX's 25 fps, so a fast hand movement stays legible and the eye can
#: go from column to column within a frame (80 ms per frame, exact in WebP's millisecond durations)
FPS = 12.5
ANIM_COLUMNS = ["frame", "pair_id", "source", "target", "column", "sample"]
CURVE_COLUMNS = ["video", "frame", "pair_id", "run", "model", "floor", "metric", "value"]


def video_frames(src: GridSource) -> list[tuple[str, list]]:
    """The videos of the runs' pairs in dataset order, each as its pairs sorted by frame (a gap,
    a frame the runs did not score, is skipped); [] when the dataset declares no videos."""
    from fpdm_bench.sequences import videos

    return [(v, [p for run in runs for p in run]) for v, runs in videos([src.index[p] for p in src.order])]


def _footer(width: int, height: int, text: str, done: float) -> Image.Image:
    """A strip under the animation: the frame number, and a bar of how far into the video it is."""
    im = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=max(9, height - 8))
    draw.text((4, (height - 4) // 2), text, fill="black", font=font, anchor="lm")
    draw.rectangle([0, height - 3, max(0, round(width * done) - 1), height - 1], fill="#57606a")
    return im


def write_animation(src: GridSource, labels: list[str], video: str, pairs: list, path: Path,
                    cell_height: int | None, fps: float) -> dict:
    """One animation of ``pairs`` (one video's frames): WebP or GIF by ``path``'s suffix; returns its facts
    (size, frames, cell, header)."""
    cell = cell_size(tuple(src.sample(0, pairs[0].pair_id).shape[:2]), cell_height)
    header = max(16, cell[0] // 6)  # as the grid: titles at one size, wrapped where needed
    source = src.source(pairs[0].pair_id)
    frames = []
    for i, p in enumerate(pairs):
        columns = [("source", [source]), ("target pose", [src.pose(p.pair_id)]),
                   ("ground truth", [src.target(p.pair_id)])]
        columns += [(lab, [src.sample(k, p.pair_id)]) for k, lab in enumerate(labels)]
        strip = make_grid(columns, cell, header=header, font_size=max(9, header - 5))
        foot = _footer(strip.width, header, f"frame {p.frame + 1} of {pairs[-1].frame + 1}", (i + 1) / len(pairs))
        im = Image.new("RGB", (strip.width, strip.height + foot.height), "white")
        im.paste(strip, (0, 0))
        im.paste(foot, (0, strip.height))
        frames.append(im)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".webp":
        # lossless: cells identical to the grid's. quality (in lossless mode: the effort) 75 with method 3:
        # measured on 16 frames of 6 columns, within 4 % of the smallest file libwebp makes, 4x faster
        # than its defaults (80, 4) and 30x faster than its slowest (100, 6)
        frames[0].save(path, format="WEBP", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                       loop=0, lossless=True, quality=75, method=3)
    else:  # a Pillow built without libwebp: GIF, 256 colours per frame
        frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                       loop=0)
    return {"size": list(frames[0].size), "frames": len(frames), "cell": list(cell),
            "header": frames[0].height - foot.height - cell[0]}


def curve_data(rows, video: str, pairs: list, metric: str | None) -> list[dict]:
    """The plotted points of one video: per run, per frame, the paired metric ``metric`` from
    samples.jsonl and each sequence metric's per-frame value from sequences.jsonl (None: no value,
    e.g. the first frame has no transition; non-finite values, PSNR's inf, are kept as None)."""
    from fpdm_bench.rundir import read_sequences

    out = []
    for r in rows:
        base = {"video": video, "run": r.label, "model": r.results.model, "floor": bool(r.floor)}
        per_sample = r.per_sample() or {}
        seq = next((s for s in read_sequences(r.run_dir) or [] if s.get("video") == video), None)
        per_frame = {k: dict(zip(seq["frames"], vals)) for k, vals in (seq or {}).get("per_frame", {}).items()}
        keys = ([metric] if metric else []) + list(per_frame)
        for key in keys:
            for p in pairs:
                v = per_sample.get(p.pair_id, {}).get(key) if key == metric else per_frame[key].get(p.pair_id)
                v = float(v) if v is not None and math.isfinite(float(v)) else None
                out.append({**base, "frame": p.frame + 1, "pair_id": p.pair_id, "metric": key, "value": v})
    return out


def build_figure(data: list[dict], colours: dict | None = None):
    """Per-frame curves of one video from ``curve_data`` rows: one panel per metric (display order)
    side by side, as wide as the animation above it on the page; one line per run, floors dashed."""
    from fpdm_bench.metrics.base import display_key
    from fpdm_bench.reporting.tables import title

    colours = {} if colours is None else colours
    metrics = sorted(dict.fromkeys(d["metric"] for d in data), key=display_key)
    runs = list(dict.fromkeys(d["run"] for d in data))
    # a run's colour is its model's, unless two runs share the model: then each label gets its own
    models = {d["run"]: d["model"] for d in data}
    shared = {m for m in models.values() if list(models.values()).count(m) > 1}
    with style():
        fig = new_figure(min(WIDTH_2COL, 0.4 + 2.3 * len(metrics)), 2.1)
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, key in zip(axes, metrics):
            for run in runs:
                pts = [d for d in data if d["run"] == run and d["metric"] == key]
                if not any(d["value"] is not None for d in pts):
                    continue
                floor = pts[0]["floor"]
                c = model_colour(run if models[run] in shared else models[run], colours)
                ax.plot([d["frame"] for d in pts], [np.nan if d["value"] is None else d["value"] for d in pts],
                        color=c, label=run, marker="o", markersize=2, linestyle="--" if floor else "-",
                        linewidth=0.9 if floor else 1.2)
            ax.set_title(title(key) + {True: " ↑", False: " ↓", None: ""}[_direction(key)])
            ax.set_xlabel("frame")
            ax.xaxis.get_major_locator().set_params(integer=True)
        legend_above(fig, axes)
    return fig


def _direction(key: str):
    from fpdm_bench.metrics.base import metric_direction

    try:
        return metric_direction(key)
    except Exception:  # noqa: BLE001 - a key no installed metric reports: no arrow
        return None


def _paired_metric(rows, wanted: str | None) -> str | None:
    """The per-sample metric of the curves: the per-sample view's (``--sample-metric``, else the
    first by ``sample_rank``); None when the runs share none."""
    from fpdm_bench.reporting.per_sample import pick_metric

    try:
        return pick_metric(rows, wanted)
    except BenchError:
        return None


def write_videos(rows, root: Path, n: int = 4, cell_height: int | None = None, fps: float = FPS,
                 sample_metric: str | None = None, colours: dict | None = None, log=print) -> list[Artefact]:
    """The animations and per-frame figures of the first ``n`` videos of ``rows`` (report Rows with
    samples, one group: the same pairs); [] when their dataset declares no videos or ``n`` is 0."""
    if n <= 0 or not rows:
        return []
    try:
        src = GridSource([r.results for r in rows], [r.run_dir for r in rows])
    except DataError as e:  # a group's dataset not on this machine: its tables are still written
        log(f"videos: not drawn for {rows[0].results.dataset} ({e})")
        return []
    every = video_frames(src)
    chosen = every[:n]
    if not chosen:
        return []
    ext = "webp" if features.check("webp") else "gif"  # every Pillow wheel has libwebp; some distro builds not
    metric = _paired_metric(rows, sample_metric)
    arts = []
    for k, (video, pairs) in enumerate(chosen, 1):
        have = [p for p in pairs if all(src.sample_path(i, p.pair_id).is_file() for i in range(len(rows)))]
        if len(have) < len(pairs):
            log(f"video {video}: {len(pairs) - len(have)} of {len(pairs)} frames left out (not generated by every run)")
        if have:
            stem = f"video-{k}-{slug(video)}"
            arts.append(_animation(src, [r.label for r in rows], k, video, have, Path(root), stem, ext, cell_height,
                                   fps))
            arts += _curves(rows, k, video, have, metric, Path(root), stem, colours)
    log(f"videos: the first {len(chosen)} of {len(every)} videos, {len(rows)} runs")
    return arts


def _animation(src, labels, k, video, pairs, root: Path, stem: str, ext: str, cell_height, fps) -> Artefact:
    """The animation of one video and its CSV (the frames and each column's image file)."""
    facts = write_animation(src, labels, video, pairs, root / "videos" / f"{stem}.{ext}", cell_height, fps)
    rows = [{"frame": p.frame + 1, "pair_id": p.pair_id, "source": p.source, "target": p.target, "column": lab,
             "sample": str(src.sample_path(i, p.pair_id))} for p in pairs for i, lab in enumerate(labels)]
    write_csv(root / "videos" / f"{stem}.csv", rows, ANIM_COLUMNS)
    cell = facts["cell"]
    recorded = getattr(src.ds, "frame_rate", None)  # a dataset that declares its frame rate gets it named
    rate = f"{fps:g} fps" + (f" (recorded at {recorded:g} fps)" if recorded else "")
    caption = (f"Video {video}: {facts['frames']} frames at {rate}, looping. Columns: source (the video's first "
               "frame, the source of every pair) | target pose | ground truth | " + " | ".join(labels)
               + f". Cells {cell[1]}×{cell[0]} px" + (" (downscaled)" if cell_height else "")
               + ("; lossless animated WebP." if ext == "webp" else "; animated GIF (256 colours per frame)."))
    return Artefact("videos", stem, f"Video {k}: {video}", caption,
                    {ext: f"videos/{stem}.{ext}", "csv": f"videos/{stem}.csv"},
                    meta={"video": video, "pairs": [p.pair_id for p in pairs], "fps": fps, **facts})


def _curves(rows, k, video, pairs, metric, root: Path, stem: str, colours) -> list[Artefact]:
    """The per-frame figure of one video (PNG, PDF, SVG, CSV); [] when no run has a per-frame value."""
    from fpdm_bench.metrics.base import display_key
    from fpdm_bench.reporting.tables import title

    data = curve_data(rows, video, pairs, metric)
    if not any(d["value"] is not None for d in data):
        return []
    files, size = save_figure(build_figure(data, colours), root / "figures", f"{stem}-per-frame")
    files["csv"] = write_csv(root / "figures" / f"{stem}-per-frame.csv", data, CURVE_COLUMNS)
    files = {kind: f"figures/{name}" for kind, name in files.items()}
    shown = sorted({d["metric"] for d in data if d["value"] is not None}, key=display_key)
    caption = (f"Per frame of video {video}: " + ", ".join(map(title, shown)) + "; one line per run, floors "
               "dashed. Sequence metrics (from sequences.jsonl) score the transition from the frame before (none at "
               "a video's first frame); paired metrics (from samples.jsonl) score each frame against its ground "
               "truth. Where a line leaves the others, the model breaks down.")
    return [Artefact("videos", f"{stem}-per-frame", f"Video {k}: per-frame metrics", caption, files, size,
                     meta={"video": video, "metrics": shown})]
