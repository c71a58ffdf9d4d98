"""DeepFashion In-shop loaders: the PIDM/CFLD/GFLA CSV layout and FPDM's json + pose-txt layout.

CSV layout (as PIDM, CFLD, GFLA and PATN distribute it)::

    root/fasion-resize-annotation-{split}.csv   name:keypoints_y:keypoints_x
                                                 fashionWOMENDressesid0000262902_3back.jpg: [ys]: [xs]
    root/fasion-resize-pairs-{split}.csv         ,from,to  (pandas index column) or from,to
    root/<anything>/<image files>                flat names (img/, test/, test_highres/, train_256x176/ ...)
                                                 or the original nested img/WOMEN/Dresses/id_00002629/02_3_back.jpg

Keypoints are 18 COCO-18/OpenPose points in the 256x176 (H x W) frame of the resized images, -1 for
a missing point. Repos that work at 256x256 pad the image by 40 px on each side and shift x by +40;
that pad is recorded in ``describe()`` but not applied: poses come back in the frame of the image.

FPDM layout (github.com/dhlee-work/FPDM, ``dataset/deepfashion_samples``)::

    root/{split}_pairs_data.json   [{"source_image": "./img/MEN/.../01_1_front.jpg", "target_image": ...}, ...]
    root/img/<nested In-shop path>.jpg
    root/pose/<same path>.txt      18 lines "x y" (floats), -1 -1 = missing, x in the 40-px padded
                                    256-wide frame (FPDM subtracts 40 and scales by 1/176), y in 256 rows
    root/pose_img/...              FPDM's pre-drawn skeletons (not used here)

Both layouts give the same image keys (the flat GFLA file name), so the same pairs give the same pair
ids and the same ``pairs_sha256`` whichever layout they were read from.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpdm_bench.data import keypoints as kpt
from fpdm_bench.data.base import IMAGE_SUFFIXES, PairDataset, PairRecord, pair_id_for, read_json
from fpdm_bench.errors import DataError

ANNOTATION_HEADER = ["name", "keypoints_y", "keypoints_x"]
N_POINTS = 18
# Folders that hold pose drawings or model outputs under the same names as the photos; indexing them
# would let a skeleton image stand in for a photo.
_NOT_PHOTOS = ("pose", "samples", "generated")


def annotation_file(root: Path, split: str) -> Path:
    return Path(root) / f"fasion-resize-annotation-{split}.csv"


def pairs_file(root: Path, split: str) -> Path:
    return Path(root) / f"fasion-resize-pairs-{split}.csv"


def flat_name(path: str | Path) -> str | None:
    """Nested In-shop path -> the flat file name PATN/GFLA/PIDM/CFLD use; None if not nested.

    ``.../img/WOMEN/Blouses_Shirts/id_00006350/04_1_front.jpg`` -> ``fashionWOMENBlouses_Shirtsid0000635004_1front.jpg``:
    'fashion' + gender + category (underscores kept) + id without its underscore + the view number,
    its underscore, and the rest of the file name without underscores.
    """
    parts = Path(path).parts
    if len(parts) < 4:
        return None
    gender, category, ident, fname = parts[-4:]
    if gender not in ("MEN", "WOMEN") or not ident.startswith("id_"):
        return None
    head, sep, rest = fname.partition("_")
    if not sep or not rest:
        return None
    return f"fashion{gender}{category}{ident.replace('_', '')}{head}_{rest.replace('_', '')}"


# flat_name's output: 'fashion' + gender + category + 'id' + the 8 id digits + the 2-digit item number + '_'
# + the view number + the view word (underscores dropped) + suffix.
_FLAT = re.compile(r"^fashion(MEN|WOMEN)([A-Za-z_]+?)id(\d{8})(\d+)_(\d+)(.*)$")


def nested_path(flat: str) -> str | None:
    """The inverse of ``flat_name`` for In-shop names: ``fashionWOMENBlouses_Shirtsid0000635004_1front.jpg``
    -> ``WOMEN/Blouses_Shirts/id_00006350/04_1_front.jpg`` (the path below ``img/``); None for other names.

    Exact for the In-shop file names (``NN_V_view.jpg``: item, view number, one view word), the only
    underscores flat_name drops there being the id's and the one before the view word."""
    m = _FLAT.match(Path(flat).name)
    if not m:
        return None
    gender, category, ident, item, view, rest = m.groups()
    sep = "_" if rest[:1].isalpha() else ""
    return f"{gender}/{category}/id_{ident}/{item}_{view}{sep}{rest}"


