"""The embedded synthetic set, written in the DeepFashion layout (PIDM/CFLD/GFLA distribution).

    img/<name>.jpg                              images at `size` (H, W)
    fasion-resize-annotation-{train,test}.csv   name:keypoints_y:keypoints_x (18 ints, 256x176 frame, -1 missing)
    fasion-resize-pairs-{train,test}.csv        ,from,to
    synth.json                                  generator version, seed, parameters, counts
"""
from __future__ import annotations

import io
import json
import time
from itertools import permutations
from pathlib import Path

import numpy as np
from PIL import Image

from fpdm_bench.data import keypoints as kpt
from fpdm_bench.data.synth.figure import random_look
from fpdm_bench.data.synth.person import FAMILIES, VIEWS, draw_person, keypoints, random_body, random_pose

VERSION = 1
VIEW_TAG = {"front": "1front", "side-left": "2side", "side-right": "2side", "back": "3back"}
# 120 x 6 train images give a model enough identities to learn appearance transfer from; 20 x 4
# test images give 240 ordered test pairs, enough for stable means, and the whole set is written
# in about 10 s (about 12 MB, mostly the clothing patterns at JPEG quality 95).
DEFAULTS = {"seed": 0, "size": (256, 176), "train_identities": 120, "test_identities": 20, "poses": 4,
            "train_poses": 6}


def _identity_images(rng, ident: int, n_poses: int, size, gender: str):
    look, body = random_look(rng), random_body(rng)
    # cycle through views and pose families so an identity's poses differ from each other
    views = list(rng.permutation(VIEWS))
    fams = list(rng.permutation(FAMILIES))
    out = []
    for k in range(n_poses):
        pose = random_pose(rng, view=str(views[k % len(views)]), family=str(fams[k % len(fams)]))
        kp, geo = keypoints(body, pose, size)
        img = draw_person(size, kp, geo, pose, body, look)
        name = f"fashion{gender}Synthid{ident:08d}{k + 1:02d}_{VIEW_TAG[pose.view]}.jpg"
        out.append((name, img, kpt.rescale(kpt.drop_outside(kp, size), size, kpt.DEEPFASHION_ANNOTATION_SIZE)))
    return out


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def synthesize_deepfashion(out: str | Path, seed: int = 0, size=(256, 176), train_identities: int = 120,
                           test_identities: int = 20, poses: int = 4, train_poses: int | None = 6) -> dict:
    """Write the synthetic set to `out`; same arguments give byte-identical files.

    Test identities get `poses` images each and all ordered pairs among them; train identities get
    `train_poses` (default 6; `poses` if None). Identities are disjoint between the splits.
    `size` (H, W) is the image size; keypoints are always written in the 256x176 annotation frame.
    Returns the provenance written to ``synth.json`` plus ``seconds`` and ``out``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    (out / "img").mkdir(parents=True, exist_ok=True)
    size = tuple(int(v) for v in size)
    counts = {}
    for split, first, n_ids, n_poses in (("train", 0, train_identities, train_poses or poses),
                                          ("test", train_identities, test_identities, poses)):
        ann = ["name:keypoints_y:keypoints_x"]
        pairs = [",from,to"]
        for ident in range(first, first + n_ids):
            rng = np.random.default_rng([seed, ident])
            gender = "WOMEN" if rng.random() < 0.5 else "MEN"
            imgs = _identity_images(rng, ident, n_poses, size, gender)
            for name, img, kp in imgs:
                (out / "img" / name).write_bytes(_jpeg(img))
                ys, xs = kpt.to_file_values(kp)
                ann.append(f"{name}: {json.dumps(ys)}: {json.dumps(xs)}")
            for a, b in permutations([n for n, _, _ in imgs], 2):
                pairs.append(f"{len(pairs) - 1},{a},{b}")
        (out / f"fasion-resize-annotation-{split}.csv").write_text("\n".join(ann) + "\n")
        (out / f"fasion-resize-pairs-{split}.csv").write_text("\n".join(pairs) + "\n")
        counts[split] = {"identities": n_ids, "images": n_ids * n_poses, "pairs": len(pairs) - 1}
    meta = {"generator": "fpdm_bench.data.synth.deepfashion", "version": VERSION, "seed": seed, "size": list(size),
            "train_identities": train_identities, "test_identities": test_identities, "poses": poses,
            "train_poses": train_poses, "counts": counts}
    (out / "synth.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return {**meta, "seconds": round(time.perf_counter() - t0, 2), "out": str(out)}
