"""What a run would read from a dataset folder, and every problem in it (`fpdm-bench data check`).

:func:`check_dataset` opens the dataset through the registry, as a run does, with ``skip_bad`` so
the opener collects its problems (``PairDataset.problems``) instead of stopping at the first; then it
reads every image's header (size, mode) and the last bytes of its file (a JPEG's end-of-image
marker, a PNG's IEND chunk: a file cut short lacks them) without decoding pixels, or decodes every
image with ``decode=True``. It writes nothing (an embedded synthetic set is made on first use, as a
run makes it) and returns a :class:`CheckReport`; the command only prints it.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fpdm_bench.data import default_root, open_dataset
from fpdm_bench.data.base import PairDataset
from fpdm_bench.data.deepfashion import DeepFashionDataset
from fpdm_bench.data.phoenix import NATIVE as PHOENIX_FRAME
from fpdm_bench.data.phoenix import Phoenix
from fpdm_bench.errors import DataError

# Independent records of the embedded sets' pairs at their default parameters: the committed runs of
# the shipped tiny checkpoints on the test splits (bench-paired.json) and their training records
# (train_info.json; docs/datasets.md quotes the prefixes). A set made with other parameters differs.
KNOWN_PAIRS_SHA256 = {
    ("synthetic", "test"): ("654a24fb08d073fec2cbd1eb609a70b89d6f69a8a4cf7ad8848782cea5a0a7bd",
                            "reference_impl/checkpoints/tiny/bench-paired.json"),
    ("synthetic", "train"): ("5270bba64ae3c4123a0ef68b138bfe3888601ed894abbc71458e33e13cea94b0",
                             "reference_impl/checkpoints/tiny/stage1/train_info.json"),
    ("synthetic-phoenix", "test"): ("8dd7f8fdd94955d219922f888d63283b0b6ceb1cdc2e75869597a1d84f5833bb",
                                    "reference_impl/checkpoints/tiny-phoenix/bench-paired.json"),
    ("synthetic-phoenix", "train"): ("65027d43fb50472173068d3355db136924c4b23f603b14ba8e3edab4005a57eb",
                                     "reference_impl/checkpoints/tiny-phoenix/stage1/train_info.json"),
}
# Published counts (no published list hash exists to compare with): the GFLA/PATN DeepFashion test
# list has 8,570 pairs; FPDM's README gives 642 PHOENIX-2014T test videos and 64,627 pairs.
DEEPFASHION_TEST_PAIRS = 8570
PHOENIX_TEST_VIDEOS, PHOENIX_TEST_PAIRS = 642, 64627
_TAIL = 1 << 16  # bytes read from a file's end to find its end marker
_LINE = re.compile(r"^line (\d+):")


@dataclass
class Problem:
    file: str
    message: str  # as the DataError says it, "line N: ..." first where there is a line
    line: int | None = None
    pairs_dropped: int = 0  # pairs --skip-bad drops for it (0: it drops none, or a run stops on it when reading)

    @classmethod
    def of(cls, err: DataError, pairs_dropped: int = 0) -> Problem:
        m = _LINE.match(err.problem)
        return cls(err.path, err.problem, int(m[1]) if m else None, pairs_dropped)

    def __str__(self) -> str:
        drops = f" [drops {self.pairs_dropped} pair{'s' * (self.pairs_dropped != 1)}]" if self.pairs_dropped > 1 else ""
        return f"{self.file}: {self.message}{drops}" if self.file else f"{self.message}{drops}"


@dataclass
class CheckReport:
    dataset: str
    split: str
    root: str
    layout: str | None = None
    n_pairs: int = 0  # pairs a run would use (with --skip-bad: after the problems below drop theirs)
    n_pairs_dropped: int = 0
    n_images: int = 0  # distinct images of those pairs
    keypoints: str = ""  # where their keypoints are read from
    keypoint_files: int | None = None  # for layouts with one keypoint file per image or video
    image_sizes: dict[str, int] = field(default_factory=dict)  # "WxH" (width x height) -> images
    expected_size: str | None = None
    expected_size_basis: str = ""
    pairs_sha256: str | None = None  # as results.json records it
    standard: str | None = None  # "yes" / "no" / None (nothing published to compare with)
    standard_basis: str = ""
    reference_split: str | None = None  # the FID reference set a run reads
    reference_images: int | None = None
    decoded: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "n_problems": len(self.problems)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def lines(self) -> list[str]:
        """The summary, then one line per problem."""
        sizes = ", ".join(f"{k}: {v}" for k, v in self.image_sizes.items()) or "none read"
        kp = f"{self.keypoint_files} {self.keypoints} files" if self.keypoint_files is not None else self.keypoints
        dropped = f" ({self.n_pairs_dropped} more dropped by the problems below)" if self.n_pairs_dropped else ""
        layout = f" ({self.layout} layout)" if self.layout else ""
        out = [f"dataset:        {self.dataset}, {self.split} split, {self.root}{layout}",
               f"pairs:          {self.n_pairs}{dropped}, pairs_sha256 {self.pairs_sha256}",
               f"standard split: {self.standard or 'no verdict'} ({self.standard_basis})",
               f"images:         {self.n_images} distinct; keypoints: {kp}",
               f"image sizes:    {sizes} (width x height)"
               + (f"; expected {self.expected_size} ({self.expected_size_basis})" if self.expected_size else ""),
               (f"FID reference:  {'?' if self.reference_images is None else self.reference_images} images "
                f"({self.reference_split} split)"),
               "checked:        " + ("every image decoded" if self.decoded else
                                     "image headers and file ends, pixels not decoded (--decode decodes every image)"),
               f"problems:       {len(self.problems) or 'none'}"]
        return out + [str(p) for p in self.problems]


def check_dataset(dataset: str, root: str | Path | None = None, split: str = "test", decode: bool = False,
                  convert: bool = False, progress: bool = False) -> CheckReport:
    """Check a registered dataset as a run would read it. ``convert``: non-RGB images are no problem
    (a run's --convert); ``progress``: a progress bar on stderr (when it is a terminal)."""
    try:
        ds = open_dataset(dataset, root, split, skip_bad=True)
    except DataError as e:  # problems even skip_bad cannot go past (no pairs file, no folder)
        return CheckReport(dataset, split, str(root or default_root(dataset)), problems=[Problem.of(e)],
                           standard_basis="not opened")
    dropped = Counter(s["reason"] for s in ds.skipped if s["pair_id"] is not None)
    report = CheckReport(dataset, split, str(ds.root), getattr(ds, "layout", None), n_pairs=len(ds.pairs),
                         n_pairs_dropped=sum(dropped.values()), pairs_sha256=ds.pairs_sha256(), decoded=decode,
                         problems=[Problem.of(e, dropped[str(e)]) for e in ds.problems])
    known = {str(e) for e in ds.problems}
    for reason in dict.fromkeys(s["reason"] for s in ds.skipped):
        if reason not in known:  # an opener that fills ``skipped`` itself: its reason names the file already
            report.problems.append(Problem("", reason, pairs_dropped=dropped[reason]))
    names = list(dict.fromkeys(n for r in ds.pairs for n in (r.source, r.target)))
    report.n_images = len(names)
    report.keypoints, report.keypoint_files = _keypoint_source(ds, names)
    report.standard, report.standard_basis = _standard_split(dataset, ds)
    report.reference_split = ds.fid_reference_split
    try:
        report.reference_images = len(ds.reference_images())
    except DataError as e:
        report.problems.append(Problem.of(e))
    except NotImplementedError:
        pass
    _check_images(ds, names, report, decode, convert, progress)
    return report


def _check_images(ds: PairDataset, names: list[str], report: CheckReport, decode: bool, convert: bool,
                  progress: bool) -> None:
    from tqdm.auto import tqdm

    sizes: dict[str, tuple[int, int]] = {}
    bar = tqdm(names, desc="decoding" if decode else "headers", unit="img", file=sys.stderr,
               disable=None if progress else True)
    for name in bar:
        path = ds.image_path(name)
        try:
            sizes[name] = inspect_image(path, decode, convert)
        except DataError as e:
            report.problems.append(Problem.of(e))
    counts = Counter(f"{w}x{h}" for w, h in sizes.values())
    report.image_sizes = dict(counts.most_common())
    want, report.expected_size_basis = _expected_size(ds, counts)
    report.expected_size = want
    for name, (w, h) in sizes.items():
        if want and f"{w}x{h}" != want:
            report.problems.append(Problem(str(ds.image_path(name)), f"image is {w}x{h} (width x height), "
                                           f"expected {want} ({report.expected_size_basis})"))


def inspect_image(path: Path, decode: bool = False, convert: bool = False) -> tuple[int, int]:
    """(width, height) of an image file from its header; a DataError naming the file if it cannot be
    read, looks cut short (no end marker; with ``decode``: does not decode) or is not RGB (unless
    ``convert``), the same things a run stops on when it reads the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            size, mode, fmt = im.size, im.mode, im.format
            if decode:
                im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"unreadable image ({e})") from None
    if not decode and not _has_end_marker(path, fmt):  # a full decode is the better judge where asked
        raise DataError(path, f"truncated image: the {fmt} file has no end marker (cut short?); "
                              "--decode decodes it to be sure")
    if mode != "RGB" and not convert:
        raise DataError(path, f"is a mode {mode} image, not RGB; re-export it, or pass --convert "
                              "(a run refuses it without)")
    return size


def _has_end_marker(path: Path, fmt: str | None) -> bool:
    """A JPEG ends with its end-of-image marker after the last start-of-scan (0xFF 0xD9 cannot occur
    inside scan data, and an EXIF thumbnail's own marker comes before the scan); a PNG with its IEND
    chunk. Other formats are not judged."""
    if fmt not in ("JPEG", "PNG"):
        return True
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - _TAIL))
        tail = f.read()
    if fmt == "PNG":
        return b"IEND" in tail
    return tail.rfind(b"\xff\xd9") > tail.rfind(b"\xff\xda")


def _expected_size(ds: PairDataset, counts: Counter) -> tuple[str | None, str]:
    """The size ("WxH") the layout's images should have, and why. A run resizes every image to the
    protocol's size, so the DeepFashion layouts fix none (256x176, 512x352 and 750x1101 copies are all
    in use); there, an image unlike the others is what stands out: a copy from another source."""
    synth = ds.root / "synth.json"
    if synth.is_file():
        try:
            h, w = json.loads(synth.read_text())["size"]
            return f"{w}x{h}", "synth.json"
        except (ValueError, KeyError, TypeError):
            pass
    if isinstance(ds, Phoenix) and ds.layout == "phoenix":
        return f"{PHOENIX_FRAME[1]}x{PHOENIX_FRAME[0]}", "PHOENIX-2014T's fullFrame-210x260px frames"
    if counts:
        return counts.most_common(1)[0][0], "the most common size here"
    return None, ""


def _keypoint_source(ds: PairDataset, names: list[str]) -> tuple[str, int | None]:
    """Where the pairs' keypoints come from, and how many files (layouts with one file per image or video)."""
    if isinstance(ds, Phoenix):
        if ds.layout == "phoenix":
            return f"keypoints/{ds.split}/<video>.json", len({Path(n).parent for n in names})
        return "pose/<frame>.txt", len(names)
    if isinstance(ds, DeepFashionDataset):
        if ds.layout == "fpdm":
            return "pose/<image>.txt", len(names)
        return Path(ds.files.get("annotations", "annotation file")).name, None
    return f"{ds.keypoint_format}, from the dataset's own files", None


def _standard_split(dataset: str, ds: PairDataset) -> tuple[str | None, str]:
    n = len(ds.pairs)
    known = KNOWN_PAIRS_SHA256.get((dataset, ds.split))
    if known:
        sha, where = known
        same = ds.pairs_sha256() == sha
        return ("yes" if same else "no"), (f"pairs_sha256 {'equals' if same else 'differs from'} the default embedded "
                                           f"{ds.split} split's {sha[:8]}… recorded in {where}")
    if dataset in ("deepfashion", "deepfashion-fpdm") and ds.split == "test":
        yes = n == DEEPFASHION_TEST_PAIRS and not ds.skipped
        return ("yes" if yes else "no"), (f"by count: {n:,} unique pairs, the GFLA/PATN test list has 8,570; the list "
                                          "itself is not compared, no published pairs_sha256 being recorded here")
    if dataset == "phoenix" and ds.split == "test":
        videos = len({Path(r.source).parent for r in ds.pairs})
        yes = n == PHOENIX_TEST_PAIRS and videos == PHOENIX_TEST_VIDEOS and not ds.skipped
        return ("yes" if yes else "no"), (f"by count: {videos:,} videos, {n:,} pairs; FPDM's README: 642 test videos, "
                                          "64,627 pairs")
    return None, "nothing published to compare this dataset and split with"