def index_deepfashion_images(folder: Path) -> tuple[dict[str, Path], int]:
    """Map flat image name -> file for every photo below ``folder``.

    Flat files are keyed by their own name, nested In-shop files by ``flat_name``. When a name occurs
    more than once (e.g. ``img/`` originals and a resized ``test/`` copy) the first path in sorted
    order wins; the second value returned counts such names so ``describe()`` can report them.
    """
    folder = Path(folder)
    out: dict[str, Path] = {}
    dupes = 0
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        rel = p.relative_to(folder).parts[:-1]
        if any(part.lower().startswith(_NOT_PHOTOS) for part in rel):
            continue
        key = flat_name(p) or p.name
        if key in out:
            dupes += 1
        else:
            out[key] = p
    return out, dupes


# --- file parsers -------------------------------------------------------------------------------

def read_utf8(path: Path) -> str:
    """A text file's content. Not UTF-8 (say a Latin-1 image name in a CSV) is a DataError naming the
    file and line, where open() would raise a UnicodeDecodeError that names neither."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DataError(path, f"line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as UTF-8") from None


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{what} is not a list of integers: {text[:60]!r}") from None
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{what} is not a list of integers: {text[:60]!r}")
    if len(values) != N_POINTS:
        raise ValueError(f"{what} has {len(values)} values, expected {N_POINTS}")
    return values


def read_annotations(path: Path, bad_rows: dict[str, DataError] | None = None) -> dict[str, np.ndarray]:
    """Parse a ``fasion-resize-annotation-*.csv`` into name -> [18, 2] (x, y), NaN for missing.

    A malformed row raises a DataError naming the file and the line; if ``bad_rows`` is given the
    row's DataError is stored there under the image name instead (for ``skip_bad``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "annotation file not found")
    out: dict[str, np.ndarray] = {}
    with io.StringIO(read_utf8(path), newline=None) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            fields = [s.strip() for s in line.split(":")]
            if lineno == 1 and fields[0] == "name":
                if fields != ANNOTATION_HEADER:
                    raise DataError(path, f"line 1: header should be {':'.join(ANNOTATION_HEADER)!r}, got {line!r}")
                continue
            try:
                if len(fields) != 3:
                    raise ValueError(f"expected 3 ':'-separated fields (name:keypoints_y:keypoints_x), got {len(fields)}")
                name = fields[0]
                if not name:
                    raise ValueError("empty image name")
                ys = _int_list(fields[1], "keypoints_y")
                xs = _int_list(fields[2], "keypoints_x")
            except ValueError as e:
                err = DataError(path, f"line {lineno}: {e}")
                if bad_rows is None:
                    raise err from None
                bad_rows[fields[0] or f"<line {lineno}>"] = err
                continue
            out.setdefault(name, kpt.from_file_values(ys, xs))
    return out


