"""The pair dataset every model is run on.

A dataset is a list of (pair_id, source name, target name) plus per-image keypoints and a way to
find each image file. Images come back as float tensors [3, H, W] in [0, 1] at ``size`` (the
dataset's evaluation size unless asked otherwise), keypoints as [K, 2] (x, y) in that frame.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fpdm_bench.data import keypoints as kpt
from fpdm_bench.errors import DataError
from fpdm_bench.images import IMAGE_SUFFIXES, read_image

@dataclass(frozen=True)
class PairRecord:
    pair_id: str
    source: str  # image key (file name as the annotation names it)
    target: str
    # A dataset of video frames declares the target's video and its position in it (frame order), so
    # the sequence metrics can group pairs into videos (fpdm_bench.sequences); None: not a video frame.
    # Not part of pairs_sha256 (the pairs are the same pairs whether or not they are grouped).
    sequence: str | None = None
    frame: int | None = None


def pair_id_for(source: str, target: str) -> str:
    """GFLA/PATN naming: '<source stem>_2_<target stem>' (their output files add '_vis.png')."""
    return f"{Path(source).stem}_2_{Path(target).stem}"


def pairs_sha256(pairs) -> str:
    """Hash of an ordered (pair id, source, target) list: two runs on the same pairs agree."""
    h = hashlib.sha256()
    for r in pairs:
        h.update(f"{r.pair_id}\t{r.source}\t{r.target}\n".encode())
    return h.hexdigest()


def index_images(folder: Path) -> dict[str, Path]:
    """Map file name -> path for every image below folder (first one wins, sorted for determinism)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            out.setdefault(p.name, p)
    return out


@dataclass
class PairDataset(torch.utils.data.Dataset):
    """Base class. Subclasses fill ``pairs``, ``_keypoints`` (name -> [K,2] in annotation frame) and
    implement ``image_path``."""

    name: str
    root: Path
    split: str
    native_size: tuple[int, int]  # (H, W) of the evaluation frame the annotations live in
    size: tuple[int, int] | None = None  # (H, W) images are returned at; None = native_size
    keypoint_format: str = "coco18"
    fid_reference_split: str = "train"
    pairs: list[PairRecord] = field(default_factory=list)
    _keypoints: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    annotation_size: tuple[int, int] | None = None  # frame of the stored keypoints; None = native
    skipped: list[dict] = field(default_factory=list)  # pairs dropped by --skip-bad, with reasons
    convert: bool = False  # convert non-RGB image files instead of refusing them (see fpdm_bench.images)
    # Every problem skip_bad found, once each (one malformed row can drop many pairs), including those
    # that drop no pair (a malformed annotation row of an image no pair uses): `data check` lists these.
    problems: list[DataError] = field(default_factory=list, repr=False)
    _problem_ids: set[int] = field(default_factory=set, repr=False)  # id() of each of ``problems``

    def __post_init__(self):
        self.root = Path(self.root)
        if self.size is None:
            self.size = tuple(self.native_size)

    # --- to implement -------------------------------------------------------------------------
    def image_path(self, name: str) -> Path:
        raise NotImplementedError

    def reference_images(self, split: str | None = None) -> list[Path]:
        """Image files of the FID reference set (default: ``fid_reference_split``)."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.pairs)

    def keypoints(self, name: str) -> np.ndarray:
        kp = self._keypoints[name]
        return kpt.rescale(kp, self.annotation_size or self.native_size, self.size)

    def load_image(self, name: str) -> torch.Tensor:
        return read_image(self.image_path(name), self.size, self.convert)

    def __getitem__(self, i: int) -> dict:
        rec = self.pairs[i]
        return {
            "pair_id": rec.pair_id,
            "source_name": rec.source,
            "target_name": rec.target,
            "source": self.load_image(rec.source),
            "target": self.load_image(rec.target),
            "source_kp": torch.from_numpy(self.keypoints(rec.source)),
            "target_kp": torch.from_numpy(self.keypoints(rec.target)),
        }

    def pairs_sha256(self) -> str:
        return pairs_sha256(self.pairs)

    def skip(self, pair_id: str | None, problem: DataError) -> None:
        """Record a pair dropped by skip_bad (``pair_id`` None: a row that never became a pair) and
        its problem; a problem shared by several pairs (the same DataError object) is recorded once."""
        self.skipped.append({"pair_id": pair_id, "reason": str(problem)})
        self.note_problem(problem)

    def note_problem(self, problem: DataError) -> None:
        """Record a problem skip_bad found that drops no pair (see ``problems``)."""
        if id(problem) not in self._problem_ids:  # identity: equal texts from two files stay two problems
            self._problem_ids.add(id(problem))
            self.problems.append(problem)

    def check_pairs(self, pairs_file: Path, skip_bad: bool = False) -> None:
        """Every pair must name images that have keypoints and exist on disk.

        Raises one DataError naming the pairs file (or the image) unless skip_bad, in which case the
        pair is dropped and recorded in ``skipped``.
        """
        # image -> its problem (None: fine), looked up once: an image named by six pairs is one problem
        status: dict[str, DataError | None] = {}
        kept = []
        for r in self.pairs:
            problem = None
            for name in (r.source, r.target):
                if name not in status:
                    status[name] = self._image_problem(name, pairs_file, r.pair_id)
                problem = status[name]
                if problem:
                    break
            if problem is None:
                kept.append(r)
            elif skip_bad:
                self.skip(r.pair_id, problem)
            else:
                raise problem
        self.pairs = kept

    def _image_problem(self, name: str, pairs_file: Path, pair_id: str) -> DataError | None:
        """Why image ``name`` (first named by pair ``pair_id``) cannot be used; None if it can."""
        if name not in self._keypoints:
            return DataError(pairs_file, f"image {name!r}, first named by pair {pair_id}, has no keypoint annotation")
        try:
            p = self.image_path(name)
        except DataError as e:
            return e
        if not p.is_file():
            return DataError(p, f"image file not found (named by {pairs_file.name}, first by pair {pair_id})")
        return None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "root": str(self.root),
            "split": self.split,
            "n_pairs": len(self.pairs),
            "pairs_sha256": self.pairs_sha256(),
            "native_size": list(self.native_size),
            "size": list(self.size),
            "keypoint_format": self.keypoint_format,
            "fid_reference_split": self.fid_reference_split,
            "skipped": len(self.skipped),
        }


def collate(samples: list[dict]) -> dict:
    """Stack a list of samples into a batch; names and ids stay lists."""
    out = {}
    for k in samples[0]:
        v = [s[k] for s in samples]
        out[k] = torch.stack(v) if isinstance(v[0], torch.Tensor) else v
    return out


def read_json(path: Path, what: str = "file"):
    """Parse a JSON file; a missing or invalid file is a DataError naming it."""
    import json

    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, f"not valid JSON ({e})") from None
