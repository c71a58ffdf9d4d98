"""Keypoint conventions.

In memory a pose is a float32 array [K, 2] of (x, y) pixel coordinates in the frame of the image
the dataset returns; a missing point is NaN (files use -1, the field's convention).

COCO-18 / OpenPose order, as used by DeepFashion annotations (PATN, GFLA, PIDM, CFLD):
0 nose, 1 neck, 2 r-shoulder, 3 r-elbow, 4 r-wrist, 5 l-shoulder, 6 l-elbow, 7 l-wrist,
8 r-hip, 9 r-knee, 10 r-ankle, 11 l-hip, 12 l-knee, 13 l-ankle, 14 r-eye, 15 l-eye, 16 r-ear, 17 l-ear.
"""
from __future__ import annotations

import numpy as np

COCO18_NAMES = [
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
]
# Limbs of the OpenPose skeleton drawing (pairs of COCO-18 indices).
COCO18_LIMBS = [
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
]
# The frame DeepFashion annotations are given in (H, W), and the pad some repos add to reach 256x256.
DEEPFASHION_ANNOTATION_SIZE = (256, 176)
DEEPFASHION_PAD_X = 40

WHOLEBODY133 = 133  # COCO-WholeBody: 17 body, 6 feet, 68 face, 21 + 21 hands


def from_file_values(ys: list[int], xs: list[int]) -> np.ndarray:
    """DeepFashion CSV lists (y list, x list, -1 = missing) -> [K, 2] (x, y) with NaN."""
    kp = np.stack([np.asarray(xs, np.float32), np.asarray(ys, np.float32)], axis=1)
    kp[(kp[:, 0] < 0) | (kp[:, 1] < 0)] = np.nan
    return kp


def to_file_values(kp: np.ndarray) -> tuple[list[int], list[int]]:
    """[K, 2] (x, y) with NaN -> (y list, x list) of ints with -1 for missing."""
    ys, xs = [], []
    for x, y in kp:
        if np.isnan(x) or np.isnan(y):
            ys.append(-1)
            xs.append(-1)
        else:
            ys.append(int(round(float(y))))
            xs.append(int(round(float(x))))
    return ys, xs


def rescale(kp: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> np.ndarray:
    """Scale (x, y) points from one frame size (H, W) to another; NaN stays NaN."""
    sy = to_hw[0] / from_hw[0]
    sx = to_hw[1] / from_hw[1]
    return (kp * np.array([sx, sy], np.float32)).astype(np.float32)


def pad_x(kp: np.ndarray, pad: int = DEEPFASHION_PAD_X) -> np.ndarray:
    """The +40 px x-shift of repos that pad 256x176 DeepFashion images to 256x256."""
    out = kp.copy()
    out[:, 0] += pad
    return out


def visible(kp: np.ndarray) -> np.ndarray:
    return ~np.isnan(kp).any(axis=1)


def drop_outside(kp: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Points outside the frame (0 <= x <= W - 1, 0 <= y <= H - 1: pixel centres at integer
    coordinates) become NaN: a pose detector cannot report them either, and the datasets' files have
    no way to store them (-1 means missing)."""
    H, W = hw
    with np.errstate(invalid="ignore"):
        inside = (kp[:, 0] >= 0) & (kp[:, 0] <= W - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= H - 1)
    out = kp.copy()
    out[~inside] = np.nan
    return out