def read_pairs_csv(path: Path, problems: list[DataError] | None = None) -> list[tuple[int, str, str]]:
    """Parse a ``fasion-resize-pairs-*.csv`` (``,from,to`` or ``from,to``) into (line, from, to).

    A malformed row raises a DataError naming the file and line, or is appended to ``problems``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "pairs file not found")
    with io.StringIO(read_utf8(path), newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DataError(path, "empty pairs file")
    header = [h.strip() for h in rows[0]]
    if "from" not in header or "to" not in header:
        raise DataError(path, f"line 1: header must name 'from' and 'to' columns, got {rows[0]!r}")
    i_from, i_to = header.index("from"), header.index("to")
    out = []
    for lineno, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        src = row[i_from].strip() if len(row) == len(header) else ""
        tgt = row[i_to].strip() if len(row) == len(header) else ""
        if not src or not tgt:
            err = DataError(path, f"line {lineno}: expected {len(header)} fields with non-empty 'from' and 'to', got {row!r}")
            if problems is None:
                raise err
            problems.append(err)
            continue
        out.append((lineno, src, tgt))
    return out


def read_pose_txt(path: Path, n_points: int = N_POINTS, missing_values: tuple[float, ...] = (-1.0,)) -> np.ndarray:
    """Read an FPDM pose file (one ``x y [score]`` line per point) -> [n, 2] float32, NaN for missing.

    A point is missing when its x or y equals one of ``missing_values`` (FPDM: -1 for DeepFashion,
    0 for its sign-language poses). Extra columns (scores) are ignored, as FPDM does.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "pose file not found")
    rows = []
    with io.StringIO(read_utf8(path), newline=None) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                if len(parts) < 2:
                    raise ValueError
                rows.append((float(parts[0]), float(parts[1])))
            except ValueError:
                raise DataError(path, f"line {lineno}: expected 'x y' numbers, got {line.strip()[:60]!r}") from None
    if len(rows) != n_points:
        raise DataError(path, f"{len(rows)} points, expected {n_points}")
    kp = np.asarray(rows, np.float32)
    miss = np.isin(kp, np.asarray(missing_values, np.float32)).any(axis=1)
    kp[miss] = np.nan
    return kp


def read_fpdm_pairs(path: Path, problems: list[DataError] | None = None) -> list[tuple[int, str, str]]:
    """Parse FPDM's ``{split}_pairs_data.json`` -> (entry index, source rel path, target rel path).

    A malformed entry raises a DataError naming the file and entry, or is appended to ``problems``.
    """
    path = Path(path)
    data = read_json(path, "pairs file")
    if not isinstance(data, list):
        raise DataError(path, "expected a JSON list of {source_image, target_image} entries")
    out = []
    for i, entry in enumerate(data):
        if not (isinstance(entry, dict) and isinstance(entry.get("source_image"), str)
                and isinstance(entry.get("target_image"), str)):
            err = DataError(path, f"entry {i}: expected {{'source_image': str, 'target_image': str}}, got {str(entry)[:80]}")
            if problems is None:
                raise err
            problems.append(err)
            continue
        out.append((i, _clean_rel(entry["source_image"]), _clean_rel(entry["target_image"])))
    return out


def _clean_rel(p: str) -> str:
    """'./img/a/b.jpg' -> 'img/a/b.jpg' (posix, no leading './')."""
    return Path(p).as_posix().lstrip("/").removeprefix("./")


def pose_path_for(root: Path, rel_image: str) -> Path:
    """FPDM's rule: the pose file mirrors the image path with 'img' -> 'pose' and a .txt suffix."""
    parts = list(Path(rel_image).parts)
    if "img" not in parts:
        raise DataError(Path(root) / rel_image, "image path has no 'img' folder, so its pose file cannot be located")
    parts[parts.index("img")] = "pose"
    return Path(root).joinpath(*parts).with_suffix(".txt")


# --- the dataset --------------------------------------------------------------------------------

