"""PoCoLD's pose input: a DensePose part-index map as a 25-class one-hot (background + 24 parts).

PoCoLD conditions on the DensePose of the *target* image (docs/models/pocold.md). A keypoint-only
benchmark has none, so ``render_parts`` draws a stand-in from the COCO-18 keypoints: each body
segment a filled polygon labelled with DensePose's part id, on the generation canvas. This is the
documented deviation for keypoint-only data; real DensePose maps (a folder of part-index PNGs, one
per image) are used instead when given (``load_parts``).

DensePose's part ids (the DensePose-COCO annotation convention; for parts with two ids, front and
back, the first is used): 1/2 torso, 3 right hand, 4 left hand, 5 left foot, 6 right foot, 7/9 right
upper leg, 8/10 left upper leg, 11/13 right lower leg, 12/14 left lower leg, 15/17 left upper arm,
16/18 right upper arm, 19/21 left lower arm, 20/22 right lower arm, 23/24 head ("right" = the
person's right, as COCO's).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from fpdm_bench.data.keypoints import rescale
from fpdm_bench.modeling.pose import body_keypoints, fpdm_limb_polygon

N_CLASSES = 25
TORSO, HEAD = 2, 23
# (COCO-18 start, end) -> part id; drawn in this order, later parts over earlier ones
SEGMENTS = [((8, 9), 7), ((9, 10), 11), ((11, 12), 8), ((12, 13), 12),      # legs
            ((2, 3), 16), ((3, 4), 20), ((5, 6), 15), ((6, 7), 19)]          # arms
ENDS = [(4, 3), (7, 4), (10, 6), (13, 5)]   # (wrist/ankle, part id): right hand, left hand, right foot, left foot
TORSO_POINTS = (2, 5, 11, 8)                # right shoulder, left shoulder, left hip, right hip
LIMB_WIDTH = 0.03                           # half-width of a limb, as a fraction of the canvas height
END_RADIUS = 0.025                          # hands and feet: discs of this radius (fraction of the height)


def render_parts(kp: np.ndarray, frame: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """Keypoints [18 or 133, 2] (x, y) in pixels of ``frame``, NaN = missing -> uint8 [H, W] part ids
    on ``canvas`` (0 = background). A part with a missing keypoint is not drawn."""
    pts = rescale(body_keypoints(np.asarray(kp, np.float64)), tuple(frame), tuple(canvas))
    ok = np.isfinite(pts).all(axis=1)
    h, w = int(canvas[0]), int(canvas[1])
    out = np.zeros((h, w), np.uint8)
    if all(ok[i] for i in TORSO_POINTS):
        cv2.fillPoly(out, [np.round(pts[list(TORSO_POINTS)]).astype(np.int32)], TORSO)
    width = max(1, int(round(LIMB_WIDTH * h)))
    for (a, b), part in SEGMENTS:
        if ok[a] and ok[b]:
            cv2.fillPoly(out, [fpdm_limb_polygon(pts[[a, b]], width)], part)
    radius = max(1, int(round(END_RADIUS * h)))
    for i, part in ENDS:
        if ok[i]:
            cv2.circle(out, tuple(int(round(v)) for v in pts[i]), radius, part, thickness=-1)
    if ok[0] and ok[1]:  # head: a disc at the nose, its radius 0.6 of the nose-neck distance
        r = max(1, int(round(0.6 * float(np.hypot(*(pts[0] - pts[1]))))))
        cv2.circle(out, tuple(int(round(v)) for v in pts[0]), r, HEAD, thickness=-1)
    return out


def one_hot(parts: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Part ids uint8 [H, W] -> float32 one-hot [25, h, w] at ``size`` = (h, w), downsampled with PIL's
    NEAREST as the official transform does (``src/transform.py:31-44``); PIL's nearest is neither
    torch's ``nearest`` nor ``nearest-exact`` (they differ at exact half-way points)."""
    from PIL import Image

    small = np.asarray(Image.fromarray(np.ascontiguousarray(parts, dtype=np.uint8)).resize(
        (int(size[1]), int(size[0])), Image.NEAREST))
    if small.max() >= N_CLASSES:
        raise ValueError(f"pocold parts: part ids must be < {N_CLASSES}, found {int(small.max())}")
    return torch.from_numpy(np.eye(N_CLASSES, dtype=np.float32)[small]).permute(2, 0, 1).contiguous()


def densepose_one_hot(iuv: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """A DensePose IUV image as PIL reads it, uint8 [H, W, 3] -> one-hot [25, h, w]: the part index I
    is channel 2 (``src/transform.py:96-109``: "only use I of densepose")."""
    iuv = np.asarray(iuv)
    if iuv.ndim != 3 or iuv.shape[2] < 3:
        raise ValueError(f"pocold densepose: expected an RGB IUV image [H, W, 3], got shape {iuv.shape}")
    return one_hot(iuv[:, :, 2], size)
