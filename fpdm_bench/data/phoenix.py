"""RWTH-PHOENIX-Weather 2014T: sign-language video frames with whole-body keypoints.

Layout (the release's frame folders and corpus files, plus one keypoint file per video)::

    features/fullFrame-210x260px/{train,dev,test}/<video>/images0001.png ...   frames 260 high x 210 wide
    annotations/PHOENIX-2014-T.{split}.corpus.csv   name|video|start|end|speaker|orth|translation
    keypoints/{split}/<video>.json   {"format": "coco-wholebody-133", "size": [H, W],
                                      "frames": ["images0001.png", ...],
                                      "keypoints": [[[x, y, score] x 133] per frame]}
                                     (missing point: x = y = -1, or score 0)

Pairs follow FPDM's PHOENIX test: each video's first frame is the source for every frame of that
video, the first frame included (FPDM's README: 642 test videos give 64,627 pairs, the number of
test frames), so a video of F frames gives F pairs. FID reference: the test frames (FPDM's eval
script defaults to ``FID_real_dataset = 'test'``). Each pair declares its video (``sequence``) and
its target's place in it (``frame``: the index in the keypoint file's frame list; in FPDM's layout,
the rank of the file name in its folder), which the sequence metrics group by.

FPDM itself stores sign data differently (its ``A1.*`` scripts): ``{split}_pairs_data.json`` like
its DeepFashion layout, and one ``pose/<...>.txt`` per frame with 133 ``x y`` lines, 0 = missing, in
a 512x512 frame (``anno_width = anno_height = 512``, no offset). ``open_phoenix`` reads that layout
too when the folder has no ``annotations/`` but has the pairs json.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpdm_bench.data import keypoints as kpt
from fpdm_bench.data.base import PairDataset, PairRecord, read_json
from fpdm_bench.data.deepfashion import pose_path_for, read_fpdm_pairs, read_pose_txt, read_utf8
from fpdm_bench.errors import DataError

FRAME_DIR = "features/fullFrame-210x260px"
NATIVE = (260, 210)  # (H, W) of the released frames
N_KP = kpt.WHOLEBODY133
KEYPOINT_FORMAT = "coco-wholebody-133"
CORPUS_HEADER = ["name", "video", "start", "end", "speaker", "orth", "translation"]
FPDM_POSE_SIZE = (512, 512)  # frame of FPDM's sign pose txt files (A1.pose_data_preprocessing.py)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def corpus_file(root: Path, split: str) -> Path:
    return Path(root) / "annotations" / f"PHOENIX-2014-T.{split}.corpus.csv"


def frame_id(video: str, frame: str) -> str:
    """File-name-safe '<video>_<frame stem>' (pair ids become output file names)."""
    return _UNSAFE.sub("_", f"{video}_{Path(frame).stem}")


@dataclass
class Phoenix(PairDataset):
    """Image keys are '<video>/<frame file>' (PHOENIX layout) or the json's relative path (FPDM layout)."""

    layout: str = "phoenix"
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # key -> [133] confidences
    files: dict[str, str] = field(default_factory=dict)

    def image_path(self, name: str) -> Path:
        if self.layout == "fpdm":
            return self.root / name
        return self.root / FRAME_DIR / self.split / name

    def keypoint_scores(self, name: str) -> np.ndarray | None:
        """Detector confidence per point (None where the file has none)."""
        return self.scores.get(name)

    def reference_images(self, split: str | None = None) -> list[Path]:
        """Frames of the FID reference split: for this split, every frame the pairs use as target;
        for another split, every frame of the videos its corpus file lists."""
        split = split or self.fid_reference_split
        if split == self.split:
            return [self.image_path(n) for n in dict.fromkeys(r.target for r in self.pairs)]
        if self.layout == "fpdm":
            src = self.root / f"{split}_pairs_data.json"
            rels = dict.fromkeys(r for _, s, t in read_fpdm_pairs(src) for r in (s, t))
            return [self.root / r for r in rels]
        out = []
        for video in read_corpus(corpus_file(self.root, split)):
            folder = self.root / FRAME_DIR / split / video
            frames = sorted(folder.glob("images*.png"))
            if not frames:
                raise DataError(folder, f"no frames for video {video} (listed in {corpus_file(self.root, split).name})")
            out += frames
        return out

    def describe(self) -> dict:
        d = super().describe()
        d.update({
            "layout": self.layout,
            "keypoints": {
                "order": "COCO-WholeBody 133 (17 body, 6 feet, 68 face, 21 left hand, 21 right hand)",
                "annotation_frame_hw": list(self.annotation_size or self.native_size),
                "returned_frame_hw": list(self.size),
                "file_missing_value": "x = y = -1 or score 0" if self.layout == "phoenix" else "0 (FPDM)",
            },
            "pairs_rule": "each video's first frame x every frame of the video (first included), as FPDM",
            "files": dict(self.files),
        })
        return d


