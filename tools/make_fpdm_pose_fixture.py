"""Regenerate tests/fixtures/fpdm_pose/official_render.npz from the official FPDM code.

Usage (in an environment with numpy, opencv-python and Pillow; the official pins are numpy 1.26.4,
opencv-python 4.9.0.80, pillow 10.3.0):

    python tools/make_fpdm_pose_fixture.py --official /path/to/FPDM [--out tests/fixtures/fpdm_pose]

``--official`` is a checkout of https://github.com/dhlee-work/FPDM (or any folder that holds its
``src/fusion/datautil.py``). That file is imported from there by path and run; nothing of it is
copied into this repository. This script needs neither torch nor fpdm-bench.

What it records, for each fixed pose below and each canvas the official code draws on:

- ``draw/<pose>/<H>x<W>``: ``ProcessingKeypoints.draw_img`` output (RGB uint8 at the canvas size), after
  ``trans_keypoins`` with the DeepFashion parameters (offset 40, anno 176x256, stickwidth 4), i.e.
  exactly what ``src/diffusion/dataset.py`` draws on the fly (550x375) and what
  ``A1.pose_data_preprocessing.py`` draws for the saved ``pose_img`` files (1101x750);
- ``jpeg/<pose>/1101x750``: that image saved as JPEG quality 100 and read back as RGB with PIL, as
  the pre-rendered files are written (A1) and read (dataset.py / model.py ``read_pose_img``);
- ``unet/...`` and ``clip/...``: each of those resized with PIL bicubic to 352x512 (W x H, the UNet
  input) and 224x224 (the CLIP input), as the official dataset code does before ``ToTensor`` / the
  CLIP processor.

The keypoints are given in the 256x176 (H x W) frame of the benchmark's DeepFashion images, NaN =
missing; the official functions get them in their file convention (x + 40, -1 = missing).
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

FRAME = (256, 176)  # (H, W) of the keypoints below
CANVASES = [(550, 375), (1101, 750)]  # (H, W): on-the-fly training render, pre-rendered pose_img
UNET_WH = (352, 512)
CLIP_WH = (224, 224)
NAN = float("nan")

# Fixed poses (x, y) in the 256x176 frame, 18 COCO-18 points. Chosen to exercise: fractional
# coordinates (int() truncation), missing points (skipped joints and limbs), points outside the
# frame and at negative x (drawn, clipped by the canvas), two coincident points (zero-length limb),
# and a pose with a single visible point (no limb at all).
POSES = {
    "full": [(88.0, 40.0), (88.0, 62.5), (66.25, 63.0), (58.5, 100.75), (54.0, 138.0), (110.5, 62.0),
             (118.0, 101.0), (123.75, 139.5), (72.0, 132.0), (70.5, 182.25), (69.0, 231.0), (103.0, 131.5),
             (105.25, 181.0), (107.0, 229.5), (82.5, 33.0), (93.5, 33.25), (76.0, 36.0), (100.0, 36.5)],
    "missing": [(NAN, NAN), (90.3, 61.7), (67.1, 62.9), (30.0, 98.6), (-1.2, 120.2), (112.9, 60.4),
                (181.4, 95.3), (130.2, 140.8), (73.3, 133.3), (73.3, 133.3), (NAN, NAN), (101.7, 132.1),
                (104.4, 183.9), (106.6, 254.6), (NAN, NAN), (95.1, 35.4), (NAN, NAN), (101.2, 37.9)],
    "single": [(NAN, NAN)] * 5 + [(120.7, 70.2)] + [(NAN, NAN)] * 12,
}
PARAM = {"offset": 40, "stickwidth": 4, "anno_width": 176, "anno_height": 256}


def load_official(root: Path):
    path = root / "src" / "fusion" / "datautil.py"
    if not path.is_file():
        sys.exit(f"{path}: not found (pass --official <checkout of dhlee-work/FPDM>)")
    spec = importlib.util.spec_from_file_location("fpdm_official_datautil", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, path


def file_convention(kp: np.ndarray) -> np.ndarray:
    """(x, y) in the 256x176 frame, NaN missing -> the official pose-file values (x + 40, -1 missing)."""
    out = kp.astype(np.float64).copy()
    miss = np.isnan(out).any(axis=1)
    out[:, 0] += PARAM["offset"]
    out[miss] = -1
    return out


def commit_of(root: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, type=Path, help="checkout of dhlee-work/FPDM")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fpdm_pose")
    ap.add_argument("--commit", default=None, help="official commit to record (default: git rev-parse HEAD there)")
    args = ap.parse_args(argv)

    import cv2
    import PIL
    from PIL import Image

    mod, path = load_official(args.official)
    pk = mod.ProcessingKeypoints()
    arrays: dict[str, np.ndarray] = {}
    for name, pts in POSES.items():
        kp = np.asarray(pts, np.float32)
        arrays[f"keypoints/{name}"] = kp
        for h, w in CANVASES:
            raw = file_convention(kp)
            canvas_kp = pk.trans_keypoins(raw, [h, w], dict(PARAM))
            img = pk.draw_img(canvas_kp, [h, w], dict(PARAM))
            key = f"{name}/{h}x{w}"
            arrays[f"canvas_keypoints/{key}"] = np.asarray(canvas_kp, np.float64)
            arrays[f"draw/{key}"] = np.asarray(img)
            arrays[f"unet/draw/{key}"] = np.asarray(img.resize(UNET_WH, Image.BICUBIC))
            arrays[f"clip/draw/{key}"] = np.asarray(img.resize(CLIP_WH, Image.BICUBIC))
            if (h, w) == CANVASES[-1]:
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=100)
                buf.seek(0)
                jpg = Image.open(buf).convert("RGB")
                arrays[f"jpeg/{key}"] = np.asarray(jpg)
                arrays[f"unet/jpeg/{key}"] = np.asarray(jpg.resize(UNET_WH, Image.BICUBIC))
                arrays[f"clip/jpeg/{key}"] = np.asarray(jpg.resize(CLIP_WH, Image.BICUBIC))

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "official_render.npz", **arrays)
    meta = {
        "official_repo": "dhlee-work/FPDM",
        "official_commit": args.commit or commit_of(args.official),
        "official_file": "src/fusion/datautil.py",
        "official_functions": ["ProcessingKeypoints.trans_keypoins", "ProcessingKeypoints.draw_img"],
        "param": PARAM, "frame_hw": list(FRAME), "canvases_hw": [list(c) for c in CANVASES],
        "unet_wh": list(UNET_WH), "clip_wh": list(CLIP_WH), "jpeg_quality": 100,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
                     "pillow": PIL.__version__},
        "command": "python tools/make_fpdm_pose_fixture.py --official <FPDM checkout>",
        "arrays": sorted(arrays),
    }
    (args.out / "official_render.json").write_text(json.dumps(meta, indent=2) + "\n")
    # a picture to look at: the 550x375 renders side by side
    strip = np.concatenate([arrays[f"draw/{n}/550x375"] for n in POSES], axis=1)
    Image.fromarray(strip).save(args.out / "official_render_550x375.png", optimize=True)
    print(f"wrote {len(arrays)} arrays to {args.out / 'official_render.npz'} (official {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
