"""`fpdm-bench grid RUN...`: a qualitative grid, one row per pair: source | target | one column per run.

Rows are deterministic: ``--pairs`` names them, else ``--rows`` pairs evenly spaced over the runs'
pair list (the same rows for the same runs). Every run must hold the same pairs (one dataset, one
split); the images are read from each run's ``samples/`` and the dataset, nothing is regenerated.
The drawing is shared with `fpdm-bench report` (fpdm_bench.reporting.grid). A run's column is
titled by ``--label RUN=NAME`` where given (as in `report`), else by its model name ("[random
weights]" where so), with the run folder added where two runs share it.
"""
from __future__ import annotations

from pathlib import Path

import click

from fpdm_bench.errors import BenchError, DataError
from fpdm_bench.reporting.grid import HEADER, GridSource, make_grid, pick_rows

__all__ = ["HEADER", "grid_cmd", "make_grid", "pick_rows"]  # HEADER, pick_rows: where they used to live


@click.command("grid")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--rows", type=click.IntRange(min=1), default=6, show_default=True, help="Pairs, evenly spaced over the run's pairs.")
@click.option("--pairs", default=None, help="Comma-separated pair ids instead of --rows.")
@click.option("--label", "labels", multiple=True, metavar="RUN=NAME",
              help="Column title of a run (repeatable); RUN: a run directory as given, or its folder name.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def grid_cmd(runs, out, rows, pairs, labels, force):
    """Qualitative grid of RUNS (run directories on the same pairs): source | target | each run."""
    from fpdm_bench.results import Results

    if Path(out).exists() and not force:
        raise DataError(out, "exists; choose another --out or pass --force to overwrite it")
    from fpdm_bench.reporting import run_folder, parse_labels

    results = [Results.load(r) for r in runs]
    given = parse_labels(labels, runs)
    named = [given.get(run_folder(r)) for r in runs]
    titles = [n or res.label for n, res in zip(named, results)]
    for t in set(n for n in named if n):
        if named.count(t) > 1:
            raise BenchError(f"--label: {named.count(t)} runs are labelled {t!r}; give each its own")
    titles = [t if n or titles.count(t) == 1 else f"{t} ({run_folder(r).name})" for t, n, r in zip(titles, named, runs)]
    src = GridSource(results, runs)
    chosen = src.choose([p.strip() for p in pairs.split(",")] if pairs else None, rows)
    columns = [("source", [src.source(p) for p in chosen]), ("target", [src.target(p) for p in chosen])]
    for k, title in enumerate(titles):
        columns.append((title, [src.sample(k, p) for p in chosen]))
    cell = tuple(columns[2][1][0].shape[:2]) if len(columns) > 2 else tuple(src.ds.size)
    img = make_grid(columns, cell)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    click.echo(f"{out}: {len(chosen)} pairs x {len(columns)} columns ({img.width}x{img.height})")
