"""Perturbations of the source image (and of ``source_kp`` where the geometry changes).

The source is the appearance the model has to transfer; these model a worse photo of the person.
Images are float [3, H, W] in [0, 1]; every output keeps the input's shape, dtype and device and is
clamped to [0, 1]. Sizes in pixels are pixels of the frame the sample has.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fpdm_bench.images import from_uint8, jpeg_round_trip, to_uint8
from fpdm_bench.perturb.base import (
    SKELETON, TORSO, Perturbation, flip_permutation, kp_like, kp_to_numpy, visible,
)


class SourcePerturbation(Perturbation):
    applies_to = "source"

    def apply(self, sample, value, rng, keypoint_format):
        out = dict(sample)
        out["source"] = self.change(sample["source"], kp_to_numpy(sample["source_kp"]), value, rng,
                                    keypoint_format).clamp(0, 1).to(sample["source"].dtype)
        return out

    def change(self, image: torch.Tensor, kp: np.ndarray, value, rng: np.random.Generator,
               keypoint_format: str) -> torch.Tensor:
        """Return a new [3, H, W] image; ``kp`` (float64 numpy) is the source pose, read only."""
        raise NotImplementedError


def keypoint_box(kp: np.ndarray, hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the visible points, clipped to the frame; the whole frame if none."""
    H, W = hw
    vis = visible(kp)
    if not vis.any():
        return 0.0, 0.0, W - 1.0, H - 1.0
    x0, y0 = np.clip(kp[vis].min(axis=0), 0, [W - 1, H - 1])
    x1, y1 = np.clip(kp[vis].max(axis=0), 0, [W - 1, H - 1])
    return float(x0), float(y0), float(x1), float(y1)


class Occlusion(SourcePerturbation):
    """A mid-grey rectangle hides part of the source; area fraction of the image = 0.05, 0.1, 0.2, 0.3, 0.4.

    The rectangle's aspect ratio is random (log-uniform in [1/2, 2]) and its centre uniform in the
    bounding box of the visible source keypoints (the whole image if none), so it usually covers the
    person; it is then moved, not cut, to lie inside the image. ``source_kp`` is unchanged: the
    hidden points are still where they were.
    """

    name = "source.occlusion"
    unit = "area fraction"
    levels = (0.05, 0.1, 0.2, 0.3, 0.4)
    FILL = 0.5

    def change(self, image, kp, value, rng, keypoint_format):
        H, W = image.shape[-2:]
        area = value * H * W
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))  # height / width
        h = min(H, max(1, round(math.sqrt(area * aspect))))
        w = min(W, max(1, round(area / h)))
        h = min(H, max(1, round(area / w)))  # when w hit the image width, h takes up the rest
        x0, y0, x1, y1 = keypoint_box(kp, (H, W))
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        left = min(max(0, round(cx - w / 2)), W - w)
        top = min(max(0, round(cy - h / 2)), H - h)
        out = image.clone()
        out[:, top:top + h, left:left + w] = self.FILL
        return out


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [3, H, W], kernel radius ceil(3σ), edges replicated."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).to(torch.float32)
    img = image.to(torch.float32)[None]  # [1, 3, H, W]
    img = F.pad(img, (radius, radius, radius, radius), mode="replicate")
    img = F.conv2d(img, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1).to(img.device), groups=3)
    img = F.conv2d(img, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1).to(img.device), groups=3)
    return img[0]


class Blur(SourcePerturbation):
    """Gaussian blur of the source; σ (px) = 1, 2, 3, 5, 8 (no randomness)."""

    name = "source.blur"
    unit = "px σ"
    levels = (1.0, 2.0, 3.0, 5.0, 8.0)
    random = False

    def change(self, image, kp, value, rng, keypoint_format):
        return gaussian_blur(image, value)


