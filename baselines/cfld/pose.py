"""CFLD's pose input: an RGB skeleton + 18 Gaussian heatmaps (21 channels, float32).

Facts (github.com/YanzuoLu/CFLD at f2ea2a7, ``pose_utils.py`` and ``datasets/deepfashion.py:152-158``,
read, never copied; docs/models/cfld.md):
- keypoints are the annotation CSV's integers in the 256x176 frame, (y, x), -1 = missing, drawn on a
  256x256 canvas (``INPUT.POSE.IMG_SIZE``), i.e. stretched by 256/176 in x;
- skeleton (``draw_pose_from_cords``): the 17 OpenPose bones as ``cv2.line`` of thickness 2 with
  anti-aliasing, each in its joint colour at 60 % (153 = 0.6 * 255), then the 18 joints as filled
  anti-aliased circles of radius 3 in the OpenPose joint colours, written as RGB (no BGR swap);
  positions ``int(coord * scale)``; anything with a missing end is skipped; channels = uint8 / 255;
- heatmaps (``cords_to_map``): for each joint, ``exp(-((y - cy)^2 + (x - cx)^2) / (2 * 6^2))`` in
  float64 stored as float32, with ``cy = int(y / 256 * H)``, ``cx = int(x / 176 * W)``; a missing
  joint gives an all-zero channel.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from fpdm_bench.data.keypoints import COCO18_LIMBS, DEEPFASHION_ANNOTATION_SIZE, rescale
from fpdm_bench.modeling.pose import OPENPOSE_COLOURS, body_keypoints

POSE_CHANNELS = 21
SIGMA = 6
CANVAS = (256, 256)
_BONE_COLOURS = [tuple(int(round(0.6 * c)) for c in colour) for colour in OPENPOSE_COLOURS[: len(COCO18_LIMBS)]]


def annotation_keypoints(kp: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """Our keypoints [18, 2] (x, y) in pixels of ``frame``, NaN = missing -> the official (y, x)
    in the 256x176 annotation frame, -1 = missing (exact for the annotation's integers)."""
    kp = np.asarray(kp)
    if kp.shape != (18, 2):
        raise ValueError(f"cfld pose: needs COCO-18 keypoints [18, 2], got shape {kp.shape}")
    kp = rescale(kp, tuple(frame), DEEPFASHION_ANNOTATION_SIZE).astype(np.float64)
    out = kp[:, ::-1].copy()
    out[~np.isfinite(kp).all(axis=1)] = -1
    return out


def skeleton(cords: np.ndarray, canvas: tuple[int, int] = CANVAS) -> np.ndarray:
    """uint8 [H, W, 3] skeleton of (y, x) annotation-frame points (-1 = missing)."""
    h, w = canvas
    sy, sx = h / DEEPFASHION_ANNOTATION_SIZE[0], w / DEEPFASHION_ANNOTATION_SIZE[1]
    img = np.zeros((h, w, 3), np.uint8)
    missing = (cords == -1).any(axis=1)
    for (a, b), colour in zip(COCO18_LIMBS, _BONE_COLOURS):
        if missing[a] or missing[b]:
            continue
        cv2.line(img, (int(cords[a][1] * sx), int(cords[a][0] * sy)), (int(cords[b][1] * sx), int(cords[b][0] * sy)),
                 colour, 2, cv2.LINE_AA)
    for i, (y, x) in enumerate(cords):
        if not missing[i]:
            cv2.circle(img, (int(x * sx), int(y * sy)), 3, OPENPOSE_COLOURS[i], -1, cv2.LINE_AA)
    return img


def heatmaps(cords: np.ndarray, canvas: tuple[int, int] = CANVAS, sigma: float = SIGMA) -> np.ndarray:
    """float32 [18, H, W] Gaussian heatmaps of (y, x) annotation-frame points (-1 = missing)."""
    h, w = canvas
    ah, aw = DEEPFASHION_ANNOTATION_SIZE
    out = np.zeros((len(cords), h, w), np.float32)
    xx, yy = np.meshgrid(np.arange(w), np.arange(h))
    for i, (y, x) in enumerate(np.asarray(cords, np.float64)):
        if y == -1 or x == -1:
            continue
        cy, cx = int(y / ah * h), int(x / aw * w)
        out[i] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    return out


def render_pose(kp: np.ndarray, frame: tuple[int, int], canvas: tuple[int, int] = CANVAS,
                sigma: float = SIGMA) -> np.ndarray:
    """One pose (our convention) -> float32 [21, H, W]: skeleton / 255, then the 18 heatmaps.
    COCO-WholeBody poses (133 points, PHOENIX) are reduced to their COCO-18 body first."""
    cords = annotation_keypoints(body_keypoints(kp), frame)
    skel = skeleton(cords, canvas).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    return np.concatenate([skel, heatmaps(cords, canvas, sigma)], axis=0)


def render_batch(kps: torch.Tensor, frame: tuple[int, int], canvas: tuple[int, int] = CANVAS,
                 sigma: float = SIGMA) -> torch.Tensor:
    arr = kps.detach().float().cpu().numpy()
    return torch.from_numpy(np.stack([render_pose(k, frame, canvas, sigma) for k in arr]))
