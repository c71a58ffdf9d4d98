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


PAD = 4  # px kept clear on each side of a column title: titles of neighbouring columns never touch
MIN_FONT = 7


def _fit(draw, text: str, width: int, font) -> str:
    """``text`` cut (with "…" where the font has it) to fit ``width`` px."""
    if draw.textlength(text, font=font) <= width:
        return text
    mark = "…" if font is not None else "."
    while text and draw.textlength(text + mark, font=font) > width:
        text = text[:-1]
    return (text + mark) if text else ""


def _wrap(draw, title: str, width: int, font, max_lines: int = 2) -> list[str] | None:
    """``title`` broken at spaces (else also after hyphens) into at most ``max_lines`` lines of
    ``width`` px; None if it does not fit so."""
    import re

    for pattern in (r"\s+", r"(?<=-)|\s+"):
        lines = _wrap_words([w for w in re.split(pattern, title) if w], draw, width, font)
        if lines is not None and len(lines) <= max_lines:
            return lines
    return None


def _wrap_words(words: list[str], draw, width: int, font) -> list[str] | None:
    lines: list[str] = []
    for word in words:
        if lines and draw.textlength(lines[-1] + ("" if lines[-1].endswith("-") else " ") + word, font=font) <= width:
            lines[-1] += ("" if lines[-1].endswith("-") else " ") + word
        else:
            if draw.textlength(word, font=font) > width:
                return None
            lines.append(word)
    return lines


def header_layout(titles: list[str], widths: list[int], font_size: int, min_header: int = 0):
    """One font size for every column title and each title's lines, so that no title is wider than
    its column less ``PAD`` on each side: the largest size ≥ 0.8 × ``font_size`` at which every title
    fits on one line, else on two, else on three lines (broken at spaces, then after hyphens); else
    the same down to ``MIN_FONT``; else ``MIN_FONT`` with the titles that still do not fit cut ("…"). Returns (font, size, lines per title, header height in px)."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    fonts = {s: ImageFont.load_default(size=s) for s in range(MIN_FONT, max(MIN_FONT, font_size) + 1)}
    room = [max(1, w - 2 * PAD) for w in widths]
    sizes = sorted(fonts, reverse=True)
    floor = max(MIN_FONT, round(0.8 * font_size))
    chosen = None
    # one line, then two, then three, at a size near font_size; then smaller sizes
    for max_lines, smallest in ((1, floor), (2, floor), (3, floor), (2, MIN_FONT), (3, MIN_FONT)):
        for s in (x for x in sizes if x >= smallest):
            wrapped = [_wrap(draw, t, r, fonts[s], max_lines) for t, r in zip(titles, room)]
            if all(w is not None for w in wrapped):
                chosen = (s, wrapped)
                break
        if chosen:
            break
    if chosen is None:  # a word wider than its column even at the smallest size: cut it
        s = MIN_FONT
        chosen = (s, [_wrap(draw, t, r, fonts[s], 3) or [_fit(draw, t, r, fonts[s])] for t, r in zip(titles, room)])
    s, lines = chosen
    n = max(len(ls) for ls in lines)
    height = max(min_header, n * line_height(fonts[s]) + 4)
    return fonts[s], s, lines, height


def line_height(font) -> int:
    """px from one line of ``font`` to the next: its ascent plus descent (what a drawn line spans)."""
    ascent, descent = font.getmetrics()
    return ascent + descent


def make_grid(columns: list[tuple[str, list[np.ndarray]]], cell: tuple[int, int], header: int = HEADER,
              font_size: int | None = None, widths: list[int] | None = None, boxes: list | None = None) -> Image.Image:
    """columns: (title, one HxWx3 uint8 image per row), every image resized to ``cell`` (H, W) (or to
    ``widths[c]`` wide). ``font_size``: titles in PIL's scalable default font of that size at most,
    made smaller or wrapped onto two lines so that none is wider than its column (the header grows
    to hold them; see ``header_layout``); None: the default font on one ``header`` px line, titles cut
    to their column. ``boxes``: if a list, gets (column, (x0, y0, x1, y1)) of every title drawn."""
    h, w = cell
    widths = list(widths) if widths else [w] * len(columns)
    n_rows = len(columns[0][1])
    titles = [t for t, _ in columns]
    if font_size:
        font, _, lines, header = header_layout(titles, widths, font_size, header)
    else:
        font, lines = None, None
    out = Image.new("RGB", (sum(widths), header + h * n_rows), "white")
    draw = ImageDraw.Draw(out)
    x0 = 0
    for c, (title, images) in enumerate(columns):
        cw = widths[c]
        if font is None:
            text = _fit(draw, title, cw - 2 * PAD, None)
            xy = (x0 + PAD, 3)
            draw.text(xy, text, fill="black")
            if boxes is not None and text:
                boxes.append((c, draw.textbbox(xy, text)))
        else:
            lh = line_height(font)
            y = (header - len(lines[c]) * lh) // 2
            for text in lines[c]:
                tw = draw.textlength(text, font=font)
                xy = (x0 + (cw - tw) / 2, y)
                draw.text(xy, text, fill="black", font=font)
                if boxes is not None:
                    boxes.append((c, draw.textbbox(xy, text, font=font)))
                y += lh
        for r, arr in enumerate(images):
            im = Image.fromarray(arr)
            if im.size != (cw, h):
                im = im.resize((cw, h), Image.BICUBIC)
            out.paste(im, (x0, header + r * h))
        x0 += cw
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
                      rows: int = 6, cell_height: int | None = None, skip=None):
    """The report's grid: source | target pose | ground truth | one column per run. Runs whose model
    repeats one of the first columns are left out: those in ``skip``, or with ``skip=None`` those whose
    adapter says ``in_grid = False``: a model whose images are the ground truth (the oracle) or the
    source; ``ModelAdapter.repeats`` names that column for the caption.
    Writes grid.png (300 dpi tag) and grid.csv (the pair, the images and each run's per-sample
    metrics); returns an Artefact."""
    from fpdm_bench.io import write_csv
    from fpdm_bench.reporting._common import Artefact
    from fpdm_bench.rundir import read_records

    out = Path(root) / "figures"
    src = GridSource(results, run_dirs)
    chosen = src.choose(pairs, rows)
    from fpdm_bench.models import model_fact

    def shown(model: str) -> bool:
        return model not in skip if skip is not None else model_fact(model, "in_grid", True) is not False

    keep = [k for k, r in enumerate(results) if shown(r.model)] or list(range(len(results)))
    cell = cell_size(tuple(src.sample(keep[0], chosen[0]).shape[:2]), cell_height)
    header = max(16, cell[0] // 6)
    columns = [("source", [src.source(p) for p in chosen]), ("target pose", [src.pose(p) for p in chosen]),
               ("ground truth", [src.target(p) for p in chosen])]
    columns += [(labels[k], [src.sample(k, p) for p in chosen]) for k in keep]
    img = make_grid(columns, cell, header=header, font_size=max(9, header - 5))
    header = img.height - cell[0] * len(chosen)  # grown if the titles needed two lines
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
                  + " / ".join(sorted({model_fact(m, "repeats", None) or "another column" for m in left}))
                  + ")." if left else ""))
    return Artefact("grid", "grid", f"{len(chosen)} test pairs, {len(keep)} models", caption=caption,
                    files={"png": "figures/grid.png", "csv": "figures/grid.csv"}, png_size=img.size,
                    meta={"pairs": chosen, "columns": [c[0] for c in columns], "cell": list(cell), "header": header})
