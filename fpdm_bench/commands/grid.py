"""`fpdm-bench grid RUN...`: a qualitative grid, one row per pair: source | target | one column per run.

Rows are deterministic: ``--pairs`` names them, else ``--rows`` pairs evenly spaced over the runs'
pair list (the same rows for the same runs). Every run must hold the same pairs (one dataset, one
split); the images are read from each run's ``samples/`` and the dataset, nothing is regenerated.
"""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw

from fpdm_bench.errors import BenchError, DataError

HEADER = 18  # px of column titles


def pick_rows(pair_ids: list[str], rows: int) -> list[str]:
    """``rows`` pair ids evenly spaced over the list (first and last included)."""
    if rows >= len(pair_ids):
        return list(pair_ids)
    idx = np.linspace(0, len(pair_ids) - 1, rows).round().astype(int)
    return [pair_ids[i] for i in idx]


def make_grid(columns: list[tuple[str, list[np.ndarray]]], cell: tuple[int, int]) -> Image.Image:
    """columns: (title, one HxWx3 uint8 image per row), every image resized to ``cell`` (H, W)."""
    h, w = cell
    n_rows = len(columns[0][1])
    out = Image.new("RGB", (w * len(columns), HEADER + h * n_rows), "white")
    draw = ImageDraw.Draw(out)
    for c, (title, images) in enumerate(columns):
        draw.text((c * w + 3, 3), title[: max(1, w // 6)], fill="black")
        for r, arr in enumerate(images):
            im = Image.fromarray(arr)
            if im.size != (w, h):
                im = im.resize((w, h), Image.BICUBIC)
            out.paste(im, (c * w, HEADER + r * h))
    return out


@click.command("grid")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--rows", type=int, default=6, show_default=True, help="Pairs, evenly spaced over the run's pairs.")
@click.option("--pairs", default=None, help="Comma-separated pair ids instead of --rows.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def grid_cmd(runs, out, rows, pairs, force):
    """Qualitative grid of RUNS (run directories on the same pairs): source | target | each run."""
    from fpdm_bench.data import open_dataset
    from fpdm_bench.images import read_image, to_uint8
    from fpdm_bench.results import Results

    if Path(out).exists() and not force:
        raise DataError(out, "exists; choose another --out or pass --force to overwrite it")
    results = [Results.load(r) for r in runs]
    hashes = {r.pairs_sha256 for r in results}
    if len(hashes) > 1:
        raise BenchError("the runs were made on different pairs (pairs_sha256 differ); a grid needs the same pairs")
    cfg = results[0].data["config"]
    ds = open_dataset(cfg["dataset"], cfg.get("data_root"), cfg.get("split", "test"))
    order = [rec.pair_id for rec in (ds.pairs[: cfg["limit"]] if cfg.get("limit") else ds.pairs)]
    chosen = [p.strip() for p in pairs.split(",")] if pairs else pick_rows(order, rows)
    unknown = [p for p in chosen if p not in set(order)]
    if unknown:
        raise BenchError(f"--pairs: {unknown[0]!r} is not a pair of these runs (e.g. {order[0]})")
    index = {rec.pair_id: rec for rec in ds.pairs}

    def real(name):
        return to_uint8(read_image(ds.image_path(name))[None])[0]

    columns = [("source", [real(index[p].source) for p in chosen]), ("target", [real(index[p].target) for p in chosen])]
    for run, res in zip(runs, results):
        columns.append((res.model, [to_uint8(read_image(Path(run) / "samples" / f"{p}.png")[None])[0] for p in chosen]))
    cell = tuple(columns[2][1][0].shape[:2]) if len(columns) > 2 else tuple(ds.size)
    img = make_grid(columns, cell)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    click.echo(f"{out}: {len(chosen)} pairs x {len(columns)} columns ({img.width}x{img.height})")