def read_corpus(path: Path, problems: list[DataError] | None = None) -> list[str]:
    """Video names from a ``PHOENIX-2014-T.{split}.corpus.csv`` ('|'-separated, header first).

    A malformed or repeated row raises a DataError naming the file and line, or is appended to ``problems``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "corpus file not found")
    lines = read_utf8(path).splitlines()
    if not lines or lines[0].strip().split("|")[0] != "name":
        raise DataError(path, f"line 1: expected the header {'|'.join(CORPUS_HEADER)!r}")
    n_fields = len(lines[0].split("|"))
    out: dict[str, int] = {}
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split("|")
        name = fields[0].strip()
        if len(fields) != n_fields or not name:
            err = DataError(path, f"line {lineno}: expected {n_fields} '|'-separated fields with a video name, got {len(fields)}")
        elif name in out:
            err = DataError(path, f"line {lineno}: video {name} repeats line {out[name]}")
        else:
            out[name] = lineno
            continue
        if problems is None:
            raise err
        problems.append(err)
    return list(out)


def read_video_keypoints(path: Path, native: tuple[int, int] = NATIVE) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read one video's keypoint json -> (frame names, [F, 133, 2] (x, y) NaN = missing, [F, 133] scores).

    Points are rescaled from the file's ``size`` to ``native`` (H, W). Any problem is a DataError
    naming the json file (and the frame, for per-frame problems).
    """
    path = Path(path)
    data = read_json(path, "keypoint file")
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object with format, size, frames, keypoints")
    if data.get("format") != KEYPOINT_FORMAT:
        raise DataError(path, f"format is {data.get('format')!r}, expected {KEYPOINT_FORMAT!r}")
    size, frames, kps = data.get("size"), data.get("frames"), data.get("keypoints")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise DataError(path, f"size must be [H, W] in pixels, got {size!r}")
    if not (isinstance(frames, list) and frames and all(isinstance(f, str) and f for f in frames)):
        raise DataError(path, "frames must be a non-empty list of frame file names")
    if len(set(frames)) != len(frames):
        raise DataError(path, "frames lists a file name twice")
    if not isinstance(kps, list) or len(kps) != len(frames):
        got = len(kps) if isinstance(kps, list) else type(kps).__name__
        raise DataError(path, f"keypoints has {got} entries for {len(frames)} frames")
    for i, fk in enumerate(kps):
        n = len(fk) if isinstance(fk, list) else None
        if n != N_KP:
            raise DataError(path, f"frame {i} ({frames[i]}): {n} points, expected {N_KP}")
        if not all(isinstance(p, list) and len(p) == 3 for p in fk):
            raise DataError(path, f"frame {i} ({frames[i]}): every point must be [x, y, score]")
    try:
        arr = np.asarray(kps, np.float64)
    except (TypeError, ValueError):
        raise DataError(path, "keypoints hold non-numeric values") from None
    xy = arr[..., :2].astype(np.float32)
    score = arr[..., 2].astype(np.float32)
    xy[(score <= 0) | (xy == -1).all(-1)] = np.nan
    xy = kpt.rescale(xy.reshape(-1, 2), tuple(size), native).reshape(xy.shape)
    return frames, xy, score


def _open_phoenix_layout(ds: Phoenix, skip_bad: bool) -> None:
    root, split = ds.root, ds.split
    corpus = corpus_file(root, split)
    kp_dir = root / "keypoints" / split
    ds.files = {"corpus": str(corpus), "keypoints": str(kp_dir)}
    seen: dict[str, str] = {}
    row_problems: list[DataError] | None = [] if skip_bad else None
    videos = read_corpus(corpus, row_problems)
    for err in row_problems or []:
        ds.skip(None, err)
    for video in videos:
        jpath = kp_dir / f"{video}.json"
        try:
            frames, xy, score = read_video_keypoints(jpath, ds.native_size)
            missing = [f for f in frames if not ds.image_path(f"{video}/{f}").is_file()]
            if frames[0] in missing:  # no source image: the whole video is unusable
                raise DataError(ds.image_path(f"{video}/{frames[0]}"), f"first frame not found (listed in {jpath})")
        except DataError as e:
            if not skip_bad:
                raise
            ds.skip(frame_id(video, "*"), e)
            continue
        if missing and not skip_bad:
            raise DataError(ds.image_path(f"{video}/{missing[0]}"), f"frame not found (listed in {jpath})")
        first = f"{video}/{frames[0]}"
        for index, (f, p, s) in enumerate(zip(frames, xy, score)):  # index: the frame's place in the video
            key = f"{video}/{f}"
            ds._keypoints[key], ds.scores[key] = p, s
            pid = f"{frame_id(video, frames[0])}_2_{frame_id(video, f)}"
            if f in missing:
                ds.skip(pid, DataError(ds.image_path(key), f"frame not found (listed in {jpath})"))
                continue
            if pid in seen:  # only possible when sanitising merged two names
                raise DataError(jpath, f"pair id {pid} is also produced by {seen[pid]}")
            seen[pid] = str(jpath)
            ds.pairs.append(PairRecord(pid, first, key, sequence=video, frame=index))


