"""Sampling a body and a pose, and drawing the person from its COCO-18 keypoints.

All geometry is in pixels of the frame being drawn. The keypoints returned are exactly the joints the
limbs are drawn between, so the annotation matches the picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fpdm_bench.data.synth.figure import Look, background, draw_limb, draw_torso

NAN = float("nan")
VIEWS = ("front", "back", "side-left", "side-right")
# Pose families; each samples arm/leg angles around a template (radians, 0 = hanging straight down).
# Share of poses shot closer, cropped around the knees (DeepFashion has many such shots).
CLOSE_UP = 0.3
FAMILIES = ("stand", "arms-raised", "arms-out", "hands-on-hips", "walking", "one-arm-up", "reach")


@dataclass
class Body:
    height: float  # fraction of the frame height from head top to ankles
    shoulder: float  # shoulder width / body height
    hip: float
    limb: float  # limb thickness factor
    x_center: float  # fraction of the frame width


def random_body(rng: np.random.Generator) -> Body:
    return Body(height=float(rng.uniform(0.84, 0.92)), shoulder=float(rng.uniform(0.29, 0.35)),
                hip=float(rng.uniform(0.2, 0.25)), limb=float(rng.uniform(1.0, 1.3)),
                x_center=float(rng.uniform(0.46, 0.54)))


@dataclass
class Pose:
    view: str
    family: str
    arms: tuple  # (right shoulder, right elbow, left shoulder, left elbow) angles
    legs: tuple  # (right hip, right knee, left hip, left knee)
    lean: float
    shift: float  # horizontal offset, fraction of width
    scale: float = 1.0  # camera zoom: 1 = the body's full height


def random_pose(rng: np.random.Generator, view: str | None = None, family: str | None = None) -> Pose:
    view = view or str(rng.choice(VIEWS))
    family = family or str(rng.choice(FAMILIES))
    j = lambda s: float(rng.normal(0, s))  # noqa: E731 - jitter
    d = np.pi / 180
    if family == "stand":
        arms = (12 * d + j(0.1), 8 * d + j(0.1), 12 * d + j(0.1), 8 * d + j(0.1))
        legs = (5 * d + j(0.05), j(0.05), 5 * d + j(0.05), j(0.05))
    elif family == "arms-raised":
        arms = (150 * d + j(0.15), 15 * d + j(0.2), 150 * d + j(0.15), 15 * d + j(0.2))
        legs = (8 * d + j(0.06), j(0.05), 8 * d + j(0.06), j(0.05))
    elif family == "arms-out":
        arms = (90 * d + j(0.15), j(0.2), 90 * d + j(0.15), j(0.2))
        legs = (12 * d + j(0.06), j(0.05), 12 * d + j(0.06), j(0.05))
    elif family == "hands-on-hips":
        arms = (45 * d + j(0.08), -105 * d + j(0.1), 45 * d + j(0.08), -105 * d + j(0.1))
        legs = (9 * d + j(0.05), j(0.05), 9 * d + j(0.05), j(0.05))
    elif family == "walking":
        s = 24 * d + j(0.06)
        arms = (-s * 0.8, 15 * d + j(0.1), s * 0.8, 15 * d + j(0.1))
        legs = (s, -20 * d + j(0.1), -s, j(0.05))
    elif family == "one-arm-up":
        arms = (160 * d + j(0.12), 10 * d + j(0.2), 10 * d + j(0.08), 10 * d + j(0.08))
        legs = (6 * d + j(0.05), j(0.05), 6 * d + j(0.05), j(0.05))
    else:  # reach: one arm forward/out, the other bent up
        arms = (70 * d + j(0.2), 40 * d + j(0.2), 30 * d + j(0.15), 110 * d + j(0.2))
        legs = (15 * d + j(0.05), j(0.05), 4 * d + j(0.05), j(0.05))
    if rng.random() < 0.5 and family not in ("walking",):
        arms = (arms[2], arms[3], arms[0], arms[1])  # mirror which arm does what
    return Pose(view=view, family=family, arms=arms, legs=legs, lean=j(0.04), shift=float(np.clip(j(0.07), -0.14, 0.14)),
                scale=float(rng.uniform(1.15, 1.45) if rng.random() < CLOSE_UP else rng.uniform(0.82, 1.0)))


def _dir(angle: float, side: float) -> np.ndarray:
    """Unit vector at `angle` from straight down, turning toward image x sign `side`."""
    return np.array([side * np.sin(angle), np.cos(angle)], np.float32)


def keypoints(body: Body, pose: Pose, hw: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """COCO-18 keypoints (x, y), NaN where a real detector would not see the point, plus the
    geometry the drawing needs (head centre/radius, limb widths, which side is near)."""
    H, W = hw
    S = body.height * pose.scale * H
    top = max((1.0 - body.height * pose.scale) * H * 0.45, 0.02 * H)
    neck = np.array([W * (body.x_center + pose.shift), top + 0.17 * S], np.float32)
    side_view = pose.view.startswith("side")
    vf = 0.3 if side_view else 1.0
    # image x sign of the person's right side: front -> image left
    right = {"front": -1.0, "back": 1.0, "side-left": 1.0, "side-right": -1.0}[pose.view]
    facing = {"side-left": -1.0, "side-right": 1.0}.get(pose.view, 0.0)
    lean = np.array([np.sin(pose.lean), 0], np.float32) * S * 0.3
    kp = np.full((18, 2), NAN, np.float32)
    kp[1] = neck
    sw, hwid = body.shoulder * S * vf, body.hip * S * (0.55 if side_view else 1.0)
    kp[2] = neck + np.array([right * sw / 2, 0.03 * S])
    kp[5] = neck + np.array([-right * sw / 2, 0.03 * S])
    kp[8] = neck + np.array([right * hwid / 2, 0.33 * S]) + lean
    kp[11] = neck + np.array([-right * hwid / 2, 0.33 * S]) + lean
    ua, fa, th, sh = 0.16 * S, 0.15 * S, 0.235 * S, 0.235 * S
    for (s_i, e_i, w_i), (a_s, a_e), sgn in (((2, 3, 4), pose.arms[:2], right), ((5, 6, 7), pose.arms[2:], -right)):
        out = facing if side_view else sgn  # side view: the swing is forward/back
        kp[e_i] = kp[s_i] + _dir(a_s, out) * ua
        kp[w_i] = kp[e_i] + _dir(a_s + a_e, out) * fa
    for (h_i, k_i, a_i), (a_h, a_k), sgn in (((8, 9, 10), pose.legs[:2], right), ((11, 12, 13), pose.legs[2:], -right)):
        out = facing if side_view else sgn
        kp[k_i] = kp[h_i] + _dir(a_h, out) * th
        kp[a_i] = kp[k_i] + _dir(a_h + a_k, out) * sh
    r = 0.062 * S
    head = neck + np.array([facing * r * 0.15, -0.10 * S], np.float32)
    if pose.view == "front":
        kp[0] = head + [0, 0.25 * r]
        kp[14], kp[15] = head + [right * 0.38 * r, -0.12 * r], head + [-right * 0.38 * r, -0.12 * r]
        kp[16], kp[17] = head + [right * 0.95 * r, 0], head + [-right * 0.95 * r, 0]
    elif pose.view == "back":
        kp[16], kp[17] = head + [right * 0.95 * r, 0], head + [-right * 0.95 * r, 0]
    else:  # side: nose and the near eye/ear; the near side is the left one when facing image-left
        near_eye, near_ear = (15, 17) if facing < 0 else (14, 16)
        kp[0] = head + [facing * 0.95 * r, 0.2 * r]
        kp[near_eye] = head + [facing * 0.6 * r, -0.12 * r]
        kp[near_ear] = head + [-facing * 0.1 * r, 0]
    geo = {"head": head, "r": r, "S": S, "right": right, "facing": facing,
           "near": "left" if facing < 0 else "right" if facing > 0 else None}
    return kp, geo


def draw_person(hw: tuple[int, int], kp: np.ndarray, geo: dict, pose: Pose, body: Body, look: Look) -> np.ndarray:
    """Draw the person back to front over the identity's backdrop; returns an RGB uint8 [H, W, 3]."""
    H, W = hw
    S, r = geo["S"], geo["r"]
    canvas = background(H, W, look, floor_y=look.floor * H, seed=look.bg_seed)
    lw = body.limb * S
    per = look.stripe_period * S / 230.0

    def arm(s, e, w):
        sleeve_end = w if look.long_sleeves else e
        draw_limb(canvas, kp[s], kp[e], 0.115 * lw, look.top, look.top2, look.top_pattern, per)
        fore_c = (look.top, look.top2, look.top_pattern) if look.long_sleeves else (look.skin, look.skin, "plain")
        draw_limb(canvas, kp[e], kp[w], 0.092 * lw, *fore_c, per)
        d = kp[w] - kp[e]
        hand = kp[w] + d / (np.hypot(*d) + 1e-6) * 0.03 * S
        draw_limb(canvas, kp[w], hand, 0.07 * lw, look.skin, look.skin, "plain", per)
        _ = sleeve_end

    def leg(h, k, a):
        draw_limb(canvas, kp[h], kp[k], 0.16 * lw, look.bottom, look.bottom2, look.bottom_pattern, per)
        draw_limb(canvas, kp[k], kp[a], 0.125 * lw, look.bottom, look.bottom2, look.bottom_pattern, per)
        foot_dir = np.array([geo["facing"] or 0.0, 0.35], np.float32)
        foot = kp[a] + foot_dir * 0.05 * S
        draw_limb(canvas, kp[a], foot, 0.065 * lw, look.shoes, look.shoes, "plain", per)

    arms = {"right": (2, 3, 4), "left": (5, 6, 7)}
    legs = {"right": (8, 9, 10), "left": (11, 12, 13)}
    near = geo["near"]
    far = {"left": "right", "right": "left"}.get(near)
    if look.hair_long and pose.view != "back":  # long hair falls behind the shoulders
        draw_limb(canvas, geo["head"], geo["head"] + [0, 0.11 * S], 2.0 * r, look.hair, look.hair, "plain", per)
    if far:
        arm(*arms[far])
        leg(*legs[far])
    for side in ("right", "left"):
        if side != far:
            leg(*legs[side])
    if look.skirt:
        hips = np.float32([kp[8], kp[11]])
        knees_y = float(np.nanmean(kp[[9, 12], 1]))
        spread = abs(hips[1, 0] - hips[0, 0]) * 0.5 + 0.06 * S
        cx = float(hips[:, 0].mean())
        poly = np.float32([hips[0], hips[1], [cx + spread * np.sign(hips[1, 0] - hips[0, 0] or 1), knees_y],
                           [cx - spread * np.sign(hips[1, 0] - hips[0, 0] or 1), knees_y]])
        cv2.fillConvexPoly(canvas, np.round(poly).astype(np.int32), look.bottom, lineType=cv2.LINE_AA)
    draw_torso(canvas, kp[2], kp[5], kp[8], kp[11], look.top, look.top2, look.top_pattern, per,
               flip=pose.view == "back")
    draw_limb(canvas, kp[1], geo["head"], 0.08 * lw, look.skin, look.skin, "plain", per)  # neck
    for side in ("right", "left"):
        if side != far:
            arm(*arms[side])
    _draw_head(canvas, geo, pose, look)
    return canvas


