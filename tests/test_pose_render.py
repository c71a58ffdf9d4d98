"""Skeleton rendering (fpdm_bench/modeling/pose.py)."""
import fpdm_bench  # noqa: F401  (torchvision shim first)
import json
from pathlib import Path

import numpy as np
import PIL
import pytest
import torch

from fpdm_bench.data.keypoints import COCO18_LIMBS
from fpdm_bench.modeling.pose import (PoseStyle, fpdm_canvas_keypoints, pil_bicubic, render_batch, render_batch_fpdm,
                                      render_skeleton, render_skeleton_fpdm, stroke_width, wholebody_to_coco18)

FPDM_FIXTURE = Path(__file__).parent / "fixtures" / "fpdm_pose"


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


# --- the official FPDM renderer (style 'fpdm_official') --------------------------------------------
# tests/fixtures/fpdm_pose/ holds what the official code (dhlee-work/FPDM src/fusion/datautil.py,
# ProcessingKeypoints.trans_keypoins + draw_img) drew for three fixed poses; see its README.


@pytest.fixture(scope="module")
def official():
    meta = json.loads((FPDM_FIXTURE / "official_render.json").read_text())
    with np.load(FPDM_FIXTURE / "official_render.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


def _cases(meta, arrays):
    frame = tuple(meta["frame_hw"])
    for name in ("full", "missing", "single"):
        for canvas in map(tuple, meta["canvases_hw"]):
            yield name, arrays[f"keypoints/{name}"], frame, canvas, f"{name}/{canvas[0]}x{canvas[1]}"


def test_fpdm_official_draw_is_pixel_exact(official):
    """Same canvas coordinates and the same RGB bytes as the official draw_img, on both canvases
    (550x375 on-the-fly training render, 1101x750 pre-rendered pose_img), missing points included."""
    meta, arrays = official
    n = 0
    for name, kp, frame, canvas, key in _cases(meta, arrays):
        assert np.array_equal(fpdm_canvas_keypoints(kp, frame, canvas), arrays[f"canvas_keypoints/{key}"]), key
        ours = render_skeleton_fpdm(kp, frame, canvas)
        want = arrays[f"draw/{key}"]
        assert ours.shape == want.shape == (*canvas, 3) and ours.dtype == np.uint8
        assert np.array_equal(ours, want), f"{key}: {int((ours != want).any(-1).sum())} pixels differ"
        n += 1
    assert n == 6
    # the fixture really has missing points, off-frame points and an empty-limb pose
    assert np.isnan(arrays["keypoints/missing"]).any() and (arrays["keypoints/missing"][:, 0] < 0).any()
    assert np.isfinite(arrays["keypoints/single"]).all(axis=1).sum() == 1


def test_fpdm_official_jpeg_round_trip_is_exact(official):
    """The pre-rendered pose_img path: JPEG quality 100 written and read back by PIL."""
    meta, arrays = official
    for name, kp, frame, canvas, key in _cases(meta, arrays):
        if f"jpeg/{key}" in arrays:
            assert np.array_equal(render_skeleton_fpdm(kp, frame, canvas, jpeg_quality=100), arrays[f"jpeg/{key}"]), key


def test_fpdm_official_model_inputs_match(official):
    """render_batch_fpdm = draw (+ JPEG) + PIL bicubic to the UNet (512x352) and CLIP (224x224) inputs.

    Exact under any Pillow: the fixture was made with the official pin, 10.3.0, which always resizes
    width first; later Pillows sometimes resize height first (under 13.0.0 the 550x375 -> 224x224
    resize then differed by up to 10 levels on ~1 % of the values), and ``pil_bicubic`` runs the two
    passes in 10.3's order itself.
    """
    meta, arrays = official
    for name, kp, frame, canvas, key in _cases(meta, arrays):
        for jpeg in (None, 100) if f"jpeg/{key}" in arrays else (None,):
            style = PoseStyle("fpdm_official", canvas, jpeg)
            for what, size in (("unet", (512, 352)), ("clip", (224, 224))):
                want = arrays[f"{what}/{'jpeg' if jpeg else 'draw'}/{key}"]
                got = render_batch_fpdm(torch.from_numpy(kp)[None], frame, size, style)[0]
                assert got.shape == (3, *size)
                got = (got * 255).round().byte().permute(1, 2, 0).numpy()
                diff = np.abs(got.astype(int) - want)
                assert diff.max() == 0, (key, what, jpeg, PIL.__version__, diff.max())


def test_fpdm_official_style_facts():
    """What makes the official drawing differ from the bench one, checked directly."""
    frame = (256, 176)
    kp = np.full((18, 2), np.nan, np.float32)
    kp[0] = (88, 40)
    img = render_skeleton_fpdm(kp, frame, frame)
    # joint 0's listed colour (255, 0, 0) comes out blue: drawn as BGR, converted BGR -> RGB
    assert tuple(img[40, 88]) == (0, 0, 255)
    # fixed radius 4 px, whatever the canvas (the bench renderer scales with the frame)
    for canvas in ((256, 176), (1101, 750)):
        lit = render_skeleton_fpdm(kp, frame, canvas).any(axis=2).sum()
        assert 40 <= lit <= 60  # a radius-4 disc
    # a limb over black is blended at alpha 0.6: 0.6 * 255 = 153 in its saturated channel
    kp = np.full((18, 2), np.nan, np.float32)
    kp[8], kp[9] = (60, 100), (60, 200)  # r-hip -> r-knee: limb 7, colour (0, 255, 85) -> RGB (85, 255, 0)
    img = render_skeleton_fpdm(kp, frame, frame)
    assert tuple(img[150, 60]) == (51, 153, 0)
    # only 17 limbs: OpenPose's pairs 18 and 19 (r-shoulder - l-ear, l-shoulder - r-ear) are not drawn
    kp = np.full((18, 2), np.nan, np.float32)
    kp[2], kp[17] = (40, 150), (140, 150)
    img = render_skeleton_fpdm(kp, frame, frame)
    assert not img[150, 90].any() and img[150, 40].any() and img[150, 140].any()
    with pytest.raises(ValueError, match="COCO-18"):
        render_skeleton_fpdm(np.zeros((133, 2), np.float32), frame)


def test_pose_style_config():
    assert PoseStyle.from_config(None) == PoseStyle() and not PoseStyle().official  # absent = bench
    cfg = {"style": "fpdm_official", "canvas": [1101, 750], "jpeg_quality": 100,
           "train": {"canvas": [550, 375], "jpeg_quality": None}}
    assert PoseStyle.from_config(cfg) == PoseStyle("fpdm_official", (1101, 750), 100)
    assert PoseStyle.from_config(cfg, train=True) == PoseStyle("fpdm_official", (550, 375), None)
    for bad in ({"style": "openpose"}, {"style": "bench", "canvas": [10, 10]}, {"colour": 1},
                {"style": "fpdm_official", "canvas": [10]}, {"style": "fpdm_official", "jpeg_quality": 0},
                {"style": "fpdm_official", "train": {"style": "bench"}}):
        with pytest.raises(ValueError):
            PoseStyle.from_config(bad)


def test_fpdm_official_differs_from_bench_and_batches():
    kp = _pose18()
    bench = render_skeleton(kp, (128, 96))
    off = render_skeleton_fpdm(kp, (128, 96))
    assert off.shape == bench.shape and not np.array_equal(off, bench)
    kps = torch.from_numpy(np.stack([kp, kp + 3]))
    out = render_batch_fpdm(kps, (128, 96), (64, 48), PoseStyle("fpdm_official", (256, 192), None))
    assert out.shape == (2, 3, 64, 48) and out.dtype == torch.float32
    one = pil_bicubic(render_skeleton_fpdm(kp + 3, (128, 96), (256, 192)), (64, 48))
    assert torch.equal(out[1], torch.from_numpy(np.array(one)).permute(2, 0, 1).float() / 255)
