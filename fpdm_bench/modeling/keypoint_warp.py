"""The keypoint warp: a real, non-learned pose transfer (the ``keypoint-warp`` floor, and the tiny FPDM's prior).

Each body part of the source image is cut out with a soft mask drawn around its source keypoints and
moved onto the target keypoints by its own affine map:

- torso: least-squares affine from neck, shoulders and hips (a similarity from the shoulders when
  the hips are out of frame, as in upper-body PHOENIX frames);
- head: least-squares similarity from nose, eyes, ears and neck;
- upper arms, forearms (+ hands), thighs, shins (+ feet): the rotation that maps the source bone onto
  the target bone, stretched along the bone only, so a foreshortened limb keeps its width;
- hands (whole-body input only): least-squares similarity from the 21 hand points.

The target background is unknown to a warp, so the source person's region is filled in from the
surrounding source background (``cv2.inpaint`` on a half-size copy), and the parts are composited onto
it back to front (legs, torso, arms, hands, head) with feathered masks. Parts whose keypoints are
missing in the source are left as they are; parts missing in the target are erased.

Deterministic (it takes no randomness) and fast: a few tens of milliseconds for a 256x176 image.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from fpdm_bench.data.keypoints import WHOLEBODY133

# COCO-18 indices (order in fpdm_bench.data.keypoints).
NOSE, NECK, R_SHO, R_ELB, R_WRI, L_SHO, L_ELB, L_WRI = 0, 1, 2, 3, 4, 5, 6, 7
R_HIP, R_KNE, R_ANK, L_HIP, L_KNE, L_ANK, R_EYE, L_EYE, R_EAR, L_EAR = 8, 9, 10, 11, 12, 13, 14, 15, 16, 17
FACE = [NOSE, R_EYE, L_EYE, R_EAR, L_EAR]

# COCO-WholeBody body points 0-16 (nose, l_eye, r_eye, l_ear, r_ear, l_sho, r_sho, l_elb, r_elb, l_wri,
# r_wri, l_hip, r_hip, l_knee, r_knee, l_ank, r_ank) in COCO-18 order; the neck is made up below.
WB_BODY_FOR_COCO18 = {NOSE: 0, R_EYE: 2, L_EYE: 1, R_EAR: 4, L_EAR: 3, R_SHO: 6, L_SHO: 5, R_ELB: 8, L_ELB: 7,
                      R_WRI: 10, L_WRI: 9, R_HIP: 12, L_HIP: 11, R_KNE: 14, L_KNE: 13, R_ANK: 16, L_ANK: 15}
WB_LEFT_HAND = slice(91, 112)
WB_RIGHT_HAND = slice(112, 133)

# Two-point limbs: (joint a, joint b, mask width as a fraction of body scale, mask extension beyond b
# as a fraction of the bone: the forearm carries the hand and the shin the foot).
LIMBS = {
    "r_thigh": (R_HIP, R_KNE, 0.38, 0.0), "r_shin": (R_KNE, R_ANK, 0.30, 0.30),
    "l_thigh": (L_HIP, L_KNE, 0.38, 0.0), "l_shin": (L_KNE, L_ANK, 0.30, 0.30),
    "r_upper_arm": (R_SHO, R_ELB, 0.28, 0.0), "r_forearm": (R_ELB, R_WRI, 0.24, 0.30),
    "l_upper_arm": (L_SHO, L_ELB, 0.28, 0.0), "l_forearm": (L_ELB, L_WRI, 0.24, 0.30),
}
# Back to front: the torso covers the tops of the thighs, arms lie over the torso, the head on top.
DRAW_ORDER = ["r_thigh", "r_shin", "l_thigh", "l_shin", "torso", "r_upper_arm", "r_forearm", "l_upper_arm",
              "l_forearm", "r_hand", "l_hand", "head"]

FEATHER = 5  # Gaussian kernel (px) that softens each part's mask edge before it is warped


@dataclass
class Part:
    """One body part: its soft mask in the source frame (uint8) and the 2x3 affine source -> target.

    ``matrix`` is None for a part seen in the source but not in the target: it is only erased.
    """

    mask: np.ndarray
    matrix: np.ndarray | None


# --- keypoints ----------------------------------------------------------------------------------------

def to_coco18(kp: np.ndarray) -> np.ndarray:
    """[18, 2] COCO-18 or [133, 2] COCO-WholeBody (x, y; NaN missing) -> [18, 2] COCO-18.

    For whole-body input the neck is the midpoint of the shoulders (NaN if either is missing).
    """
    kp = np.asarray(kp, np.float32)
    if kp.shape[0] == 18:
        return kp
    if kp.shape[0] != WHOLEBODY133:
        raise ValueError(f"keypoint-warp takes 18 (COCO-18) or 133 (COCO-WholeBody) keypoints, got {kp.shape[0]}")
    out = np.full((18, 2), np.nan, np.float32)
    for dst, src in WB_BODY_FOR_COCO18.items():
        out[dst] = kp[src]
    out[NECK] = (kp[5] + kp[6]) / 2
    return out


def _ok(*pts: np.ndarray) -> bool:
    return all(np.isfinite(p).all() for p in pts)


def _body_scale(kp: np.ndarray) -> float:
    """A length that grows with the person: neck to mid-hip, else 1.6 x shoulder width, else a third
    of the visible height. 0 when nothing is visible."""
    hips = [kp[i] for i in (R_HIP, L_HIP) if _ok(kp[i])]
    if _ok(kp[NECK]) and hips:
        return float(np.hypot(*(np.mean(hips, 0) - kp[NECK])))
    if _ok(kp[R_SHO], kp[L_SHO]):
        return 1.6 * float(np.hypot(*(kp[R_SHO] - kp[L_SHO])))
    pts = kp[np.isfinite(kp).all(1)]
    return float(np.ptp(pts[:, 1])) / 3 if len(pts) > 1 else 0.0


def _up(kp: np.ndarray) -> np.ndarray:
    """Unit vector from the hips toward the neck (image up when the hips are not seen)."""
    hips = [kp[i] for i in (R_HIP, L_HIP) if _ok(kp[i])]
    if _ok(kp[NECK]) and hips:
        d = kp[NECK] - np.mean(hips, 0)
        n = np.hypot(*d)
        if n > 1e-3:
            return (d / n).astype(np.float32)
    return np.array([0.0, -1.0], np.float32)


# --- transforms ---------------------------------------------------------------------------------------

def _matrix(lin: np.ndarray, src_pt: np.ndarray, dst_pt: np.ndarray) -> np.ndarray:
    """2x3 affine with linear part ``lin`` that maps src_pt onto dst_pt."""
    return np.hstack([lin, (dst_pt - lin @ src_pt)[:, None]]).astype(np.float32)


def bone_transform(a0, b0, a1, b1) -> np.ndarray:
    """Affine taking the bone a0->b0 onto a1->b1: rotate, and stretch along the bone only."""
    d0, d1 = b0 - a0, b1 - a1
    l0, l1 = np.hypot(*d0), np.hypot(*d1)
    u0, u1 = d0 / l0, d1 / l1
    n0, n1 = np.array([-u0[1], u0[0]]), np.array([-u1[1], u1[0]])
    lin = np.outer(u1, u0) * (l1 / l0) + np.outer(n1, n0)
    return _matrix(lin, a0, a1)


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares rotation + uniform scale + shift from >= 2 points (None if they coincide)."""
    zs = src[:, 0] + 1j * src[:, 1]
    zd = dst[:, 0] + 1j * dst[:, 1]
    cs, cd = zs - zs.mean(), zd - zd.mean()
    den = float(np.sum(np.abs(cs) ** 2))
    if len(src) < 2 or den < 1e-6:
        return None
    a = np.sum(np.conj(cs) * cd) / den  # the complex number that rotates and scales
    lin = np.array([[a.real, -a.imag], [a.imag, a.real]])
    return _matrix(lin, src.mean(0), dst.mean(0))


