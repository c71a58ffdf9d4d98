"""Qualitative grids: one row per pair, one column per image (source, target pose, ground truth,
each run's sample). Shared by `fpdm-bench grid` (source | target | one column per run) and the
report (source | target pose | ground truth | one column per model, the paper's layout).

Rows are deterministic: named pair ids, else ``rows`` pairs evenly spaced over the runs' pair list
(the same rows for the same runs). Every run must hold the same pairs (one dataset, one split);
images are read from each run's ``samples/`` and from the dataset, nothing is regenerated.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fpdm_bench.errors import BenchError

HEADER = 18  # px of column titles (the `grid` command's default)
# OpenPose colours of the 17 COCO-18 limbs (RGB), as skeleton pictures are usually drawn.
_LIMB_COLOURS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
                 (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
                 (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170)]


def pick_rows(pair_ids: list[str], rows: int) -> list[str]:
    """``rows`` pair ids evenly spaced over the list (first and last included)."""
    if rows >= len(pair_ids):
        return list(pair_ids)
    idx = np.linspace(0, len(pair_ids) - 1, rows).round().astype(int)
    return [pair_ids[i] for i in idx]


def _fit(draw, text: str, width: int, font) -> str:
    if font is None:
        return text[: max(1, width // 6)]
    while text and draw.textlength(text, font=font) > width - 4:
        text = text[:-1]
    return text


def make_grid(columns: list[tuple[str, list[np.ndarray]]], cell: tuple[int, int], header: int = HEADER,
              font_size: int | None = None) -> Image.Image:
    """columns: (title, one HxWx3 uint8 image per row), every image resized to ``cell`` (H, W).
    ``font_size``: titles in PIL's scalable default font of that size (None: the bitmap font)."""
    h, w = cell
    n_rows = len(columns[0][1])
    out = Image.new("RGB", (w * len(columns), header + h * n_rows), "white")
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=font_size) if font_size else None
    for c, (title, images) in enumerate(columns):
        if font is None:
            draw.text((c * w + 3, 3), _fit(draw, title, w, None), fill="black")
        else:
            size, f = font_size, font
            while size > 7 and draw.textlength(title, font=f) > w - 4:  # shrink a long title, then cut it
                size -= 1
                f = ImageFont.load_default(size=size)
            text = _fit(draw, title, w, f)
            tw = draw.textlength(text, font=f)
            draw.text((c * w + (w - tw) / 2, (header - size) / 2 - 1), text, fill="black", font=f)
        for r, arr in enumerate(images):
            im = Image.fromarray(arr)
            if im.size != (w, h):
                im = im.resize((w, h), Image.BICUBIC)
            out.paste(im, (c * w, header + r * h))
    return out