class Color(SourcePerturbation):
    """Brightness and contrast of the source change by a relative amount = 0.1, 0.2, 0.3, 0.4, 0.5.

    Brightness multiplies the image by 1 ± amount, then contrast moves every pixel away from (1 +
    amount) or towards (1 - amount) the image's mean grey level (torchvision's adjust_brightness and
    adjust_contrast); each sign is random. Grey level = 0.299 R + 0.587 G + 0.114 B.
    """

    name = "source.color"
    unit = "relative change"
    levels = (0.1, 0.2, 0.3, 0.4, 0.5)

    def change(self, image, kp, value, rng, keypoint_format):
        brightness = 1 + value * (1 if rng.random() < 0.5 else -1)
        contrast = 1 + value * (1 if rng.random() < 0.5 else -1)
        x = (image.to(torch.float32) * brightness).clamp(0, 1)
        grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mean()
        return (grey + contrast * (x - grey)).clamp(0, 1)


class Jpeg(SourcePerturbation):
    """The source is re-encoded as JPEG; quality = 50, 30, 20, 10, 5 (no randomness).

    PIL (libjpeg), 4:2:0 chroma subsampling, from the image rounded to 8 bits. The output is
    bit-identical for the same PIL/libjpeg build; another libjpeg version may differ in the last bit.
    """

    name = "source.jpeg"
    unit = "JPEG quality"
    levels = (50, 30, 20, 10, 5)
    random = False

    def change(self, image, kp, value, rng, keypoint_format):
        arr = jpeg_round_trip(to_uint8(image[None])[0], int(value), subsampling="4:2:0")
        return from_uint8(np.array(arr)[None])[0].to(image.device)


class Downsample(SourcePerturbation):
    """The source is shrunk by a factor and scaled back up (a low-resolution photo); factor = 2, 3, 4, 6, 8.

    Down: bilinear with antialiasing to round(H / factor) x round(W / factor); up: bilinear back to
    H x W (no randomness).
    """

    name = "source.downsample"
    unit = "downscale factor"
    levels = (2, 3, 4, 6, 8)
    random = False

    def change(self, image, kp, value, rng, keypoint_format):
        H, W = image.shape[-2:]
        small = (max(1, round(H / value)), max(1, round(W / value)))
        x = image.to(torch.float32)[None]
        x = F.interpolate(x, size=small, mode="bilinear", antialias=True, align_corners=False)
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        return x[0]


def person_mask(kp: np.ndarray, hw: tuple[int, int], keypoint_format: str, radius_fraction: float) -> np.ndarray:
    """Bool [H, W]: pixels within ``radius_fraction x pose size`` of the skeleton of the visible points.

    Pose size = the longer side of the visible points' bounding box (at least 2 px of radius). The
    skeleton is ``base.SKELETON`` (bones whose two ends are visible) plus every visible point on its
    own (face and finger points in COCO-WholeBody), plus the filled torso (``torso_polygon``). No
    visible point: an all-False mask.
    """
    H, W = hw
    mask = np.zeros((H, W), bool)
    vis = visible(kp)
    if not vis.any():
        return mask
    size = float((kp[vis].max(axis=0) - kp[vis].min(axis=0)).max())
    radius = max(2.0, radius_fraction * size)
    ys, xs = np.mgrid[0:H, 0:W]
    px, py = xs.astype(np.float64), ys.astype(np.float64)
    dist = np.full((H, W), np.inf)
    segments = [(a, b) for a, b in SKELETON[keypoint_format] if vis[a] and vis[b]]
    segments += [(i, i) for i in np.flatnonzero(vis)]
    for a, b in segments:
        (ax, ay), (bx, by) = kp[a], kp[b]
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0, 1)
        dist = np.minimum(dist, np.hypot(px - (ax + t * dx), py - (ay + t * dy)))
    mask[dist <= radius] = True
    torso = torso_polygon(kp, hw, keypoint_format)
    if torso is not None:
        mask |= inside_polygon(px, py, torso)
    return mask