def _draw_head(canvas, geo, pose, look) -> None:
    c = tuple(int(v) for v in np.round(geo["head"]))
    r = int(round(geo["r"]))
    face = look.hair if pose.view == "back" else look.skin
    cv2.ellipse(canvas, c, (int(r * 0.9), r), 0, 0, 360, face, -1, lineType=cv2.LINE_AA)
    if pose.view != "back":
        # hair cap on top (toward the back of the head in side views)
        off = int(-geo["facing"] * r * 0.25)
        cv2.ellipse(canvas, (c[0] + off, c[1] - int(r * 0.25)), (int(r * 0.95), int(r * 0.8)), 0, 180, 360,
                    look.hair, -1, lineType=cv2.LINE_AA)
    if pose.view == "front":
        for dx in (-0.38, 0.38):
            cv2.circle(canvas, (int(c[0] + dx * r), int(c[1] - 0.12 * r)), max(1, r // 7), (30, 30, 30), -1,
                       lineType=cv2.LINE_AA)
        cv2.line(canvas, (int(c[0] - 0.25 * r), int(c[1] + 0.5 * r)), (int(c[0] + 0.25 * r), int(c[1] + 0.5 * r)),
                 (150, 60, 60), max(1, r // 10), lineType=cv2.LINE_AA)
    elif pose.view.startswith("side"):
        cv2.circle(canvas, (int(c[0] + geo["facing"] * 0.6 * r), int(c[1] - 0.12 * r)), max(1, r // 7), (30, 30, 30),
                   -1, lineType=cv2.LINE_AA)
