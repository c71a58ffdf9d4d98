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
    bg_texture: float  # amplitude of the backdrop's blotches
    bg_seed: int
    floor: float  # where the floor starts, fraction of the frame height


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
        shoes=colour(10, 90), top_pattern=str(rng.choice(PATTERNS, p=[0.1, 0.35, 0.3, 0.25])),
        bottom_pattern=str(rng.choice(PATTERNS[:3], p=[0.3, 0.35, 0.35])),
        stripe_period=float(rng.uniform(5, 12)), long_sleeves=bool(rng.random() < 0.5), skirt=bool(rng.random() < 0.3),
        bg_top=bg, bg_bottom=tuple(int(np.clip(c - rng.integers(20, 70), 0, 255)) for c in bg),
        hair_long=bool(rng.random() < 0.4), bg_texture=float(rng.uniform(6, 14)),
        bg_seed=int(rng.integers(2**31)), floor=float(rng.uniform(0.86, 0.95)),
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


def _blend_roi(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, matrix: np.ndarray, corners: np.ndarray,
               border: int = cv2.BORDER_CONSTANT) -> None:
    """Warp a part-local patch and its mask with a 2x3 affine matrix and alpha-blend it onto the canvas.

    Only the bounding box of the warped `corners` is touched (warping the whole frame per part made
    generation several times slower for the same pixels).
    """
    H, W = canvas.shape[:2]
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 <= x0 or y1 <= y0:
        return
    m = matrix.astype(np.float64).copy()
    m[:, 2] -= (x0, y0)  # shift into the box's own coordinates
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR, borderMode=border)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = (alpha.astype(np.float32) / 255.0)[..., None]
    roi = canvas[y0:y1, x0:x1]
    roi[:] = (roi * (1 - a) + warped * a + 0.5).astype(np.uint8)


def _corners(matrix: np.ndarray, w: float, h: float) -> np.ndarray:
    pts = np.float32([[0, 0], [w, 0], [0, h], [w, h]])
    return pts @ matrix[:, :2].T + matrix[:, 2]


def draw_limb(canvas, p0, p1, width, c1, c2, pattern, period, extend=(0.0, 0.0)) -> None:
    """A capsule from p0 to p1 of the given width, textured along its axis."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = p1 - p0
    length = float(np.hypot(*d))
    if length < 1e-3:
        return
    u = d / length
    a = p0 - u * extend[0]
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
    m = cv2.getAffineTransform(src, dst)
    _blend_roi(canvas, patch, mask, m, _corners(m, w, L + w))


def draw_torso(canvas, r_sho, l_sho, r_hip, l_hip, c1, c2, pattern, period, flip: bool) -> None:
    """Torso quadrilateral, textured in torso coordinates (mapped by the shoulder/hip frame)."""
    quad = np.float32([r_sho, l_sho, l_hip, r_hip])
    top_w = float(np.hypot(*(quad[1] - quad[0])))
    h = float(np.hypot(*((quad[2] + quad[3]) / 2 - (quad[0] + quad[1]) / 2)))
    r = max(top_w * 0.16, 2.0)  # round shoulders
    # torso frame: shoulders at (0, 0) and (top_w, 0), left hip at (top_w, h); the right hip lands
    # wherever the (not quite parallelogram) quad puts it, so size the patch from all four corners
    m0 = cv2.getAffineTransform(np.float32([[0, 0], [top_w, 0], [top_w, h]]), quad[:3])
    inv = cv2.invertAffineTransform(m0)
    local = quad @ inv[:, :2].T + inv[:, 2]
    lo = local.min(0) - r - 2
    local = local - lo
    pw, ph = (np.ceil(local.max(0) + r + 2)).astype(int)
    m = m0.copy()
    m[:, 2] += m0[:, :2] @ lo  # patch (0, 0) sits at torso-frame point lo
    patch = texture((int(ph), int(pw)), c1, c2, pattern, period)
    if flip:
        patch = patch[:, ::-1].copy()
    mask = np.zeros((int(ph), int(pw)), np.uint8)
    cv2.fillConvexPoly(mask, np.round(local).astype(np.int32), 255, lineType=cv2.LINE_AA)
    for p in local[:2]:
        cv2.circle(mask, (int(round(p[0])), int(round(p[1]))), int(round(r)), 255, -1, lineType=cv2.LINE_AA)
    _blend_roi(canvas, patch, mask, m, _corners(m, pw, ph))


def background(h: int, w: int, look: Look, floor_y: float, seed: int) -> np.ndarray:
    """Vertical gradient wall + a darker floor band from floor_y down, with a faint blotchy texture.

    The texture comes from `seed` (fixed per identity), so an identity keeps its backdrop across
    poses the way a DeepFashion shoot does; it is low-frequency, which keeps the JPEGs small.
    """
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    wall = (np.array(look.bg_top, np.float32) * (1 - t * 0.5) + np.array(look.bg_bottom, np.float32) * t * 0.5)
    img = np.repeat(wall, w, axis=1)
    fy = int(np.clip(floor_y, 0, h))
    img[fy:] = img[fy:] * 0.85
    # smooth noise upsampled from a fixed 18x13 grid (16 px cells at 256x176), so a larger frame
    # shows the same backdrop; a finer grain was tried: bigger JPEGs, same copy-source scores
    grid = np.random.default_rng(seed).normal(0, 1, size=(18, 13)).astype(np.float32)
    blotch = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    img += (look.bg_texture * blotch)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)