@dataclass
class DeepFashionDataset(PairDataset):
    """DeepFashion pairs from either layout; image keys are the flat GFLA file names."""

    layout: str = "csv"
    image_index: dict[str, Path] = field(default_factory=dict, repr=False)
    duplicate_names: int = 0
    files: dict[str, str] = field(default_factory=dict)  # role -> file the dataset was read from

    def image_path(self, name: str) -> Path:
        # An unknown name returns where a flat file would be expected, so check_pairs and load_rgb
        # report a path the user recognises.
        return self.image_index.get(name, self.root / name)

    def reference_images(self, split: str | None = None) -> list[Path]:
        """The photos of ``split`` (default ``fid_reference_split``): every image its annotation
        file (CSV layout) or pairs json (FPDM layout) names, in file order."""
        split = split or self.fid_reference_split
        if split == "train-list":  # CFLD's train_highres: every image named in the root's train.lst
            source = self.root / "train.lst"
            if not source.is_file():
                raise DataError(source, "not found (the train-list reference names the images of train.lst)")
            paths = [self.image_path(flat_name(n) or Path(n).name) for n in source.read_text().split() if n.strip()]
        elif self.layout == "csv":
            source = annotation_file(self.root, split)
            names = list(read_annotations(source))
            paths = [self.image_path(n) for n in names]
        else:
            source = self.root / f"{split}_pairs_data.json"
            rels = dict.fromkeys(r for _, s, t in read_fpdm_pairs(source) for r in (s, t))
            paths = [self.root / r for r in rels]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataError(source, f"{len(missing)} of the {len(paths)} reference images it names have no file, e.g. {missing[0]}")
        return paths

    def describe(self) -> dict:
        d = super().describe()
        d.update({
            "layout": self.layout,
            "keypoints": {
                "order": "coco18 (OpenPose)",
                "annotation_frame_hw": list(kpt.DEEPFASHION_ANNOTATION_SIZE),
                "returned_frame_hw": list(self.size),
                "file_missing_value": -1,
                # Not applied here; models that work at 256x256 add it themselves.
                "pad_x_for_256x256": kpt.DEEPFASHION_PAD_X,
            },
            "duplicate_image_names": self.duplicate_names,
            "files": dict(self.files),
        })
        synth = self.root / "synth.json"
        if synth.is_file():
            try:
                d["generator"] = json.loads(synth.read_text())
            except json.JSONDecodeError:
                d["generator"] = f"unreadable {synth}"
        return d


def _unique_pairs(ds: PairDataset, candidates, where: Path, skip_bad: bool) -> list[PairRecord]:
    """(line, key_from, key_to) -> PairRecords; a repeated pair id is an error (or skipped)."""
    seen: dict[str, int] = {}
    out = []
    for line, src, tgt in candidates:
        rec = PairRecord(pair_id_for(src, tgt), src, tgt)
        if rec.pair_id in seen:
            err = DataError(where, f"{line}: pair {rec.pair_id} repeats {seen[rec.pair_id]} (pair ids name output files, so they must be unique)")
            if not skip_bad:
                raise err
            ds.skip(rec.pair_id, err)
            continue
        seen[rec.pair_id] = line
        out.append(rec)
    return out


def _drop_bad_annotations(ds: PairDataset, bad_rows: dict[str, DataError]) -> None:
    """With skip_bad, pairs that use an image whose annotation row was malformed are dropped with that reason."""
    if not bad_rows:
        return
    kept = []
    for r in ds.pairs:
        reason = bad_rows.get(r.source) or bad_rows.get(r.target)
        if reason:
            ds.skip(r.pair_id, reason)
        else:
            kept.append(r)
    ds.pairs = kept
    for err in bad_rows.values():  # rows of images no pair uses drop nothing, but a run without skip_bad stops on them
        ds.note_problem(err)


def open_deepfashion(root: Path, split: str = "test", size: tuple[int, int] | None = None,
                     skip_bad: bool = False, fid_reference_split: str = "train",
                     image_dir: Path | None = None) -> DeepFashionDataset:
    """Open DeepFashion in the PIDM/CFLD/GFLA CSV layout.

    Images are found by flat name anywhere below ``image_dir`` (default ``root``), nested In-shop
    originals included. ``size`` (H, W) defaults to the 256x176 annotation frame; keypoints are
    rescaled to it. ``fid_reference_split`` defaults to "train" (PIDM and CFLD compute FID against
    the training images). ``skip_bad`` drops (and records in ``skipped``) pairs with a malformed
    pairs row, a malformed annotation row, a missing annotation or a missing image; missing
    annotation or pairs files always raise. Undecodable images are found when read (``ds[i]``).
    """
    root = Path(root)
    ann_file, pr_file = annotation_file(root, split), pairs_file(root, split)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    bad_rows: dict[str, DataError] | None = {} if skip_bad else None
    annotations = read_annotations(ann_file, bad_rows)
    row_problems: list[DataError] | None = [] if skip_bad else None
    rows = read_pairs_csv(pr_file, row_problems)
    index, dupes = index_deepfashion_images(Path(image_dir) if image_dir else root)

    ds = DeepFashionDataset(
        name="deepfashion", root=root, split=split, native_size=kpt.DEEPFASHION_ANNOTATION_SIZE,
        size=tuple(size) if size else None, keypoint_format="coco18",
        fid_reference_split=fid_reference_split, layout="csv", image_index=index, duplicate_names=dupes,
        files={"annotations": str(ann_file), "pairs": str(pr_file)},
    )
    ds._keypoints = annotations
    for err in row_problems or []:
        ds.skip(None, err)
    ds.pairs = _unique_pairs(ds, [(f"line {n}", a, b) for n, a, b in rows], pr_file, skip_bad)
    _drop_bad_annotations(ds, bad_rows or {})
    ds.check_pairs(pr_file, skip_bad=skip_bad)
    return ds