def _open_fpdm_layout(ds: Phoenix, skip_bad: bool, pose_size: tuple[int, int]) -> None:
    pairs_json = ds.root / f"{ds.split}_pairs_data.json"
    ds.files = {"pairs": str(pairs_json)}
    ds.annotation_size = tuple(pose_size)
    bad: dict[str, DataError] = {}
    seen: set[str] = set()
    entry_problems: list[DataError] | None = [] if skip_bad else None
    entries = read_fpdm_pairs(pairs_json, entry_problems)
    for err in entry_problems or []:
        ds.skip(None, err)
    place = frame_order(tgt for _, _, tgt in entries)
    for i, src, tgt in entries:
        for rel in (src, tgt):
            if rel in ds._keypoints or rel in bad:
                continue
            try:
                # FPDM's sign poses mark a missing point with 0 (its ProcessingSignKeypoints).
                ds._keypoints[rel] = read_pose_txt(pose_path_for(ds.root, rel), N_KP, missing_values=(0.0, -1.0))
            except DataError as e:
                if not skip_bad:
                    raise
                bad[rel] = e
        pid = f"{frame_id(Path(src).parent.name, src)}_2_{frame_id(Path(tgt).parent.name, tgt)}"
        if pid in seen:
            err = DataError(pairs_json, f"entry {i}: pair {pid} repeats an earlier entry")
            if not skip_bad:
                raise err
            ds.skip(pid, err)
            continue
        seen.add(pid)
        reason = bad.get(src) or bad.get(tgt)
        if reason:
            ds.skip(pid, reason)
            continue
        ds.pairs.append(PairRecord(pid, src, tgt, *place[tgt]))
    ds.check_pairs(pairs_json, skip_bad=skip_bad)


def frame_order(targets) -> dict[str, tuple[str, int]]:
    """FPDM's layout names no frame order: a target's video is its folder, and its place is its rank
    among the video's targets by file name, numbers compared as numbers (images0002 < images0010)."""
    by: dict[str, list[str]] = {}
    for t in dict.fromkeys(targets):
        by.setdefault(str(Path(t).parent), []).append(t)

    def natural(t):
        return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", Path(t).name)]

    return {t: (video, k) for video, ts in by.items() for k, t in enumerate(sorted(ts, key=natural))}


def open_phoenix(root: Path, split: str = "test", size: tuple[int, int] | None = None, skip_bad: bool = False,
                 fid_reference_split: str = "test", name: str = "phoenix",
                 fpdm_pose_size: tuple[int, int] = FPDM_POSE_SIZE) -> Phoenix:
    """Open PHOENIX-2014T (release layout, or FPDM's json + pose-txt layout when that is what ``root`` holds).

    Frames come back at ``size`` (H, W; default 260x210) with keypoints rescaled to it. ``skip_bad``
    drops (and records in ``skipped``) a video whose keypoint file is missing or malformed or whose
    first frame is missing, single pairs whose target frame is missing, and malformed corpus rows;
    a missing corpus file always raises.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, f"dataset folder not found (give --data-root for {name!r})")
    fpdm = not (root / "annotations").is_dir() and (root / f"{split}_pairs_data.json").is_file()
    ds = Phoenix(name=name, root=root, split=split, native_size=NATIVE, size=tuple(size) if size else None,
                 keypoint_format="wholebody133", fid_reference_split=fid_reference_split,
                 layout="fpdm" if fpdm else "phoenix")
    if fpdm:
        _open_fpdm_layout(ds, skip_bad, fpdm_pose_size)
    else:
        _open_phoenix_layout(ds, skip_bad)
    return ds


def open_synthetic(root: Path, split: str = "test", size: tuple[int, int] | None = None,
                   skip_bad: bool = False) -> Phoenix:
    """The embedded synthetic signer set; generated with the default parameters on first use."""
    root = Path(root)
    if not (root / "synth.json").is_file():
        if root.exists() and any(root.iterdir()):
            raise DataError(root, "exists but holds no synthetic set (synth.json missing); "
                                  "choose an empty --data-root or delete the folder")
        from fpdm_bench.data.synth import synthesize_phoenix  # lazy: only needed to make the set

        synthesize_phoenix(root)
    ds = open_phoenix(root, split, size, skip_bad, fid_reference_split="test", name="synthetic-phoenix")
    ds.files["generator"] = str(root / "synth.json")
    return ds
