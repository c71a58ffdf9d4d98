"""images: another code base's released generated images, scored as a model row.

    fpdm-bench run --model images --checkpoint DIR --model-arg layout=pidm|cfld|fpdm|gfla [--model-arg missing=skip]

``--checkpoint DIR`` is the folder of generated images (searched recursively); the layout says how that
code base names a pair's file and what it draws on its canvas. Each pair's file is found by the names in
its layout (any image suffix: .png, .jpg, ...), the generated panel is cut out when the file holds
several images side by side, and the image is resized to the batch's frame (the evaluation frame the
run loads the dataset at) with PIL bicubic, antialiased when it shrinks: the filter the harness reads
every real image with (``fpdm_bench.images.read_image``) and the one PIDM squeezed its 256x256 canvases
with, so a canvas that was made by squeezing the whole frame (PIDM, GFLA, PoCoLD, FPDM) is
un-squeezed by the same kind of filter and the generated and real sides of a metric are resized
alike. A canvas already at the batch's frame is used as it is (e.g. PIDM's 256x256 files under the
``pidm`` protocol, whose evaluation frame is 256x256).

Before anything is generated (``prepare``) the whole folder is checked against the dataset's pairs: pairs
with no image (an error, unless ``--model-arg missing=skip``: then they are skipped and results.json
counts them), images that match no pair (a warning), a pair with two files, mixed canvas sizes, non-RGB
files, and one-panel files more than twice as wide as tall (panels read as one image). Sampling settings (seed, steps) do not apply: the images are what they are. ``info()`` records the
layout, the folder and a sha256 over its image files; NFE and parameters are unknown.

A layout is one ``Layout`` entry in the table below, with the official file and line of every fact in the
comment above it; adding a code base means adding one entry. ``--model-arg panels=N --model-arg panel=i``
reads any other side-by-side panel convention (e.g. PATN-style 5-panel ``_vis`` files, ``panel=-1``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fpdm_bench.data.base import PairRecord
from fpdm_bench.data.deepfashion import nested_path
from fpdm_bench.errors import BenchError, DataError
from fpdm_bench.images import IMAGE_SUFFIXES, read_image
from fpdm_bench.models.base import ModelAdapter
from fpdm_bench.registry import Registry

EXAMPLES = 3  # names shown per problem in a report


@dataclass(frozen=True)
class Layout:
    """How one code base writes a pair's generated image.

    ``names``: file-name stems (suffix left off), the first the one the official code writes, others
    accepted too; filled from ``{pair_id}`` (GFLA '<source stem>_2_<target stem>', the dataset's pair id),
    ``{fpdm_source}`` / ``{fpdm_target}`` (see ``fpdm_image_name``). ``canvases``: (H, W) of the files the
    code writes (another size is read all the same, and noted). ``panels``/``panel``: the file holds
    ``panels`` equal-width images side by side and the generated one is number ``panel`` (0-based).
    """

    name: str
    names: tuple[str, ...]
    suffix: str
    canvases: tuple[tuple[int, int], ...]
    summary: str
    panels: int = 1
    panel: int = 0


LAYOUTS = Registry("layout")

# PIDM (ankanbhunia/PIDM @e4f1d88).
# - Name: data/fashion_data.py:141-145 get_image_path = splitext(source)[0] + '_2_' + splitext(target)[0] + '_vis.png',
#   each name first mapped by path_to_fashion_name (:147-154: 'fashion' + gender + category + id without its '_' +
#   item '_' view-and-word without '_'), the flat GFLA name the datasets here key images by (deepfashion.flat_name);
#   :65,67 turn '.jpg' into '.png' first, which the splitext drops. So the file is '<pair_id>_vis.png'.
# - Written by utils/gen.py:153-155 (DDPM) and :170-172 (DDIM): Image.fromarray(uint8).save(fake_folder/batch['path']),
#   the generated image alone, flat in images/<exp>/<ckpt>-<algo>-scale:<s>/ (:97-99).
# - Canvas 256x256: sampled at the input's shape (gen.py:161), the inputs being the LMDB of config/data.yaml:8
#   (sub_path 256-256) that data/prepare_data.py:26,84 fills with the whole photo squeezed to 256x256 (PIL bicubic).
LAYOUTS.register("pidm", Layout(
    name="pidm", names=("{pair_id}_vis",), suffix=".png", canvases=((256, 256),),
    summary="PIDM utils/gen.py: <source>_2_<target>_vis.png, the generated image alone, 256x256 (a squeezed 256x176 frame)"))

# CFLD (YanzuoLu/CFLD @f2ea2a7).
# - The test script writes no per-pair file: pose_transfer_test.py:119-122 resizes the samples to TEST.IMG_SIZE
#   (F.interpolate bicubic, antialias), truncates them to uint8 and scores them in memory ("can save all images
#   here!!!", :121). The only image it writes (:109-117) is a grid of batch 0 ([source, pose, target, generated]
#   per sample, make_grid with 8 images a row), 'inpainting_test_<rank>_<i>.jpg', not named by pair.
# - Canvas: TEST.IMG_SIZE [256, 176] (configs/fashion_256.yaml:2, defaults/deepfashion.py:112) or [512, 352]
#   (configs/fashion_512.yaml:2); generated at INPUT.GT.IMG_SIZE 512x512 (defaults/deepfashion.py:95) first.
# - The released images (README.md:10-11, Google Drive: 256x176 and 512x352 PNGs; :20 other methods' images
#   "uniformly resized ... used the same naming format") are named outside the code: no file or line states the
#   name. Assumed here: the pairs file's from/to (datasets/deepfashion.py:167-169,189-193) in GFLA's
#   '<from>_2_<to>' form, with or without '_vis'. Check a release against this before trusting a "missing" count.
LAYOUTS.register("cfld", Layout(
    name="cfld", names=("{pair_id}", "{pair_id}_vis"), suffix=".png", canvases=((256, 176), (512, 352)),
    summary="CFLD's released images (README.md:10-11): 256x176 or 512x352 PNGs; name not in the code, "
            "<from>_2_<to>[_vis] assumed"))

# FPDM (dhlee-work/FPDM @7d90524).
# - Name: C1.test_Diffusion_model.py:144-151: each path's part after './img' with every '/' removed (suffix
#   kept), source + '_2_' + target + '.png'; paths are the pairs json's './img/<gender>/<category>/id_<id>/<file>'
#   (dataset/deepfashion_samples/test_pairs_data.json; src/diffusion/dataset.py:128-129). E.g.
#   'WOMENBlouses_Shirtsid_0000337203_3_back.jpg_2_WOMENBlouses_Shirtsid_0000337203_2_side.jpg.png'.
# - Written by C1:152-155 (.save(format='PNG')) into <data root>/<save_dir_prefix>_<steps>_<i>/ (:61,110), the
#   generated image alone.
# - Canvas 512x352: model_img_size (352, 512) as PIL (W, H) (C1:45); the pipeline runs at height [1], width [0]
#   (src/diffusion/model.py:697-699) and its PIL output is saved unresized (model.py:727-729).
LAYOUTS.register("fpdm", Layout(
    name="fpdm", names=("{fpdm_source}_2_{fpdm_target}",), suffix=".png", canvases=((512, 352),),
    summary="FPDM C1.test_Diffusion_model.py: <source path below img/, '/' removed>_2_<target likewise>.png, "
            "512x352"))

# GFLA (RenYurui/Global-Flow-Local-Attention @3afa8fe), and PoCoLD (BrandonHanx/PoCoLD @c5c7bb7), which writes
# the same name.
# - GFLA name: model/pose_model.py:108-110 splitext(P1)[0] + '_2_' + P2; model/base_model.py:224-237 save_results
#   drops P2's suffix and writes '<name>_<data_name>.<data_ext>', data_ext 'jpg' by default; P1/P2 are the
#   pairs csv's from/to names (data/base_dataset.py:55-57,81-82; data/fashion_dataset.py:37-44).
# - GFLA's '_vis' file is the generated image alone: pose_model.py:113-116 save_results(img_gen, 'vis'). With
#   --save_input or phase 'val' it also writes '_ref', '_gt' and '_all' (:117-121), '_all' being
#   torch.cat([source, generated, target], 3): three panels side by side, the generated one in the middle.
# - GFLA canvas 256x256: load_size 256 (data/fashion_dataset.py:14-17) becomes (256, 256) (base_dataset.py:32-33)
#   and the whole photo is F.resize'd to it (base_dataset.py:62-63): a squeeze of the 176-wide frame.
# - PoCoLD: inference.py:83-86 from.replace('.jpg', '_2_') + to.replace('.jpg', '_vis.png'), of flat names (its
#   metrics.py:494-496 finds the ground truth as the part after '_2_' in a flat folder); :115-118 saves each
#   pipeline image (the generated one alone) at height 512, width 384 (:47-48, :102-106).
LAYOUTS.register("gfla", Layout(
    name="gfla", names=("{pair_id}_vis",), suffix=".jpg", canvases=((256, 256), (512, 384)),
    summary="GFLA model/pose_model.py + PoCoLD inference.py: <source>_2_<target>_vis.jpg/.png, the generated "
            "image alone, 256x256 (GFLA) or 512x384 (PoCoLD)"))
LAYOUTS.register("gfla-all", Layout(
    name="gfla-all", names=("{pair_id}_all",), suffix=".jpg", canvases=((256, 768),), panels=3, panel=1,
    summary="GFLA model/pose_model.py:117-121 '_all' files: source | generated | target, 256x256 each"))


def fpdm_image_name(key: str) -> str:
    """FPDM's name for one image: its path below ``img/`` with the '/' removed, suffix kept
    (C1.test_Diffusion_model.py:146-149). Dataset keys here are flat In-shop names, mapped back to that
    path (``nested_path``); other keys (e.g. PHOENIX 'video/frame.png') lose their '/' the same way."""
    return (nested_path(key) or key).replace("/", "")


def expected_stems(layout: Layout, rec: PairRecord) -> list[str]:
    """The file-name stems ``layout`` gives pair ``rec``'s generated image, the official one first."""
    fields = {"pair_id": rec.pair_id, "fpdm_source": fpdm_image_name(rec.source),
              "fpdm_target": fpdm_image_name(rec.target)}
    return list(dict.fromkeys(t.format(**fields) for t in layout.names))


def index_by_stem(folder: Path) -> dict[str, list[Path]]:
    """Image files below ``folder`` by file stem (name without its last suffix), sorted."""
    out: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            out.setdefault(p.stem, []).append(p)
    return out


def _examples(items, fmt=str) -> str:
    items = list(items)
    shown = ", ".join(fmt(x) for x in items[:EXAMPLES])
    return shown + (", ..." if len(items) > EXAMPLES else "")


class ReleasedImages(ModelAdapter):
    """Released generated images of another code base (--checkpoint DIR --model-arg layout=pidm|cfld|fpdm|gfla)."""

    name = "images"
    needs_target = True  # it reads released images: no seed, no sampler (see ModelAdapter.needs_target)
    uses_inputs = False  # ... and perturbed inputs cannot change them
    ARGS = ("layout", "missing", "panels", "panel", "convert")

    def __init__(self, folder: str | Path, layout: str, missing: str = "error", panels: int | None = None,
                 panel: int | None = None, convert: bool = False):
        super().__init__()
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(self.folder, "not a folder (--checkpoint is the folder of released images for --model images)")
        self.layout: Layout = LAYOUTS.get(str(layout))
        if missing not in ("error", "skip"):
            raise BenchError(f"images: --model-arg missing={missing!r}: expected 'error' (the default: a pair "
                             f"without an image stops the run) or 'skip' (score the pairs that have one)")
        self.missing = missing
        self.panels_given = panels is not None
        self.panels = int(panels) if panels is not None else self.layout.panels
        self.panel = int(panel) if panel is not None else self.layout.panel
        if self.panels < 1 or not -self.panels <= self.panel < self.panels:
            raise BenchError(f"images: --model-arg panels={self.panels} panel={self.panel}: need panels >= 1 and "
                             f"panel in [-panels, panels) (0 = leftmost, -1 = rightmost)")
        self.convert = bool(convert)
        self._index: dict[str, list[Path]] | None = None
        self._checked: dict = {}
        self._sha: str | None = None

    @classmethod
    def from_pretrained(cls, path_or_config=None, device="cpu", dtype=torch.float32, layout=None, missing="error",
                        panels=None, panel=None, convert=False, **other) -> "ReleasedImages":
        names = ", ".join(LAYOUTS.names())
        if other:
            raise BenchError(f"images: unknown model argument(s) {', '.join(sorted(other))} (--steps, --guidance and "
                             f"--scheduler do not apply to released images); it takes --model-arg "
                             f"{', '.join(cls.ARGS)}")
        if path_or_config is None:
            raise BenchError(f"images: pass --checkpoint DIR, the folder of released images, and --model-arg "
                             f"layout=NAME (one of {names})")
        if layout is None:
            raise BenchError(f"images: say how {path_or_config} names its files with --model-arg layout=NAME "
                             f"(one of {names})")
        return cls(path_or_config, layout, missing=missing, panels=panels, panel=panel, convert=convert)

    # --- the folder ------------------------------------------------------------------------------
    def index(self) -> dict[str, list[Path]]:
        if self._index is None:
            self._index = index_by_stem(self.folder)
            if not self._index:
                raise DataError(self.folder, f"contains no images ({', '.join(IMAGE_SUFFIXES)})")
        return self._index

    def files_for(self, rec: PairRecord, layout: Layout | None = None) -> list[Path]:
        index = self.index()
        return [p for s in expected_stems(layout or self.layout, rec) for p in index.get(s, [])]

    def _looked_for(self, rec: PairRecord) -> str:
        return " or ".join(s + self.layout.suffix for s in expected_stems(self.layout, rec))

    def prepare(self, pairs: list, dataset, log=print) -> dict[str, str]:
        """Check the whole folder against the run's pairs before anything is generated. Raises a
        BenchError for pairs without an image (unless missing=skip: they are returned, with the reason,
        for the runner to skip), two images for one pair, mixed sizes or non-RGB files; logs one warning
        for images that match no pair of the dataset's split, and one line on what was found."""
        from PIL import Image

        index = self.index()
        n_files = sum(len(v) for v in index.values())
        run_ids = {r.pair_id for r in pairs}
        claimed: set[str] = set()  # stems that belong to a pair of the split (run or not)
        matched, ambiguous = {}, {}
        for rec in [*getattr(dataset, "pairs", []), *pairs]:
            stems = expected_stems(self.layout, rec)
            claimed.update(stems)
            if rec.pair_id in run_ids and rec.pair_id not in matched and rec.pair_id not in ambiguous:
                found = [p for s in stems for p in index.get(s, [])]
                if len(found) > 1:
                    ambiguous[rec.pair_id] = found
                elif found:
                    matched[rec.pair_id] = found[0]
        missing = [r for r in pairs if r.pair_id not in matched and r.pair_id not in ambiguous]
        unmatched = [p for s, ps in index.items() if s not in claimed for p in ps]
        outside = sum(len(index.get(s, [])) for s in claimed) - len(matched) - sum(map(len, ambiguous.values()))
        if ambiguous:
            pid, files = next(iter(ambiguous.items()))
            raise DataError(self.folder, f"{len(ambiguous)} pairs have more than one image under layout "
                                         f"{self.layout.name} (e.g. pair {pid}: {', '.join(p.name for p in files)}); "
                                         f"keep one per pair, or point --checkpoint at one run's subfolder")
        if not matched:
            raise DataError(self.folder, f"none of the {len(pairs)} pairs has an image under layout "
                                         f"{self.layout.name} (e.g. pair {pairs[0].pair_id}: looked for "
                                         f"{self._looked_for(pairs[0])}); its {n_files} images are named like "
                                         f"{_examples(unmatched, lambda p: p.name)}.{self._other_layouts(pairs)}")
        self._check_files(matched, Image)
        notes = []
        if missing:
            shown = _examples(missing, self._looked_for)
            notes.append(f"{len(missing)} of the {len(pairs)} pairs have no image (looked for {shown})")
        if unmatched:
            shown = _examples(unmatched, lambda p: p.relative_to(self.folder).as_posix())
            notes.append(f"{len(unmatched)} of its {n_files} images match no pair of the "
                         f"{getattr(dataset, 'split', 'dataset')} split and are ignored (e.g. {shown})")
        where = f"images folder {self.folder} (layout {self.layout.name})"
        if missing and self.missing == "error":
            raise BenchError(f"{where}: " + "; ".join(notes) + f". Pass --model-arg missing=skip to score the "
                             f"{len(matched)} pairs that have one (results.json counts the skipped ones), or fix "
                             f"the folder or the layout.{self._other_layouts(pairs, len(matched))}")
        if notes:
            log(f"warning: {where}: " + "; ".join(notes)
                + ("; the pairs without an image are skipped (missing=skip)" if missing else ""))
        canvas = self._checked["canvas"]
        frame = tuple(getattr(dataset, "size", None) or ())
        panel = f", panel {self.panel % self.panels + 1} of {self.panels}" if self.panels > 1 else ""
        if frame == self._panel_size(canvas):
            how = "used as they are"
        else:
            how = f"resized to the {frame[0]}x{frame[1]} frame (PIL bicubic)" if frame else "resized to the batch frame"
        note = "" if canvas in self.layout.canvases else (
            f" (not the {' or '.join(f'{h}x{w}' for h, w in self.layout.canvases)} this layout's code writes)")
        elsewhere = f"; {outside} more images belong to pairs outside this run" if outside else ""
        log(f"images ({self.layout.name}): {len(matched)} of {len(pairs)} pairs found in {self.folder}{elsewhere}; "
            f"{canvas[0]}x{canvas[1]} files{note}{panel}, {how}")
        self._checked.update(pairs_matched=len(matched), pairs_missing=len(missing), images_unmatched=len(unmatched),
                             image_files=n_files)
        return {r.pair_id: f"no image in {self.folder} under layout {self.layout.name} (looked for "
                           f"{self._looked_for(r)})" for r in missing}

    def _check_files(self, matched: dict[str, Path], Image) -> None:
        """One canvas size, divisible into the panels, RGB: read from the file headers only."""
        sizes: dict[tuple[int, int], list[Path]] = {}
        not_rgb: list[tuple[Path, str]] = []
        for p in matched.values():
            try:
                with Image.open(p) as im:
                    sizes.setdefault((im.height, im.width), []).append(p)
                    if im.mode != "RGB":
                        not_rgb.append((p, im.mode))
            except OSError as e:
                raise DataError(p, f"unreadable image ({e})") from None
        if len(sizes) > 1:
            desc = ", ".join(f"{h}x{w}: {len(v)} (e.g. {v[0].name})" for (h, w), v in
                             sorted(sizes.items(), key=lambda kv: -len(kv[1])))
            raise DataError(self.folder, f"images of mixed sizes ({desc}); one release has one canvas: put one "
                                         f"run's images in the folder")
        canvas = next(iter(sizes))
        if canvas[1] % self.panels:
            raise DataError(self.folder, f"images are {canvas[0]}x{canvas[1]}, which does not split into "
                                         f"{self.panels} equal panels side by side (layout {self.layout.name}; "
                                         f"--model-arg panels=N sets another count)")
        if self.panels == 1 and canvas[1] >= 2 * canvas[0] and not self.panels_given:
            raise DataError(self.folder, f"images are {canvas[0]}x{canvas[1]}, more than twice as wide as tall: each "
                                         f"likely holds several images side by side (PATN-style _vis files hold 5, "
                                         f"the generated one last). Pass --model-arg panels=N --model-arg panel=i "
                                         f"(i from 0, -1 = last), or panels=1 to score them whole")
        if not_rgb and not self.convert:
            p, mode = not_rgb[0]
            raise DataError(p, f"is a mode-{mode} image, not RGB ({len(not_rgb)} such files); re-export them, or "
                               f"pass --model-arg convert=true to convert them to RGB")
        self._checked["canvas"] = canvas

    def _panel_size(self, canvas) -> tuple[int, int]:
        return canvas[0], canvas[1] // self.panels

    def _other_layouts(self, pairs, found_here: int = 0) -> str:
        """A hint when another layout would find more of the pairs than this one does."""
        found = {}
        for name in LAYOUTS.names():
            if name != self.layout.name:
                found[name] = sum(bool(self.files_for(r, LAYOUTS.get(name))) for r in pairs)
        most = max(found.values(), default=0)
        if most <= found_here:
            return ""
        best = [n for n in found if found[n] == most]
        return f" Layout {' or '.join(best)} would find {most} of them (--model-arg layout={best[0]})."

    # --- generation ------------------------------------------------------------------------------
    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        from fpdm_bench.modeling.resize import resize

        frame = tuple(batch["target" if "target" in batch else "source"].shape[-2:])
        out = []
        for pid, src, tgt in zip(batch["pair_id"], batch["source_name"], batch["target_name"]):
            rec = PairRecord(pid, src, tgt)
            files = self.files_for(rec)
            if len(files) != 1:
                raise DataError(self.folder, f"pair {pid}: {len(files)} images under layout {self.layout.name} "
                                             f"(looked for {self._looked_for(rec)})")
            img = read_image(files[0], convert=self.convert)
            width = img.shape[-1] // self.panels
            k = self.panel % self.panels
            img = img[:, :, k * width:(k + 1) * width]
            if tuple(img.shape[-2:]) != frame:  # PIL bicubic, as every real image is read (module docstring)
                img = resize(img[None], frame, "pil", "bicubic")[0]
            out.append(img)
        return torch.stack(out)

    def info(self) -> dict:
        if self._sha is None:
            from fpdm_bench.io import files_sha256

            self._sha = files_sha256(self.folder, [p for ps in self.index().values() for p in ps])
        checked = {k: v for k, v in self._checked.items() if k != "canvas"}
        return {"name": f"{self.name}:{self.layout.name}", "adapter": self.name, "layout": self.layout.name,
                "layout_source": self.layout.summary,
                "folder": str(self.folder.resolve()), "checkpoint": str(self.folder), "checkpoint_sha256": self._sha,
                "checkpoint_sha256_of": "every image file below the folder: sha256 over sorted (relative path, "
                                        "file sha256) lines",
                "canvas": list(self._checked["canvas"]) if "canvas" in self._checked else None,
                "panels": self.panels, "panel": self.panel % self.panels,
                "resize": "to the batch frame, PIL bicubic (antialiased when shrinking), only where sizes differ",
                "missing_policy": self.missing, "convert": self.convert, **checked,
                "parameters": None, "nfe": None, "scheduler": None, "seeded": False,
                "nfe_note": "unknown: the images were generated by another code base"}
