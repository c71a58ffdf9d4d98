"""Synthetic signers in the RWTH-PHOENIX-Weather 2014T layout.

    features/fullFrame-210x260px/{train,test}/<video>/images0001.png ...   frames 260 high x 210 wide
    annotations/PHOENIX-2014-T.{train,test}.corpus.csv   name|video|start|end|speaker|orth|translation
    keypoints/{train,test}/<video>.json   {"format": "coco-wholebody-133", "size": [H, W],
                                           "frames": [...], "keypoints": [[[x, y, score] x 133] per frame]}
    synth.json                            generator version, seed, parameters, counts

A signer is the upper body of a synthetic person, seen from the front and cropped at the waist, with
arms and hands moving smoothly through signing-like motion (hands before the chest, near the face).
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fpdm_bench.data.synth.figure import random_look
from fpdm_bench.data.synth.person import Pose, draw_person, keypoints, random_body

VERSION = 1
# 12 + 4 videos of 16 frames: a few seconds to write, enough frames for within-video pose pairs.
PHOENIX_DEFAULTS = {"seed": 0, "size": (260, 210), "train_videos": 12, "test_videos": 4, "frames": 16}
FRAME_DIR = "features/fullFrame-210x260px"
# COCO-WholeBody body order (0-16) as indices into COCO-18
WB_FROM_COCO18 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
GLOSSES = ["REGEN", "SONNE", "WOLKE", "WIND", "NORD", "SUED", "MORGEN", "HEUTE", "KALT", "WARM", "SCHNEE", "GEWITTER"]


def _hand(wrist, forearm_dir, S):
    """21 hand points (wrist, then 4 per finger from thumb to little finger) fanned around the forearm axis."""
    u = forearm_dir / (np.hypot(*forearm_dir) + 1e-6)
    n = np.array([-u[1], u[0]], np.float32)
    pts = [wrist]
    palm = wrist + u * 0.035 * S
    for f, spread in enumerate((-0.9, -0.35, 0.0, 0.3, 0.6)):
        base = palm + n * spread * 0.02 * S - (u * 0.02 * S if f == 0 else 0)
        d = u * np.cos(spread * 0.6) + n * np.sin(spread * 0.6)
        seg = 0.012 * S * (0.8 if f in (0, 4) else 1.0)
        for j in range(1, 5):
            pts.append(base + d * seg * j)
    return np.array(pts, np.float32)


def _face(head, r):
    """68 face points placed on the head like the iBUG layout (jaw, brows, nose, eyes, mouth)."""
    pts = []
    for t in np.linspace(-0.5, 0.5, 17):  # jaw, ear to ear under the chin
        a = np.pi / 2 + t * np.pi * 0.95
        pts.append(head + [np.cos(a) * 0.85 * r * -1, np.sin(a) * 0.9 * r])
    for side in (-1, 1):  # brows
        for t in np.linspace(0.15, 0.65, 5):
            pts.append(head + [side * t * r, -0.35 * r])
    for t in np.linspace(-0.2, 0.25, 4):  # nose bridge
        pts.append(head + [0, t * r])
    for t in np.linspace(-0.2, 0.2, 5):  # nostrils
        pts.append(head + [t * r, 0.3 * r])
    for side in (-1, 1):  # eyes (6 each)
        c = head + [side * 0.38 * r, -0.12 * r]
        for a in np.linspace(0, 2 * np.pi, 7)[:-1]:
            pts.append(c + [np.cos(a) * 0.13 * r, np.sin(a) * 0.06 * r])
    for ring, (rx, ry) in ((12, (0.3, 0.1)), (8, (0.2, 0.05))):  # mouth outer and inner
        for a in np.linspace(0, 2 * np.pi, ring + 1)[:-1]:
            pts.append(head + [np.cos(a) * rx * r, 0.55 * r + np.sin(a) * ry * r])
    return np.array(pts, np.float32)


def _signing_pose(t: float, phase: np.ndarray, speed: np.ndarray) -> Pose:
    d = np.pi / 180
    s = lambda i, lo, hi: lo + (hi - lo) * 0.5 * (1 + np.sin(speed[i] * t + phase[i]))  # noqa: E731
    arms = (s(0, 10, 55) * d, -s(1, 70, 165) * d, s(2, 8, 50) * d, -s(3, 60, 160) * d)
    return Pose(view="front", family="signing", arms=arms, legs=(0.0, 0.0, 0.0, 0.0), lean=0.0, shift=0.0)


def _frame(size, body, look, pose):
    H, W = size
    kp, geo = keypoints(body, pose, size)
    dy = 0.07 * H - (geo["head"][1] - geo["r"])  # head top at 7 % of the frame
    kp = kp + np.array([0, dy], np.float32)
    geo["head"] = geo["head"] + np.array([0, dy], np.float32)
    img = draw_person(size, kp, geo, pose, body, look)
    S = geo["S"]
    wb = np.full((133, 3), -1.0, np.float32)
    wb[:, 2] = 0
    wb[:17, :2] = kp[WB_FROM_COCO18]
    wb[23:91, :2] = _face(geo["head"], geo["r"])
    for start, (e, w) in ((91, (6, 7)), (112, (3, 4))):  # left hand, right hand
        hand = _hand(kp[w], kp[w] - kp[e], S)
        wb[start:start + 21, :2] = hand
        for f in range(5):
            chain = [hand[0]] + list(hand[1 + 4 * f: 5 + 4 * f])
            for a, b in zip(chain[:-1], chain[1:]):
                cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), look.skin,
                         max(2, int(0.012 * S)), lineType=cv2.LINE_AA)
    inside = (wb[:, 0] >= 0) & (wb[:, 0] < W) & (wb[:, 1] >= 0) & (wb[:, 1] < H) & ~np.isnan(wb[:, :2]).any(1)
    wb[inside, 2] = 1.0
    wb[~inside] = [-1, -1, 0]
    return img, wb


def synthesize_phoenix(out: str | Path, seed: int = 0, size=(260, 210), train_videos: int = 12,
                       test_videos: int = 4, frames: int = 16) -> dict:
    """Write the synthetic signer set to `out`; same arguments give byte-identical files.

    Each video is its own signer (look, body, backdrop), so train and test signers are disjoint.
    Returns the provenance written to ``synth.json`` plus ``seconds`` and ``out``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    size = tuple(int(v) for v in size)
    counts = {}
    for split, first, n in (("train", 0, train_videos), ("test", train_videos, test_videos)):
        rows = ["name|video|start|end|speaker|orth|translation"]
        for v in range(first, first + n):
            rng = np.random.default_rng([seed, 7919, v])
            look, body = random_look(rng), random_body(rng)
            # upper body fills the frame (the waist near the bottom edge), slimmer limbs than the
            # full-body set so the arms stay inside the 210 px width; a studio-plain backdrop
            body.height, body.limb, body.shoulder, body.x_center = 1.6, 0.72, 0.22, 0.5
            look.skirt, look.bg_texture, look.floor = False, 1.5, 2.0
            phase, speed = rng.uniform(0, 2 * np.pi, 4), rng.uniform(0.25, 0.6, 4)
            video = f"synth{v:04d}_signer{v:02d}"  # one look per video: each is its own signer
            vdir = out / FRAME_DIR / split / video
            vdir.mkdir(parents=True, exist_ok=True)
            names, kps = [], []
            for f in range(frames):
                img, wb = _frame(size, body, look, _signing_pose(float(f), phase, speed))
                name = f"images{f + 1:04d}.png"
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="PNG")
                (vdir / name).write_bytes(buf.getvalue())
                names.append(name)
                kps.append(np.round(wb, 2).tolist())
            kdir = out / "keypoints" / split
            kdir.mkdir(parents=True, exist_ok=True)
            (kdir / f"{video}.json").write_text(json.dumps(
                {"format": "coco-wholebody-133", "size": list(size), "frames": names, "keypoints": kps}))
            words = " ".join(str(w) for w in rng.choice(GLOSSES, 3))
            rows.append(f"{video}|{video}/1/*.png|-1|-1|Signer{v:02d}|{words}|{words.lower()}")
        adir = out / "annotations"
        adir.mkdir(parents=True, exist_ok=True)
        (adir / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(rows) + "\n")
        counts[split] = {"videos": n, "frames": n * frames}
    meta = {"generator": "fpdm_bench.data.synth.phoenix", "version": VERSION, "seed": seed, "size": list(size),
            "train_videos": train_videos, "test_videos": test_videos, "frames": frames, "counts": counts}
    (out / "synth.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return {**meta, "seconds": round(time.perf_counter() - t0, 2), "out": str(out)}