def skeleton(kp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The target pose as a picture: OpenPose-coloured limbs and joints on black, (H, W) = size.
    COCO-18 keypoints get their limbs; other layouts only their points. NaN = missing."""
    from fpdm_bench.data.keypoints import COCO18_LIMBS

    h, w = size
    scale = 4  # drawn 4x larger, then reduced: anti-aliased strokes
    im = Image.new("RGB", (w * scale, h * scale), "black")
    draw = ImageDraw.Draw(im)
    kp = np.asarray(kp, np.float64)
    ok = np.isfinite(kp).all(1)
    width = max(1, int(round(min(h, w) / 40 * scale)))
    if len(kp) == 18:
        for (a, b), colour in zip(COCO18_LIMBS, _LIMB_COLOURS):
            if ok[a] and ok[b]:
                draw.line([tuple(kp[a] * scale), tuple(kp[b] * scale)], fill=colour, width=width)
    for k, p in enumerate(kp):
        if ok[k]:
            x, y = p * scale
            r = width * 0.8
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_LIMB_COLOURS[k % len(_LIMB_COLOURS)])
    return np.asarray(im.resize((w, h), Image.LANCZOS))


class GridSource:
    """The pairs shared by runs (Results with their run directories) and the images of a pair."""

    def __init__(self, results, run_dirs):
        from fpdm_bench.data import open_dataset

        hashes = {r.pairs_sha256 for r in results}
        if len(hashes) > 1:
            raise BenchError("the runs were made on different pairs (pairs_sha256 differ); a grid needs the same pairs")
        self.results, self.run_dirs = list(results), [Path(d) for d in run_dirs]
        cfg = self.results[0].data["config"]
        self.ds = open_dataset(cfg["dataset"], cfg.get("data_root"), cfg.get("split", "test"))
        pairs = self.ds.pairs[: cfg["limit"]] if cfg.get("limit") else self.ds.pairs
        self.order = [rec.pair_id for rec in pairs]
        self.index = {rec.pair_id: rec for rec in self.ds.pairs}

    def choose(self, pairs: list[str] | None, rows: int) -> list[str]:
        chosen = list(pairs) if pairs else pick_rows(self.order, rows)
        known = set(self.order)
        unknown = [p for p in chosen if p not in known]
        if unknown:
            raise BenchError(f"--pairs: {unknown[0]!r} is not a pair of these runs (e.g. {self.order[0]})")
        return chosen

    def real(self, name: str) -> np.ndarray:
        from fpdm_bench.images import read_image, to_uint8

        return to_uint8(read_image(self.ds.image_path(name))[None])[0]

    def source(self, pid: str) -> np.ndarray:
        return self.real(self.index[pid].source)

    def target(self, pid: str) -> np.ndarray:
        return self.real(self.index[pid].target)

    def pose(self, pid: str) -> np.ndarray:
        return skeleton(self.ds.keypoints(self.index[pid].target), tuple(self.ds.size))

    def sample(self, k: int, pid: str) -> np.ndarray:
        from fpdm_bench.images import read_image, to_uint8

        return to_uint8(read_image(self.run_dirs[k] / "samples" / f"{pid}.png")[None])[0]

    def sample_path(self, k: int, pid: str) -> Path:
        return self.run_dirs[k] / "samples" / f"{pid}.png"


def cell_size(native: tuple[int, int], height: int | None) -> tuple[int, int]:
    """(H, W) of a grid cell: the native size, or scaled to ``height`` px keeping the aspect."""
    h, w = int(native[0]), int(native[1])
    if not height or height == h:
        return h, w
    return int(height), max(1, int(round(w * height / h)))


def save_png(img: Image.Image, path: Path, dpi: int = 300) -> None:
    """An 8-bit PNG tagged with ``dpi`` (what a paper's layout reads its print size from), optimised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, dpi=(dpi, dpi), optimize=True)


def write_report_grid(labels: list[str], results, run_dirs, root: Path, pairs: list[str] | None = None,
                      rows: int = 6, cell_height: int | None = None, skip=("oracle", "copy-source")):
    """The report's grid: source | target pose | ground truth | one column per run (runs whose model is
    in ``skip`` are left out: oracle's column is the ground truth, copy-source's the source).
    Writes grid.png (300 dpi tag) and grid.csv (the pair, the images and each run's per-sample
    metrics); returns an Artefact."""
    from fpdm_bench.io import write_csv
    from fpdm_bench.reporting._common import Artefact
    from fpdm_bench.rundir import read_records

    out = Path(root) / "figures"
    src = GridSource(results, run_dirs)
    chosen = src.choose(pairs, rows)
    keep = [k for k, r in enumerate(results) if r.model not in skip] or list(range(len(results)))
    cell = cell_size(tuple(src.sample(keep[0], chosen[0]).shape[:2]), cell_height)
    header = max(16, cell[0] // 6)
    columns = [("source", [src.source(p) for p in chosen]), ("target pose", [src.pose(p) for p in chosen]),
               ("ground truth", [src.target(p) for p in chosen])]
    columns += [(labels[k], [src.sample(k, p) for p in chosen]) for k in keep]
    img = make_grid(columns, cell, header=header, font_size=max(9, header - 5))
    save_png(img, out / "grid.png")
    records = {k: read_records(src.run_dirs[k]) for k in keep}
    data = []
    for r, p in enumerate(chosen):
        rec = src.index[p]
        base = {"row": r, "pair_id": p, "source": rec.source, "target": rec.target}
        for k in keep:
            m = records[k].get(p, {}).get("metrics", {})
            data.append({**base, "column": labels[k], "sample": str(src.sample_path(k, p)),
                         **{f"{key}": m.get(key) for key in sorted(m)}})
    metric_cols = sorted({c for d in data for c in d} - {"row", "pair_id", "source", "target", "column", "sample"})
    write_csv(out / "grid.csv", data, ["row", "pair_id", "source", "target", "column", "sample"] + metric_cols)
    how = "pairs given by --pairs" if pairs else f"{len(chosen)} pairs evenly spaced over the {len(src.order)} pairs"
    left = [results[k].model for k in range(len(results)) if k not in keep]
    caption = ("Columns: source | target pose (the target keypoints drawn) | ground truth | "
               + " | ".join(labels[k] for k in keep) + f". Rows: {how} (deterministic). Cells {cell[1]}×{cell[0]} px"
               + (" (downscaled)" if cell_height else "") + "."
               + (f" Not shown: {', '.join(left)} (its column would repeat the "
                  + ("ground truth / source" if len(left) > 1 else
                     "ground truth" if left[0] == "oracle" else "source") + ")." if left else ""))
    return Artefact("grid", "grid", f"{len(chosen)} test pairs, {len(keep)} models", caption=caption,
                    files={"png": "figures/grid.png", "csv": "figures/grid.csv"}, png_size=img.size,
                    meta={"pairs": chosen, "columns": [c[0] for c in columns], "cell": list(cell), "header": header})