def open_fpdm_layout(root: Path, split: str = "test", size: tuple[int, int] | None = None,
                     skip_bad: bool = False, fid_reference_split: str = "train") -> DeepFashionDataset:
    """Open DeepFashion in FPDM's layout (``{split}_pairs_data.json`` + ``img/`` + ``pose/*.txt``).

    Pose files are read for every image the pairs name; their x is shifted back by FPDM's 40 px pad
    so poses live in the same 256x176 frame as the CSV layout. Image keys are the flat GFLA names.
    ``skip_bad`` drops pairs with a missing/malformed pose file or a missing image, and malformed entries.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    pairs_json = root / f"{split}_pairs_data.json"
    entry_problems: list[DataError] | None = [] if skip_bad else None
    entries = read_fpdm_pairs(pairs_json, entry_problems)

    ds = DeepFashionDataset(
        name="deepfashion-fpdm", root=root, split=split, native_size=kpt.DEEPFASHION_ANNOTATION_SIZE,
        size=tuple(size) if size else None, keypoint_format="coco18",
        fid_reference_split=fid_reference_split, layout="fpdm", files={"pairs": str(pairs_json)},
    )
    for err in entry_problems or []:
        ds.skip(None, err)
    bad: dict[str, DataError] = {}

    def key_for(rel: str) -> str:
        key = flat_name(rel) or Path(rel).name
        if key in ds.image_index or key in bad:
            return key
        ds.image_index[key] = root / rel
        try:
            kp = read_pose_txt(pose_path_for(root, rel))
        except DataError as e:
            if not skip_bad:
                raise
            bad[key] = e
            return key
        # FPDM's pose x is in the 256x256 padded frame: undo the +40 (missing stays NaN).
        kp[:, 0] -= kpt.DEEPFASHION_PAD_X
        ds._keypoints[key] = kp
        return key

    cands = [(f"entry {i}", key_for(s), key_for(t)) for i, s, t in entries]
    ds.pairs = _unique_pairs(ds, cands, pairs_json, skip_bad)
    _drop_bad_annotations(ds, bad)
    ds.check_pairs(pairs_json, skip_bad=skip_bad)
    return ds


def open_synthetic(root: Path, split: str = "test", size: tuple[int, int] | None = None,
                   skip_bad: bool = False) -> DeepFashionDataset:
    """The embedded synthetic people: generated into ``root`` on first use, then read as the CSV layout."""
    root = Path(root)
    if not any(annotation_file(root, s).is_file() for s in ("train", "test")):
        if root.exists() and any(root.iterdir()):  # never write the synthetic set into someone's data
            raise DataError(root, "exists but holds no synthetic set (no fasion-resize-annotation-*.csv); "
                                  "choose an empty --data-root or delete the folder")
        from fpdm_bench.data.synth import synthesize_deepfashion  # lazy: only needed to make the set

        synthesize_deepfashion(root)
    ds = open_deepfashion(root, split=split, size=size, skip_bad=skip_bad, fid_reference_split="train")
    ds.name = "synthetic"
    return ds
