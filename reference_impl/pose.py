"""OpenPose-style skeleton images: the pose input of both FPDM stages.

A pose is float [K, 2] (x, y) in pixels of the image it belongs to, NaN = missing (see
``fpdm_bench.data.keypoints``). It is drawn as coloured limbs and joints on black, the picture
OpenPose/ControlNet-style models are trained on:

- K = 18: COCO-18 / OpenPose order, limbs from ``COCO18_LIMBS``.
- K = 133: COCO-WholeBody (0-16 body in COCO-17 order, 17-22 feet, 23-90 face, 91-111 left hand,
  112-132 right hand). The body is mapped to COCO-18 (neck = mid-shoulders, as OpenPose defines
  it) and drawn like K = 18; both hands get their finger chains; face points are small white dots.

Drawing uses OpenCV with sub-pixel coordinates and hard (not anti-aliased) edges, as OpenPose's
own drawing does, and no randomness: the same keypoints always give the same bytes.
"""
from __future__ import annotations

import colorsys

import cv2
import numpy as np
import torch

from fpdm_bench.data.keypoints import COCO18_LIMBS, WHOLEBODY133

# One colour per joint / limb: a hue wheel in 18 steps of 20 degrees (the OpenPose palette).
_BODY_COLOURS = [tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(i / 18.0, 1.0, 1.0))
                 for i in range(18)]

# COCO-17 (WholeBody body part) index for each COCO-18 joint; the neck (1) has none, it is derived.
_COCO17_FOR_COCO18 = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]

# A 21-point hand: wrist 0, then four joints per finger (thumb 1-4 ... little 17-20).
_HAND_LIMBS = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
               (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18),
               (18, 19), (19, 20)]
_HAND_COLOURS = [tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(i / len(_HAND_LIMBS), 1.0, 1.0))
                 for i in range(len(_HAND_LIMBS))]
_WB_FACE = slice(23, 91)
_WB_LEFT_HAND = slice(91, 112)
_WB_RIGHT_HAND = slice(112, 133)


def stroke_width(size: tuple[int, int]) -> float:
    """Limb thickness in pixels: 4 px at 256 px (the OpenPose look), proportional to the image, >= 1."""
    return max(1.0, min(size) * 4 / 256)


def wholebody_to_coco18(kp: np.ndarray) -> np.ndarray:
    """COCO-WholeBody [133, 2] -> COCO-18 [18, 2]; the neck is the mid-point of the shoulders."""
    out = np.full((18, 2), np.nan, np.float32)
    for j18, j17 in enumerate(_COCO17_FOR_COCO18):
        if j17 is not None:
            out[j18] = kp[j17]
    out[1] = (kp[5] + kp[6]) / 2  # NaN if either shoulder is missing
    return out


_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel geometry, so widths scale smoothly with size
_ONE = 1 << _SHIFT


def _ok(p: np.ndarray) -> bool:
    return bool(np.isfinite(p).all())


def _fixed(xy) -> np.ndarray:
    return np.round(np.asarray(xy, np.float64) * _ONE).astype(np.int32)


def _draw_limbs(canvas, kp, limbs, colours, width: float):
    """Each limb is a filled band of `width` px between its two joints (OpenPose draws ellipses)."""
    for (a, b), colour in zip(limbs, colours):
        if not (_ok(kp[a]) and _ok(kp[b])):
            continue
        pa, pb = kp[a].astype(np.float64), kp[b].astype(np.float64)
        d = pb - pa
        length = float(np.hypot(*d))
        if length < 1e-6:
            continue
        n = np.array([-d[1], d[0]]) / length * (width / 2)
        quad = _fixed([pa + n, pb + n, pb - n, pa - n])
        cv2.fillConvexPoly(canvas, quad, colour, lineType=cv2.LINE_8, shift=_SHIFT)


def _draw_joints(canvas, kp, colours, radius: float):
    for p, colour in zip(kp, colours):
        if _ok(p):
            cv2.circle(canvas, tuple(int(v) for v in _fixed(p)), int(round(radius * _ONE)), colour,
                       thickness=-1, lineType=cv2.LINE_8, shift=_SHIFT)


def render_skeleton(kp: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Draw one pose as an RGB skeleton on black.

    kp: [K, 2] (x, y) pixels, NaN = missing, K = 18 (COCO-18) or 133 (COCO-WholeBody).
    size: (H, W) of the image. Returns uint8 [H, W, 3]. Missing points and limbs touching them are
    skipped; points outside the frame are clipped by the drawing, not moved.
    """
    kp = np.asarray(kp, dtype=np.float32)
    if kp.ndim != 2 or kp.shape[1] != 2:
        raise ValueError(f"keypoints must be [K, 2], got shape {kp.shape}")
    h, w = int(size[0]), int(size[1])
    canvas = np.zeros((h, w, 3), np.uint8)
    width = stroke_width((h, w))
    if kp.shape[0] == 18:
        body, wholebody = kp, None
    elif kp.shape[0] == WHOLEBODY133:
        body, wholebody = wholebody_to_coco18(kp), kp
    else:
        raise ValueError(f"unsupported keypoint count {kp.shape[0]} (expected 18 or {WHOLEBODY133})")

    # Limbs first, then joints on top, as OpenPose draws them.
    _draw_limbs(canvas, body, COCO18_LIMBS, _BODY_COLOURS, width)
    _draw_joints(canvas, body, _BODY_COLOURS, width * 0.75)
    if wholebody is not None:
        hand_width = max(1.0, width / 2)
        for hand in (wholebody[_WB_LEFT_HAND], wholebody[_WB_RIGHT_HAND]):
            _draw_limbs(canvas, hand, _HAND_LIMBS, _HAND_COLOURS, hand_width)
            _draw_joints(canvas, hand, [(0, 0, 255)] * len(hand), hand_width * 0.75)
        face_radius = max(0.75, width / 3)
        _draw_joints(canvas, wholebody[_WB_FACE], [(255, 255, 255)] * 68, face_radius)
    return canvas


def render_batch(kps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Render a batch of poses [B, K, 2] to float [B, 3, H, W] in [0, 1] (on the keypoints' device)."""
    arr = kps.detach().float().cpu().numpy()
    imgs = np.stack([render_skeleton(k, size) for k in arr]) if len(arr) else np.zeros((0, size[0], size[1], 3), np.uint8)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255.0).to(kps.device)