def torso_polygon(kp: np.ndarray, hw: tuple[int, int], keypoint_format: str) -> np.ndarray | None:
    """Corners (right shoulder, left shoulder, left hip, right hip) of the torso, or None without both
    shoulders. A missing hip is taken to be at the bottom of the frame under its shoulder: on
    PHOENIX and on DeepFashion's close-ups the hips are missing because they are below the frame."""
    r_sho, l_sho, r_hip, l_hip = TORSO[keypoint_format]
    vis = visible(kp)
    if not (vis[r_sho] and vis[l_sho]):
        return None
    bottom = float(hw[0])  # just past the last row, so the last row is inside
    rh = kp[r_hip] if vis[r_hip] else np.array([kp[r_sho][0], bottom])
    lh = kp[l_hip] if vis[l_hip] else np.array([kp[l_sho][0], bottom])
    return np.stack([kp[r_sho], kp[l_sho], lh, rh])


def inside_polygon(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Bool mask of the points (px, py) inside a polygon [N, 2] (even-odd rule)."""
    inside = np.zeros(px.shape, bool)
    for (ax, ay), (bx, by) in zip(poly, np.roll(poly, -1, axis=0)):
        if ay == by:
            continue
        crosses = (ay > py) != (by > py)
        x_at = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (px < x_at)
    return inside


class Background(SourcePerturbation):
    """The source's background is blended towards random coloured noise; strength = 0.2, 0.4, 0.6, 0.8, 1.0.

    Background = pixels outside the torso and farther than 12 % of the pose size from the skeleton
    of the visible source keypoints (``person_mask``). It is a rough rule: a band of the original
    background stays round the person, and hair or loose clothes may count as background. With no
    visible source keypoint the whole image is background. The fill is half a random colour, half
    per-pixel uniform noise; background pixels become ``(1 - strength) x pixel + strength x fill``,
    so strength 1 replaces them.
    """

    name = "source.background"
    unit = "blend strength"
    levels = (0.2, 0.4, 0.6, 0.8, 1.0)
    RADIUS_FRACTION = 0.12

    def change(self, image, kp, value, rng, keypoint_format):
        H, W = image.shape[-2:]
        colour = rng.uniform(0.0, 1.0, size=(3, 1, 1))
        fill = 0.5 * colour + 0.5 * rng.uniform(0.0, 1.0, size=(3, H, W))
        background = ~person_mask(kp, (H, W), keypoint_format, self.RADIUS_FRACTION)
        x = image.to(torch.float32)
        fill_t = torch.from_numpy(fill.astype(np.float32)).to(x.device)
        blended = (1 - value) * x + value * fill_t
        bg = torch.from_numpy(background).to(x.device)
        return torch.where(bg[None], blended, x)


class Flip(SourcePerturbation):
    """The source image is mirrored left-right, with its keypoints; level = 1 at every severity.

    ``source_kp`` is mirrored (x -> W - 1 - x, pixel centres at integer x) and its left/right labels
    are swapped (``base.flip_permutation``), so a left wrist is still labelled left wrist. The
    parameter has one value, so severities 1..5 all give the same result (no randomness).
    """

    name = "source.flip"
    unit = "on/off"
    levels = (1, 1, 1, 1, 1)
    random = False

    def apply(self, sample, value, rng, keypoint_format):
        W = sample["source"].shape[-1]
        kp = kp_to_numpy(sample["source_kp"])
        mirrored = kp.copy()
        mirrored[:, 0] = (W - 1) - kp[:, 0]
        out = dict(sample)
        out["source"] = sample["source"].flip(-1)
        out["source_kp"] = kp_like(mirrored[flip_permutation(keypoint_format)], sample["source_kp"])
        return out


# The registered instances: named in pyproject.toml's ``fpdm_bench.perturbations`` entry points.
OCCLUSION, BLUR, COLOR, JPEG, DOWNSAMPLE, BACKGROUND, FLIP = (Occlusion(), Blur(), Color(), Jpeg(), Downsample(),
                                                              Background(), Flip())
SOURCE_PERTURBATIONS = [OCCLUSION, BLUR, COLOR, JPEG, DOWNSAMPLE, BACKGROUND, FLIP]

__all__ = ["SOURCE_PERTURBATIONS", "SourcePerturbation", "Occlusion", "Blur", "Color", "Jpeg", "Downsample",
           "Background", "Flip", "gaussian_blur", "person_mask"]
