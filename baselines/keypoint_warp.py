"""keypoint-warp: a real, non-learned floor.

Each body part of the source image is cut out with a soft mask around its source keypoints and moved
to the target keypoints by its own affine map: a least-squares affine for the torso, a similarity for
the head, and for each limb segment a rotation that maps the source bone onto the target bone,
stretched along the bone only (limbs keep their width when foreshortened). The target background is
unknown to a warp, so the source background is extended over the source person's region (row-wise
mean of the visible background) and parts are composited onto it back to front.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from fpdm_bench.models.base import ModelAdapter

# COCO-WholeBody body (0-16) -> COCO-18; neck (1) is the shoulders' midpoint.
COCO18_FROM_WB = {0: 0, 14: 2, 15: 1, 16: 4, 17: 3, 2: 6, 5: 5, 3: 8, 6: 7, 4: 10, 7: 9, 8: 12, 11: 11, 9: 14,
                  12: 13, 10: 16, 13: 15}
# (joint a, joint b, width as a fraction of body scale, extension beyond b as a fraction of the bone)
LIMBS = {
    "r_thigh": (8, 9, 0.34, 0.0), "r_shin": (9, 10, 0.28, 0.35), "l_thigh": (11, 12, 0.34, 0.0),
    "l_shin": (12, 13, 0.28, 0.35),
    "r_upper": (2, 3, 0.26, 0.0), "r_fore": (3, 4, 0.22, 0.35), "l_upper": (5, 6, 0.26, 0.0),
    "l_fore": (6, 7, 0.22, 0.35),
}
DRAW_ORDER = ["r_thigh", "r_shin", "l_thigh", "l_shin", "torso", "r_upper", "r_fore", "l_upper", "l_fore", "head"]
HEAD = [0, 14, 15, 16, 17, 1]


def to_coco18(kp: np.ndarray) -> np.ndarray:
    if kp.shape[0] == 18:
        return kp
    out = np.full((18, 2), np.nan, np.float32)
    for dst, src in COCO18_FROM_WB.items():
        out[dst] = kp[src]
    out[1] = (kp[5] + kp[6]) / 2  # NaN if either shoulder is missing
    return out


def _ok(*pts) -> bool:
    return all(np.isfinite(p).all() for p in pts)


def _body_scale(kp: np.ndarray) -> float:
    """A length that scales with the person: neck to mid-hip, else shoulder width x 1.6."""
    hips = [kp[i] for i in (8, 11) if _ok(kp[i])]
    if _ok(kp[1]) and hips:
        return float(np.hypot(*(np.mean(hips, 0) - kp[1])))
    if _ok(kp[2], kp[5]):
        return 1.6 * float(np.hypot(*(kp[2] - kp[5])))
    pts = kp[np.isfinite(kp).all(1)]
    return float(np.ptp(pts[:, 1])) / 3 if len(pts) > 1 else 0.0


def _bone_transform(a0, b0, a1, b1) -> np.ndarray:
    """Affine taking bone a0->b0 onto a1->b1: rotate, stretch along the bone only."""
    d0, d1 = b0 - a0, b1 - a1
    l0, l1 = np.hypot(*d0), np.hypot(*d1)
    u0, u1 = d0 / l0, d1 / l1
    n0, n1 = np.array([-u0[1], u0[0]]), np.array([-u1[1], u1[0]])
    lin = np.outer(u1, u0) * (l1 / l0) + np.outer(n1, n0)
    return np.hstack([lin, (a1 - lin @ a0)[:, None]]).astype(np.float32)


def _capsule(shape, a, b, width, extend) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    d = b - a
    end = b + d * extend
    cv2.line(mask, tuple(int(v) for v in np.round(a)), tuple(int(v) for v in np.round(end)), 255,
             max(int(round(width)), 1), lineType=cv2.LINE_AA)
    return mask


def _part_masks_and_maps(src: np.ndarray, tgt: np.ndarray, shape) -> dict:
    """name -> (source mask uint8, 2x3 affine) for every part both poses define."""
    s_scale, t_scale = _body_scale(src), _body_scale(tgt)
    out = {}
    if s_scale <= 1 or t_scale <= 1:
        return out
    for name, (i, j, wfrac, ext) in LIMBS.items():
        if _ok(src[i], src[j], tgt[i], tgt[j]) and np.hypot(*(src[j] - src[i])) > 1 and np.hypot(*(tgt[j] - tgt[i])) > 1:
            out[name] = (_capsule(shape, src[i], src[j], wfrac * s_scale, ext), _bone_transform(src[i], src[j], tgt[i], tgt[j]))
    torso = [i for i in (1, 2, 5, 8, 11) if _ok(src[i], tgt[i])]
    if len(torso) >= 3:
        m, _ = cv2.estimateAffine2D(src[torso], tgt[torso], method=cv2.LMEDS) if len(torso) > 3 else \
            (cv2.getAffineTransform(src[torso].astype(np.float32), tgt[torso].astype(np.float32)), None)
        if m is not None:
            mask = np.zeros(shape, np.uint8)
            pts = src[[i for i in (2, 5, 11, 8) if _ok(src[i])]]
            hull = cv2.convexHull(np.round(pts).astype(np.int32)) if len(pts) >= 3 else None
            if hull is not None:
                cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA)
            for i in (2, 5):  # round shoulders
                if _ok(src[i]):
                    cv2.circle(mask, tuple(int(v) for v in np.round(src[i])), int(0.14 * s_scale), 255, -1)
            out["torso"] = (mask, m.astype(np.float32))
    head = [i for i in HEAD if _ok(src[i], tgt[i])]
    if _ok(src[1], tgt[1]) and len(head) >= 2:
        m, _ = cv2.estimateAffinePartial2D(src[head], tgt[head])
        if m is not None:
            pts = src[[i for i in HEAD[:-1] if _ok(src[i])]]
            centre = pts.mean(0) if len(pts) else src[1] - [0, 0.3 * s_scale]
            mask = np.zeros(shape, np.uint8)
            cv2.circle(mask, tuple(int(v) for v in np.round(centre)), int(0.3 * s_scale), 255, -1, lineType=cv2.LINE_AA)
            cv2.line(mask, tuple(int(v) for v in np.round(src[1])), tuple(int(v) for v in np.round(centre)), 255,
                     max(int(0.2 * s_scale), 1))
            out["head"] = (mask, m.astype(np.float32))
    return out


def _background(img: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Fill the person's region with the row-wise mean of the visible background (smoothed)."""
    bg = person < 128
    h = img.shape[0]
    rows = np.zeros((h, 3), np.float32)
    have = np.zeros(h, bool)
    for y in range(h):
        if bg[y].any():
            rows[y] = img[y][bg[y]].mean(0)
            have[y] = True
    if not have.any():
        return np.full_like(img, int(img.mean()))
    ys = np.arange(h)
    for c in range(3):
        rows[:, c] = np.interp(ys, ys[have], rows[have, c])
    rows = cv2.GaussianBlur(rows[:, None, :], (1, 9), 0)[:, 0, :]
    fill = np.repeat(rows[:, None, :], img.shape[1], axis=1)
    a = (person.astype(np.float32) / 255.0)[..., None]
    return (img * (1 - a) + fill * a).astype(np.float32)