def affine_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares affine from >= 3 points; falls back to a similarity when the source points are
    (nearly) on a line, where an affine is not determined."""
    if len(src) < 3:
        return similarity_lstsq(src, dst) if len(src) >= 2 else None
    sv = np.linalg.svd(src - src.mean(0), compute_uv=False)
    if sv[0] < 1e-6 or sv[1] / sv[0] < 0.15:
        return similarity_lstsq(src, dst)
    a = np.hstack([src, np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(a, dst, rcond=None)  # [3, 2]
    return sol.T.astype(np.float32)


# --- masks --------------------------------------------------------------------------------------------

def _pt(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _capsule(shape, a, b, width: float, extend: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.line(mask, _pt(a), _pt(b + (b - a) * extend), 255, max(int(round(width)), 1), lineType=cv2.LINE_AA)
    return mask


def _torso_mask(shape, kp: np.ndarray, scale: float) -> np.ndarray:
    """Shoulders-hips quadrilateral with round shoulders; without hips, the shoulder line pushed down
    by one body scale (the torso runs off the bottom of an upper-body frame)."""
    mask = np.zeros(shape, np.uint8)
    shoulders = [kp[i] for i in (R_SHO, L_SHO) if _ok(kp[i])]
    hips = [kp[i] for i in (R_HIP, L_HIP) if _ok(kp[i])]
    if len(hips) == 0 and len(shoulders) == 2:
        down = -_up(kp) * scale
        hips = [shoulders[1] + down, shoulders[0] + down]
    pts = np.array(shoulders + hips, np.float32)
    if len(pts) >= 3:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 255, lineType=cv2.LINE_AA)
    for p in shoulders:
        cv2.circle(mask, _pt(p), max(int(0.14 * scale), 1), 255, -1, lineType=cv2.LINE_AA)
    return mask


def _head_mask(shape, kp: np.ndarray, scale: float) -> np.ndarray:
    """A disc around the face points (or above the neck), joined to the neck."""
    face = kp[[i for i in FACE if _ok(kp[i])]]
    centre = face.mean(0) if len(face) else kp[NECK] + _up(kp) * 0.3 * scale
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, _pt(centre), max(int(0.3 * scale), 1), 255, -1, lineType=cv2.LINE_AA)
    if _ok(kp[NECK]):
        cv2.line(mask, _pt(kp[NECK]), _pt(centre), 255, max(int(0.2 * scale), 1))
    return mask


def _hand_mask(shape, pts: np.ndarray, scale: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 255)
    r = max(int(0.06 * scale), 1)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))


# --- parts --------------------------------------------------------------------------------------------

def body_parts(src_kp: np.ndarray, tgt_kp: np.ndarray, shape: tuple[int, int]) -> dict[str, Part]:
    """name -> Part for every part the source shows. src_kp/tgt_kp: [18 or 133, 2] (x, y), NaN missing."""
    src, tgt = to_coco18(src_kp), to_coco18(tgt_kp)
    s_scale, t_scale = _body_scale(src), _body_scale(tgt)
    parts: dict[str, Part] = {}
    if s_scale <= 1:  # nothing to cut out
        return parts
    t_ok = t_scale > 1

    for name, (i, j, wfrac, ext) in LIMBS.items():
        if not _ok(src[i], src[j]) or np.hypot(*(src[j] - src[i])) <= 1:
            continue
        m = None
        if t_ok and _ok(tgt[i], tgt[j]) and np.hypot(*(tgt[j] - tgt[i])) > 1:
            m = bone_transform(src[i], src[j], tgt[i], tgt[j])
        parts[name] = Part(_capsule(shape, src[i], src[j], wfrac * s_scale, ext), m)

    if _ok(src[R_SHO], src[L_SHO]) or sum(_ok(src[i]) for i in (R_SHO, L_SHO, R_HIP, L_HIP)) >= 3:
        both = [i for i in (NECK, R_SHO, L_SHO, R_HIP, L_HIP) if _ok(src[i], tgt[i])]
        m = affine_lstsq(src[both], tgt[both]) if t_ok and len(both) >= 2 else None
        parts["torso"] = Part(_torso_mask(shape, src, s_scale), m)

    if _ok(src[NECK]) or any(_ok(src[i]) for i in FACE):
        both = [i for i in FACE + [NECK] if _ok(src[i], tgt[i])]
        m = similarity_lstsq(src[both], tgt[both]) if t_ok and len(both) >= 2 else None
        parts["head"] = Part(_head_mask(shape, src, s_scale), m)

    if np.asarray(src_kp).shape[0] == WHOLEBODY133:
        for name, sl in (("l_hand", WB_LEFT_HAND), ("r_hand", WB_RIGHT_HAND)):
            sh, th = np.asarray(src_kp, np.float32)[sl], np.asarray(tgt_kp, np.float32)[sl]
            seen = np.isfinite(sh).all(1)
            if seen.sum() < 3:
                continue
            both = seen & np.isfinite(th).all(1)
            m = similarity_lstsq(sh[both], th[both]) if both.sum() >= 3 else None
            parts[name] = Part(_hand_mask(shape, sh[seen], s_scale), m)
    return parts


# --- compositing --------------------------------------------------------------------------------------

def fill_background(img: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Fill ``region`` (uint8 mask) of a float [H, W, 3] image from the pixels around it.

    Inpaints (Telea) a quarter-size copy for speed: the fill is a smooth guess at the background
    anyway, and on the synthetic sets this scores the same as inpainting at half size.
    """
    h, w = img.shape[:2]
    sw, sh = max(w // 4, 16), max(h // 4, 16)
    small = cv2.resize(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), (sw, sh), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(region, (sw, sh), interpolation=cv2.INTER_NEAREST)
    filled = cv2.inpaint(small, (small_mask > 0).astype(np.uint8), 2, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    a = (region.astype(np.float32) / 255)[..., None]
    return img * (1 - a) + filled * a


def _target_box(part: Part, w: int, h: int) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1) in the output that the warped part mask can touch."""
    x, y, bw, bh = cv2.boundingRect(part.mask)
    if bw == 0 or bh == 0:
        return None
    corners = np.array([[x - 3, y - 3, 1], [x + bw + 3, y - 3, 1], [x - 3, y + bh + 3, 1], [x + bw + 3, y + bh + 3, 1]],
                       np.float32) @ part.matrix.T
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def warp_person(img: np.ndarray, src_kp: np.ndarray, tgt_kp: np.ndarray) -> np.ndarray:
    """Move the person in ``img`` from src_kp to tgt_kp.

    img: float32 [H, W, 3] in [0, 1]; keypoints [K, 2] (x, y) in img's pixels, NaN missing, K = 18
    (COCO-18) or 133 (COCO-WholeBody). Returns float32 [H, W, 3] in [0, 1].
    """
    h, w = img.shape[:2]
    parts = body_parts(src_kp, tgt_kp, (h, w))
    if not parts:
        return img.copy()
    person = np.zeros((h, w), np.uint8)
    for p in parts.values():
        person = np.maximum(person, p.mask)
    scale = max(_body_scale(to_coco18(src_kp)), 1.0)
    grow = max(int(0.04 * scale), 1)  # a margin for anti-aliased edges and shadows
    person = cv2.dilate(person, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    out = fill_background(img, person)

    # warp colour and mask together (one call per part); the mask is feathered before warping
    rgba = np.dstack([img, np.zeros((h, w), np.float32)])
    for name in DRAW_ORDER:
        part = parts.get(name)
        if part is None or part.matrix is None:
            continue
        box = _target_box(part, w, h)
        if box is None:  # lands outside the frame
            continue
        x0, y0, x1, y1 = box
        rgba[..., 3] = cv2.GaussianBlur(part.mask, (FEATHER, FEATHER), 0).astype(np.float32) / 255
        m = part.matrix.copy()
        m[:, 2] -= (x0, y0)  # warp straight into the box: parts are small, the frame is not
        warped = cv2.warpAffine(rgba, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        a = warped[..., 3:]
        roi = out[y0:y1, x0:x1]
        roi *= 1 - a
        roi += warped[..., :3] * a
    return np.clip(out, 0, 1).astype(np.float32)


def warp_batch(source: torch.Tensor, source_kp: torch.Tensor, target_kp: torch.Tensor) -> torch.Tensor:
    """``warp_person`` on a batch: source [B,3,H,W] in [0,1], keypoints [B,K,2] in its pixels ->
    [B,3,H,W] float32 on the CPU (the keypoint-warp floor, baselines/keypoint_warp.py, and the tiny FPDM's
    prior, reference_impl/stage2/prior.py)."""
    src = source.detach().permute(0, 2, 3, 1).float().cpu().numpy()
    s_kp = source_kp.detach().float().cpu().numpy()
    t_kp = target_kp.detach().float().cpu().numpy()
    out = [warp_person(np.ascontiguousarray(im), a, b) for im, a, b in zip(src, s_kp, t_kp)]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()
