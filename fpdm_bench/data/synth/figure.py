"""Drawing a textured, articulated person from its keypoints.

Each body part is a capsule (or the torso quadrilateral) whose clothing texture is laid out in the
part's own coordinates and mapped onto the canvas with the same affine map as the part, so a
pattern moves with the limb the way real clothing does. Parts are drawn back to front, which gives
self-occlusion (the far arm behind the torso in a side view, the face hidden in a back view).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Look:
    """Everything that makes an identity recognisable, fixed across its poses."""

    skin: tuple
    hair: tuple
    top: tuple  # two colours each for the clothing patterns
    top2: tuple
    bottom: tuple
    bottom2: tuple
    shoes: tuple
    top_pattern: str  # plain | stripes | checks | dots
    bottom_pattern: str
    stripe_period: float
    long_sleeves: bool
    skirt: bool
    bg_top: tuple
    bg_bottom: tuple
    hair_long: bool


PATTERNS = ("plain", "stripes", "checks", "dots")


def random_look(rng: np.random.Generator) -> Look:
    def colour(lo=30, hi=230):
        return tuple(int(c) for c in rng.integers(lo, hi, 3))

    skin_base = rng.choice([[224, 188, 160], [198, 150, 115], [160, 110, 80], [110, 75, 55], [240, 205, 180]])
    skin = tuple(int(np.clip(c + rng.integers(-12, 12), 0, 255)) for c in skin_base)
    hair = tuple(int(c) for c in rng.choice([[30, 25, 20], [90, 60, 30], [200, 170, 90], [140, 50, 30], [60, 60, 60]]))
    bg = colour(150, 250)
    return Look(
        skin=skin, hair=hair, top=colour(), top2=colour(), bottom=colour(20, 200), bottom2=colour(),
        shoes=colour(10, 90), top_pattern=str(rng.choice(PATTERNS)), bottom_pattern=str(rng.choice(PATTERNS[:3])),
        stripe_period=float(rng.uniform(6, 14)), long_sleeves=bool(rng.random() < 0.5), skirt=bool(rng.random() < 0.3),
        bg_top=bg, bg_bottom=tuple(int(np.clip(c - rng.integers(20, 70), 0, 255)) for c in bg),
        hair_long=bool(rng.random() < 0.4),
    )


def texture(shape_hw: tuple[int, int], c1: tuple, c2: tuple, pattern: str, period: float, phase: float = 0.0) -> np.ndarray:
    """A pattern in part-local coordinates: rows run along the part, columns across it."""
    h, w = shape_hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if pattern == "stripes":
        m = (np.floor((yy + phase) / period) % 2) == 0
    elif pattern == "checks":
        m = ((np.floor((yy + phase) / period) + np.floor(xx / period)) % 2) == 0
    elif pattern == "dots":
        cy = (yy + phase) % period - period / 2
        cx = xx % period - period / 2
        m = (cx**2 + cy**2) > (period * 0.28) ** 2
    else:
        m = np.ones((h, w), bool)
    out = np.empty((h, w, 3), np.uint8)
    out[m] = c1
    out[~m] = c2
    # gentle shading across the part so it reads as round rather than flat
    shade = 0.82 + 0.18 * np.sin(np.pi * (xx + 0.5) / w)
    return np.clip(out * shade[..., None], 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> None:
    """Warp a part-local patch (and its mask) onto the canvas with a 2x3 affine matrix."""
    H, W = canvas.shape[:2]
    warped = cv2.warpAffine(patch, matrix, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    m = cv2.warpAffine(mask, matrix, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = (m.astype(np.float32) / 255.0)[..., None]
    canvas[:] = (canvas * (1 - a) + warped * a + 0.5).astype(np.uint8)


def draw_limb(canvas, p0, p1, width, c1, c2, pattern, period, extend=(0.0, 0.0)) -> None:
    """A capsule from p0 to p1 of the given width, textured along its axis."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = p1 - p0
    length = float(np.hypot(*d))
    if length < 1e-3:
        return
    u = d / length
    a, b = p0 - u * extend[0], p1 + u * extend[1]
    L = int(np.ceil(length + extend[0] + extend[1])) + 1
    w = max(int(np.ceil(width)), 2)
    patch = texture((L + w, w), c1, c2, pattern, period)
    mask = np.zeros((L + w, w), np.uint8)
    cv2.rectangle(mask, (0, w // 2), (w - 1, L + w // 2), 255, -1)
    cv2.circle(mask, (w // 2, w // 2), w // 2, 255, -1, lineType=cv2.LINE_AA)
    cv2.circle(mask, (w // 2, L + w // 2), w // 2, 255, -1, lineType=cv2.LINE_AA)
    # local (x across, y along) -> canvas: y axis maps onto u, x axis onto the normal
    n = np.array([-u[1], u[0]], np.float32)
    origin = a - u * (w / 2) - n * (w / 2)
    src = np.float32([[0, 0], [w, 0], [0, L + w]])
    dst = np.float32([origin, origin + n * w, origin + u * (L + w)])
    _paste(canvas, patch, mask, cv2.getAffineTransform(src, dst))
    _ = b  # b is implied by L; kept for readability of the geometry


def draw_torso(canvas, r_sho, l_sho, r_hip, l_hip, c1, c2, pattern, period, flip: bool) -> None:
    """Torso quadrilateral, textured in torso coordinates (mapped by the shoulder/hip frame)."""
    quad = np.float32([r_sho, l_sho, l_hip, r_hip])
    top_w = float(np.hypot(*(quad[1] - quad[0])))
    h = float(np.hypot(*((quad[2] + quad[3]) / 2 - (quad[0] + quad[1]) / 2)))
    pw, ph = max(int(top_w) + 8, 8), max(int(h) + 8, 8)
    patch = texture((ph, pw), c1, c2, pattern, period)
    if flip:
        patch = patch[:, ::-1].copy()
    src = np.float32([[4, 4], [pw - 4, 4], [pw - 4, ph - 4]])
    m = cv2.getAffineTransform(src, np.float32([quad[0], quad[1], quad[2]]))
    H, W = canvas.shape[:2]
    warped = cv2.warpAffine(patch, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = np.zeros((H, W), np.uint8)
    # a slightly rounded torso: the quad plus round shoulders
    cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 255, lineType=cv2.LINE_AA)
    r = max(int(top_w * 0.16), 2)
    for p in (quad[0], quad[1]):
        cv2.circle(mask, tuple(int(v) for v in np.round(p)), r, 255, -1, lineType=cv2.LINE_AA)
    a = (mask.astype(np.float32) / 255.0)[..., None]
    canvas[:] = (canvas * (1 - a) + warped * a + 0.5).astype(np.uint8)


def background(h: int, w: int, look: Look, floor_y: float, rng: np.random.Generator) -> np.ndarray:
    """Vertical gradient wall + a darker floor band from floor_y down, with faint noise texture."""
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    wall = (np.array(look.bg_top, np.float32) * (1 - t * 0.5) + np.array(look.bg_bottom, np.float32) * t * 0.5)
    img = np.repeat(wall, w, axis=1)
    fy = int(np.clip(floor_y, 0, h))
    img[fy:] = img[fy:] * 0.85
    img += rng.normal(0, 3.0, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)
