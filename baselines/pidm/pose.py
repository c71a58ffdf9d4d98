"""PIDM's target-pose input: an RGB OpenPose skeleton + 17 per-limb distance maps (20 channels).

Facts (github.com/ankanbhunia/PIDM at e4f1d88, ``data/fashion_data.py``, read, never copied):
- ``get_label_tensor`` (:170-219): the skeleton is the OpenPose drawing FPDM's official code also
  uses (joints of radius 4, 17 of the 19 limbs as ellipses of half-width 4 blended at 0.6, drawn
  as BGR then converted to RGB) - here ``fpdm_bench.modeling.pose.draw_fpdm_skeleton``, checked pixel for
  pixel against both official functions. For each of the 17 limbs a mask (the limb's polygon filled
  with 255; all zero when an end is missing) gives ``cv2.distanceTransform(255 - mask, DIST_L1, 3)``,
  divided by 3, clipped to [0, 255] and truncated to uint8: 0 on the limb, growing away from it.
  Everything is ``ToTensor``-scaled to [0, 1] (no normalisation to [-1, 1]).
- ``trans_keypoins`` (:221-247): pose files give x in the 40-px-padded 256-wide frame; the code
  removes the pad and scales to the image it loads, which is the 256x176 picture *stretched* to
  256x256 (``data/prepare_data.py:24``: ``resize(img, (256, 256), BICUBIC)``; PIDM issue #26: "We
  resize the images ... Image.BICUBIC"). So the published model sees people squashed 176 -> 256 in
  width, and its keypoints follow: x_canvas = x_176 * (1/176 * W) / W * W, y likewise with 256
  (the official float operations, kept so int() truncates the same values).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from fpdm_bench.data.keypoints import DEEPFASHION_ANNOTATION_SIZE, rescale
from fpdm_bench.modeling.pose import FPDM_LIMBS, body_keypoints, draw_fpdm_skeleton, fpdm_limb_polygon

POSE_CHANNELS = 20  # 3 RGB skeleton + 17 limb distance maps


def canvas_keypoints(kp: np.ndarray, frame: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """COCO-18 points [18, 2] (x, y) in pixels of ``frame`` (H, W), NaN = missing -> float64 points
    on the ``canvas`` (H, W), -1 = missing, with the official arithmetic. The official annotation
    frame is 256x176; points in another frame are first brought to it."""
    kp = np.asarray(kp)
    if kp.shape != (18, 2):
        raise ValueError(f"pidm pose: needs COCO-18 keypoints [18, 2], got shape {kp.shape}")
    ah, aw = DEEPFASHION_ANNOTATION_SIZE
    kp = rescale(kp, tuple(frame), (ah, aw)).astype(np.float64)
    missing = ~np.isfinite(kp).all(axis=1)
    x, y = kp[:, 0], kp[:, 1]
    h, w = canvas
    scale_w = 1.0 / aw * w / w * w  # trans_keypoins: 1/176 * img_w, then / img_w * new_w
    scale_h = 1.0 / ah * h / h * h
    out = np.stack([x * scale_w, y * scale_h], axis=1)
    out[missing] = -1
    return out


def limb_distance_maps(canvas_kp: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """[17, H, W] uint8: L1 distance (/3, clipped, truncated) to each limb's polygon."""
    h, w = canvas
    maps = np.empty((len(FPDM_LIMBS), h, w), np.uint8)
    for i, (a, b) in enumerate(FPDM_LIMBS):
        mask = np.zeros((h, w), np.uint8)
        ends = canvas_kp[[a, b]]
        if not (ends == -1).any():
            cv2.fillConvexPoly(mask, fpdm_limb_polygon(ends), 255)
        dist = cv2.distanceTransform(255 - mask, cv2.DIST_L1, 3)
        maps[i] = np.clip(dist / 3, 0, 255).astype(np.uint8)
    return maps


def render_pose(kp: np.ndarray, frame: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """One pose -> uint8 [20, H, W] (skeleton RGB, then the limb maps) at ``canvas``. COCO-WholeBody
    poses (133 points, PHOENIX) are reduced to their COCO-18 body first (PIDM draws no hands or face)."""
    pts = canvas_keypoints(body_keypoints(kp), frame, canvas)
    rgb = draw_fpdm_skeleton(pts, canvas).transpose(2, 0, 1)
    return np.concatenate([rgb, limb_distance_maps(pts, canvas)], axis=0)


def render_batch(kps: torch.Tensor, frame: tuple[int, int], canvas: tuple[int, int]) -> torch.Tensor:
    """Poses [B, 18, 2] (pixels of ``frame``) -> float [B, 20, H, W] in [0, 1] (uint8 / 255)."""
    arr = kps.detach().float().cpu().numpy()
    out = np.stack([render_pose(k, frame, canvas) for k in arr])
    return torch.from_numpy(out).float().div_(255.0)
