"""`fpdm-bench report`: a metric table of runs, or a report folder (tables, figures, index.html)."""
from __future__ import annotations

import click

from fpdm_bench.errors import BenchError


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "csv"]), default="text", show_default=True,
              help="Format of the printed table (without --out).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Write the full report to this folder (tables, figures, index.html) instead of printing a table.")
@click.option("--stage1", "stage1", default=None, type=click.Path(exists=True),
              help="A stage-1 evaluation (`fpdm-bench eval stage1 --out DIR`: DIR or its stage1_eval.json) to draw "
                   "the similarity-ranking figure from.")
@click.option("--rows", type=click.IntRange(min=1), default=6, show_default=True, help="Grid rows: pairs evenly spaced over the runs' pairs.")
@click.option("--pairs", default=None, help="Grid rows: comma-separated pair ids instead of --rows.")
@click.option("--baseline", default=None,
              help="Model (or run label) the per-sample view compares every other model with "
                   "(default: the first model that is not a floor).")
@click.option("--k", "top_k", type=click.IntRange(min=1), default=4, show_default=True,
              help="Per-sample view: how many best and worst pairs to show.")
@click.option("--sample-metric", default=None,
              help="Per-sample view: the paired metric (default: the one every run has with the lowest sample_rank, e.g. lpips, then ssim).")
@click.option("--cell-height", type=click.IntRange(min=16), default=None,
              help="Downscale grid and per-sample images to this height in px (default: the samples' own size).")
@click.option("--videos", "n_videos", type=click.IntRange(min=0), default=4, show_default=True,
              help="Runs on a dataset of video frames (PHOENIX): animate the first N videos in dataset order "
                   "(source | target pose | ground truth | each run) and plot their per-frame metrics; 0: none.")
@click.option("--video-fps", type=click.FloatRange(min=0.1, max=100), default=None,
              help="Playback rate of the animations (default 12.5: half of PHOENIX's 25 fps, so hands stay legible).")
@click.option("--floors", default=None,
              help="Comma-separated models shown below the rule of the tables and never ranked (default: the "
                   "registered floors, `fpdm-bench models --floors`).")
@click.option("--title", default=None, help="Title of index.html.")
@click.option("--label", "labels", multiple=True, metavar="RUN=NAME",
              help="Name a run in tables and figures (repeatable), e.g. --label runs/fpdm-a=\"FPDM (ours)\". RUN: "
                   "a run directory as given (or its results.json, or its folder name). Default: the model name "
                   "(\"[random weights]\" where so), plus the folder where two runs of one table share it.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the significance bootstrap.")
@click.option("--force", is_flag=True, help="Replace an existing report folder at --out.")
def report_cmd(runs, fmt, out, stage1, rows, pairs, baseline, top_k, sample_metric, cell_height, n_videos, video_fps,
               floors, title, seed, force, labels):
    """Print a metric table of RUNS, or with --out write a report folder.

    \b
    Without --out: a table of one or more run directories (or results.json files), as text,
    Markdown or CSV.

    \b
    With --out DIR, the inputs may also be sweep folders (`fpdm-bench sweep`) and profile JSON files
    (`fpdm-bench profile --out`), told apart by their content; DIR gets:
      tables/     Markdown + LaTeX (booktabs) + CSV: best model per column in bold, arrows from the
                  metric registry, 95 % CIs, protocol and dataset under the table, floors below a
                  rule, * = the lead of the best model over the second is significant (paired
                  bootstrap of the per-sample differences; set metrics as each declares: FID/KID by
                  a joint bootstrap of the stored features)
      figures/    grid (source | target pose | ground truth | models), the per-sample view (pairs
                  where two models differ most), robustness curves, timing charts, the stage-1
                  ranking; PNG at 300 dpi, PDF + SVG for vector figures, the data as CSV
      videos/     runs on video frames (PHOENIX): one looping animated WebP per video (--videos),
                  with its per-frame metric curves in figures/
      index.html  everything on one static page (relative links, no script)
    Example:
      fpdm-bench report runs/synthetic/* runs/sweep-synthetic runs/profile-fpdm.json --out reports/mine
    """
    import shlex

    from fpdm_bench.api import report

    if out is None:
        extra = {"--stage1": stage1, "--pairs": pairs, "--baseline": baseline, "--sample-metric": sample_metric,
                 "--cell-height": cell_height, "--title": title, "--label": labels or None,
                 "--videos": n_videos if n_videos != 4 else None, "--video-fps": video_fps}
        given = [k for k, v in extra.items() if v is not None] + (["--force"] if force else [])
        if given:
            raise BenchError(f"{given[0]} is an option of the report folder: add --out DIR")
        click.echo(report(runs, fmt=fmt))
        return
    opts = [("--stage1", stage1), ("--pairs", pairs), ("--rows", rows if rows != 6 else None),
            ("--baseline", baseline), ("--k", top_k if top_k != 4 else None), ("--sample-metric", sample_metric),
            ("--cell-height", cell_height), ("--videos", n_videos if n_videos != 4 else None),
            ("--video-fps", video_fps), ("--title", title), ("--seed", seed or None)] + [("--label", v) for v in labels]
    command = " ".join(["fpdm-bench report", *map(shlex.quote, runs), "--out", shlex.quote(out)]
                       + [f"{k} {shlex.quote(str(v))}" for k, v in opts if v is not None])
    report(runs, out, stage1=stage1, pairs=[p.strip() for p in pairs.split(",") if p.strip()] if pairs else None,
           rows=rows, baseline=baseline, k=top_k, sample_metric=sample_metric, cell_height=cell_height,
           floors=tuple(f.strip() for f in floors.split(",") if f.strip()) if floors is not None else None,
           title=title, force=force, seed=seed, command=command, labels=list(labels), videos=n_videos,
           video_fps=video_fps, log=lambda m: click.echo(m, err=True))
