"""tOF: TecoGAN's temporal optical-flow difference (Chu et al., "Learning temporal coherence via
self-supervision for GAN-based video generation", ToG 2020), computed as its metrics.py does.

For consecutive frames t-1, t, with generated frames g and ground truth y::

    tOF_t = mean over pixels of || flow(g_{t-1} -> g_t) - flow(y_{t-1} -> y_t) ||_2

thunil/TecoGAN ``metrics.py`` @bc747a4: the frames are 8-bit RGB turned grey with
``cv2.cvtColor(..., COLOR_RGB2GRAY)`` (lines 136-137, 144-145), the flow of each pair is
``cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)`` (147-148), both flow
fields are cut to a central window with ``crop_8x8`` (149-150; the function at 77-92: the largest
multiple of 32 that leaves at least 8 pixels on each side, 224x192 of a 260x210 PHOENIX frame), and
the per-pixel Euclidean norm of the flow difference is averaged (151, 166-168; its comment says
"l1" but the code takes the L2 norm).

**Flow: OpenCV's Farneback, with TecoGAN's parameters.** It is part of OpenCV (nothing to
download, no network weights) and it is the flow TecoGAN's own tOF uses, so these numbers are
TecoGAN's tOF of the same frames. OpenCV's DIS flow would also need no download, but it is another
flow: its values would not be comparable with TecoGAN's. ``crop="none"`` averages over the whole
frame instead.

Differences from TecoGAN's script, where its setting is not a metric's: it leaves out the first and
last two frames of each of its test sequences (``cutfr = 2``, line 117: boundary frames of its
video super-resolution clips); here every consecutive pair of a video counts. A video's value is the
mean of its transitions and the result the mean over videos with a CI over videos (TecoGAN prints
both the mean over frames and the mean over folders). Values are in pixels of the evaluation frame.
"""
from __future__ import annotations

from itertools import pairwise

import numpy as np

from fpdm_bench.images import to_uint8
from fpdm_bench.metrics.base import SequenceMetric

#: cv2.calcOpticalFlowFarneback(prev, next, None, *FARNEBACK): TecoGAN metrics.py:147-148
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)  # pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags
CROPS = ("tecogan", "none")


def tecogan_crop(h: int, w: int) -> tuple[slice, slice]:
    """TecoGAN's ``crop_8x8`` (metrics.py:77-92) as (rows, columns): each side the largest multiple of
    32 that leaves at least 16 pixels (8 on each side), centred."""
    ch, cw = h // 32 * 32, w // 32 * 32
    while ch > h - 16:
        ch -= 32
    while cw > w - 16:
        cw -= 32
    y, x = (h - ch) // 2, (w - cw) // 2
    return slice(y, y + ch), slice(x, x + cw)


def crop_window(crop: str, h: int, w: int) -> tuple[slice, slice]:
    """The window a ``crop`` setting keeps of an h x w frame: TecoGAN's (``tecogan``; frames too small
    to keep anything after it, under 48 pixels a side, are not cropped) or the whole frame (``none``)."""
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; known: {', '.join(CROPS)}")
    if crop == "tecogan" and min(h, w) >= 48:
        return tecogan_crop(h, w)
    return slice(0, h), slice(0, w)


def grey(frames) -> list[np.ndarray]:
    """[F, 3, H, W] in [0, 1] -> F uint8 grey images, as TecoGAN reads them (8-bit RGB -> RGB2GRAY)."""
    import cv2

    return [cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY) for a in to_uint8(frames)]


def flows(grey_frames: list[np.ndarray]) -> list[np.ndarray]:
    """Farneback flow [H, W, 2] from each frame to the next (TecoGAN's parameters)."""
    import cv2

    return [cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK) for a, b in pairwise(grey_frames)]


def tof(generated, target, crop: str = "tecogan") -> np.ndarray:
    """[F-1] tOF of each consecutive pair of frames of [F, 3, H, W] videos in [0, 1]."""
    fg, fy = flows(grey(generated)), flows(grey(target))
    rows, cols = crop_window(crop, *generated.shape[-2:])
    out = []
    for a, b in zip(fg, fy):
        d = b[rows, cols].astype(np.float64) - a[rows, cols].astype(np.float64)
        out.append(float(np.sqrt((d * d).sum(-1)).mean()))
    return np.asarray(out, np.float64)


class TOF(SequenceMetric):
    """TecoGAN's tOF: mean ||flow(generated) - flow(ground truth)|| of consecutive frames (Farneback)."""

    name = "tof"
    higher_is_better = False
    title, latex_title = "tOF", "tOF"
    order = 120

    def __init__(self, key: str | None = None, crop: str = "tecogan"):
        super().__init__(key)
        crop_window(crop, 64, 64)  # refuse an unknown crop when the protocol is read
        self.crop = crop

    def settings(self) -> dict:
        return {"flow": "cv2.calcOpticalFlowFarneback" + str(FARNEBACK), "grey": "cv2 RGB2GRAY of 8-bit frames",
                "crop": self.crop, "norm": "L2 of the flow difference, mean over pixels"}

    def transitions(self, generated, target):
        return tof(generated, target, self.crop)