def warp_person(img: np.ndarray, src_kp: np.ndarray, tgt_kp: np.ndarray) -> np.ndarray:
    """img: float32 [H, W, 3] in [0, 1]; keypoints [K, 2] (x, y), NaN missing. Returns [H, W, 3]."""
    src, tgt = to_coco18(src_kp), to_coco18(tgt_kp)
    H, W = img.shape[:2]
    parts = _part_masks_and_maps(src, tgt, (H, W))
    if not parts:
        return img.copy()
    person = np.zeros((H, W), np.uint8)
    for mask, _ in parts.values():
        person = np.maximum(person, mask)
    person = cv2.dilate(person, np.ones((5, 5), np.uint8))
    out = _background(img, person)
    for name in DRAW_ORDER:
        if name not in parts:
            continue
        mask, m = parts[name]
        warped = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        a = cv2.warpAffine(cv2.GaussianBlur(mask, (3, 3), 0), m, (W, H), flags=cv2.INTER_LINEAR)
        a = (a.astype(np.float32) / 255.0)[..., None]
        out = out * (1 - a) + warped * a
    return np.clip(out, 0, 1)


class KeypointWarp(ModelAdapter):
    """Per-limb affine warp of the source image from its keypoints to the target keypoints."""

    name = "keypoint-warp"

    def generate(self, batch: dict, generators: list[torch.Generator]) -> torch.Tensor:
        src = batch["source"].permute(0, 2, 3, 1).float().cpu().numpy()
        out = [warp_person(np.ascontiguousarray(s), a.numpy(), b.numpy())
               for s, a, b in zip(src, batch["source_kp"].cpu(), batch["target_kp"].cpu())]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()

    def info(self) -> dict:
        return {"name": self.name, "parameters": 0, "nfe": 0, "checkpoint_sha256": None,
                "description": "per-part affine warp (torso affine, head similarity, limbs bone-aligned) "
                               "over a background extended from the source"}
