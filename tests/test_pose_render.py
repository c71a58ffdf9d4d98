"""Skeleton rendering (reference_impl/pose.py)."""
import fpdm_bench  # noqa: F401  (torchvision shim first)
import numpy as np
import pytest
import torch

from fpdm_bench.data.keypoints import COCO18_LIMBS
from reference_impl.pose import render_batch, render_skeleton, stroke_width, wholebody_to_coco18


def _pose18(h=128, w=96):
    # an upright figure well inside the frame
    pts = {0: (48, 20), 1: (48, 36), 2: (36, 36), 3: (30, 56), 4: (28, 74), 5: (60, 36), 6: (66, 56),
           7: (68, 74), 8: (40, 76), 9: (40, 98), 10: (40, 120), 11: (56, 76), 12: (56, 98), 13: (56, 120),
           14: (45, 17), 15: (51, 17), 16: (42, 19), 17: (54, 19)}
    kp = np.full((18, 2), np.nan, np.float32)
    for i, (x, y) in pts.items():
        kp[i] = (x, y)
    return kp


def test_shape_dtype_and_black_background():
    img = render_skeleton(_pose18(), (128, 96))
    assert img.shape == (128, 96, 3) and img.dtype == np.uint8
    lit = img.any(axis=2)
    assert 0.02 < lit.mean() < 0.5  # something drawn, mostly black
    assert not lit[:, :10].any()  # nothing far left of the figure (x >= 28 - stroke)


def test_deterministic():
    a = render_skeleton(_pose18(), (128, 96))
    b = render_skeleton(_pose18().copy(), (128, 96))
    assert np.array_equal(a, b)


def test_limb_drawn_between_its_keypoints():
    kp = _pose18()
    img = render_skeleton(kp, (128, 96))
    # mid-point of the right shin (9 -> 10) is lit, in a colour; a point beside it is not
    x, y = ((kp[9] + kp[10]) / 2).round().astype(int)
    assert img[y, x].max() > 200
    assert not img[y, x + 8].any()


def test_missing_points_are_skipped():
    kp = np.full((18, 2), np.nan, np.float32)
    assert not render_skeleton(kp, (64, 64)).any()
    kp = _pose18()
    full = render_skeleton(kp, (128, 96))
    kp[10] = np.nan  # r-ankle gone: the lower shin disappears, the knee stays
    part = render_skeleton(kp, (128, 96))
    x, y = kp[9].astype(int)
    assert part[y, x].any()
    assert full[115, 40].any() and not part[115, 40].any()


def test_single_visible_point_draws_only_a_joint():
    kp = np.full((18, 2), np.nan, np.float32)
    kp[0] = (32, 32)
    img = render_skeleton(kp, (64, 64))
    ys, xs = np.nonzero(img.any(axis=2))
    assert abs(xs.mean() - 32) < 1 and abs(ys.mean() - 32) < 1 and len(xs) < 40


def test_limbs_have_distinct_colours():
    kp = _pose18()
    img = render_skeleton(kp, (128, 96))
    colours = set()
    for a, b in [(8, 9), (11, 12), (2, 3)]:
        x, y = ((kp[a] + kp[b]) / 2).round().astype(int)
        colours.add(tuple(img[y, x]))
    assert len(colours) == 3


def test_line_width_scales_with_size():
    assert stroke_width((256, 176)) > stroke_width((64, 64)) >= 1
    # the same picture at twice the size (stroke 3 px -> 6 px) lights about the same fraction
    # (pixels at least half lit)
    small = (render_skeleton(_pose18() * 2, (256, 192)).max(axis=2) >= 128).mean()
    big = (render_skeleton(_pose18() * 4, (512, 384)).max(axis=2) >= 128).mean()
    assert big == pytest.approx(small, rel=0.2)
    # a fixed 1-px line would light half the fraction at twice the size; check we are far from that
    assert big > 0.75 * small


def test_wholebody_133():
    kp = np.full((133, 2), np.nan, np.float32)
    body18 = _pose18()
    # COCO-17 body order from the COCO-18 pose (neck is derived, not stored)
    coco17_from_18 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
    kp[:17] = body18[coco17_from_18]
    assert np.allclose(wholebody_to_coco18(kp)[[0, 2, 5, 8, 13]], body18[[0, 2, 5, 8, 13]])
    neck = wholebody_to_coco18(kp)[1]
    assert np.allclose(neck, (body18[2] + body18[5]) / 2)
    body_only = render_skeleton(kp, (128, 96))
    # a left hand: wrist at the left wrist, fingers spreading down
    hand = np.stack([body18[7] + (dx, dy) for dx, dy in [(0, 0)] + [(f - 2, 2 + j * 2) for f in range(5) for j in range(4)]])
    kp[91:112] = hand
    with_hand = render_skeleton(kp, (128, 96))
    assert with_hand.shape == (128, 96, 3)
    assert with_hand.any(axis=2).sum() > body_only.any(axis=2).sum()


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        render_skeleton(np.zeros((17, 2), np.float32), (64, 64))
    with pytest.raises(ValueError):
        render_skeleton(np.zeros((18, 3), np.float32), (64, 64))


def test_render_batch_matches_single():
    kps = torch.from_numpy(np.stack([_pose18(), _pose18() + 5]))
    out = render_batch(kps, (128, 96))
    assert out.shape == (2, 3, 128, 96) and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    single = torch.from_numpy(render_skeleton(kps[1].numpy(), (128, 96))).permute(2, 0, 1).float() / 255
    assert torch.equal(out[1], single)
    assert not torch.equal(out[0], out[1])


def test_limb_table_is_coco18():
    # guards the drawing against a changed limb table: 17 limbs over 18 joints, every joint used
    assert len(COCO18_LIMBS) == 17
    assert {i for limb in COCO18_LIMBS for i in limb} == set(range(18))
