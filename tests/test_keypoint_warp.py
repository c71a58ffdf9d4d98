"""keypoint-warp floor: geometry helpers, and the warp on figures this file draws itself."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: F401,E402  (shim before anything that may import torchvision)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from fpdm_bench.data.keypoints import COCO18_NAMES  # noqa: E402
from fpdm_bench.modeling.keypoint_warp import (affine_lstsq, body_parts, bone_transform, similarity_lstsq,  # noqa: E402
                                               to_coco18)
from fpdm_bench_baselines.keypoint_warp import KeypointWarp  # noqa: E402

H, W = 256, 176

# A front-facing figure (COCO-18 order; the person's right side is on the image left). The neck is
# the shoulders' midpoint, as whole-body input makes it, so 18- and 133-point runs can be compared.
POSE_A = np.array([
    [88, 42], [88, 64], [66, 64], [60, 100], [58, 134], [110, 64], [116, 100], [118, 134],
    [74, 140], [72, 185], [70, 230], [102, 140], [104, 185], [106, 230],
    [84, 36], [92, 36], [79, 39], [97, 39]], np.float32)
# Arms raised and spread, legs apart, the whole body a little to the right and the head tilted.
POSE_B = np.array([
    [98, 44], [96, 66], [74, 66], [50, 46], [36, 18], [118, 66], [142, 48], [156, 22],
    [84, 142], [70, 186], [60, 230], [110, 142], [124, 186], [134, 230],
    [93, 39], [101, 37], [88, 43], [105, 39]], np.float32)

LIMB_COLOURS = {(2, 3): (200, 40, 40), (3, 4): (230, 180, 150), (5, 6): (40, 60, 200), (6, 7): (230, 180, 150),
                (8, 9): (30, 120, 40), (9, 10): (20, 70, 30), (11, 12): (120, 40, 140), (12, 13): (70, 20, 90)}
WB_NAMES = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
            "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle"]


def _p(x):
    return int(round(float(x[0]))), int(round(float(x[1])))


def draw_figure(kp: np.ndarray, flat: bool = False, hands: np.ndarray | None = None) -> np.ndarray:
    """A textured stick person drawn from COCO-18 keypoints: float32 [H, W, 3] in [0, 1]."""
    if flat:
        img = np.full((H, W, 3), (210, 220, 235), np.uint8)
    else:  # a vertical gradient, like a studio wall
        ramp = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
        img = ((1 - ramp) * np.float32([225, 225, 240]) + ramp * np.float32([170, 170, 190])).astype(np.uint8)
        img = np.ascontiguousarray(np.broadcast_to(img, (H, W, 3)))
    for (a, b), c in LIMB_COLOURS.items():
        if a in (8, 11):  # legs behind the torso
            cv2.line(img, _p(kp[a]), _p(kp[b]), c, 16, lineType=cv2.LINE_AA)
    # striped torso: stripes are fixed to the torso frame so they move with it
    quad = np.float32([kp[2], kp[5], kp[11], kp[8]])
    body = np.zeros((H, W), np.uint8)
    cv2.fillConvexPoly(body, np.round(quad).astype(np.int32), 255)
    yy = np.mgrid[0:H, 0:W][0]
    stripe = ((yy - kp[1][1]) // 8) % 2 == 0
    img[(body > 0) & stripe] = (240, 200, 30)
    img[(body > 0) & ~stripe] = (60, 60, 60)
    for (a, b), c in LIMB_COLOURS.items():
        if a not in (8, 11):
            cv2.line(img, _p(kp[a]), _p(kp[b]), c, 12, lineType=cv2.LINE_AA)
    if hands is not None:
        for pts in hands:
            cv2.fillConvexPoly(img, cv2.convexHull(np.round(pts).astype(np.int32)), (250, 150, 120))
    cv2.line(img, _p(kp[1]), _p(kp[0]), (230, 180, 150), 10)
    cv2.circle(img, _p(kp[0] + [0, -6]), 13, (230, 180, 150), -1, lineType=cv2.LINE_AA)
    cv2.circle(img, _p(kp[0] + [0, -14]), 9, (60, 30, 10), -1, lineType=cv2.LINE_AA)  # hair
    return img.astype(np.float32) / 255


def batch_of(src_img, tgt_img, src_kp, tgt_kp) -> dict:
    t = lambda im: torch.from_numpy(im).permute(2, 0, 1)[None]  # noqa: E731
    return {"pair_id": ["a_2_b"], "source_name": ["a.jpg"], "target_name": ["b.jpg"],
            "source": t(src_img), "target": t(tgt_img),
            "source_kp": torch.from_numpy(src_kp)[None], "target_kp": torch.from_numpy(tgt_kp)[None]}


def ssim(a, b) -> float:
    return structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=2, data_range=1)


def to_wholebody(kp18: np.ndarray) -> np.ndarray:
    """COCO-18 -> 133 whole-body by keypoint names (written here from the names, not from the module)."""
    wb = np.full((133, 2), np.nan, np.float32)
    for i, name in enumerate(WB_NAMES):
        wb[i] = kp18[COCO18_NAMES.index(name)]
    return wb


def hand_points(kp18: np.ndarray, elbow: int, wrist: int) -> np.ndarray:
    """21 points fanned out beyond the wrist along the forearm (a flat 'hand')."""
    u = kp18[wrist] - kp18[elbow]
    u = u / np.hypot(*u)
    n = np.array([-u[1], u[0]], np.float32)
    pts = [kp18[wrist]]
    for f in range(5):
        for j in range(1, 5):
            pts.append(kp18[wrist] + u * (3 + 3 * j) + n * (f - 2) * 3)
    return np.array(pts, np.float32)


@pytest.fixture(scope="module")
def model():
    return KeypointWarp()


# --- geometry ---------------------------------------------------------------------------------------

def test_bone_transform_maps_the_bone_and_keeps_the_width():
    a0, b0 = np.array([10.0, 10.0]), np.array([10.0, 50.0])  # vertical bone, length 40
    a1, b1 = np.array([100.0, 20.0]), np.array([160.0, 20.0])  # horizontal bone, length 60
    m = bone_transform(a0, b0, a1, b1)
    ap = lambda p: m[:, :2] @ p + m[:, 2]  # noqa: E731
    np.testing.assert_allclose(ap(a0), a1, atol=1e-4)
    np.testing.assert_allclose(ap(b0), b1, atol=1e-4)
    # a point 5 px off the source bone lands 5 px off the target bone (no stretch across the limb)
    off = ap(a0 + np.array([5.0, 0.0])) - a1
    assert abs(np.hypot(*off) - 5.0) < 1e-4
    assert abs(off[0]) < 1e-4  # perpendicular to the (horizontal) target bone


def test_similarity_and_affine_recover_known_maps():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (6, 2))
    th, s = 0.3, 1.4
    lin = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    dst = src @ lin.T + [5.0, -7.0]
    m = similarity_lstsq(src, dst)
    np.testing.assert_allclose(m[:, :2], lin, atol=1e-4)
    np.testing.assert_allclose(m[:, 2], [5.0, -7.0], atol=1e-3)

    aff = np.array([[1.2, 0.3, 4.0], [-0.1, 0.8, 9.0]])
    dst = src @ aff[:, :2].T + aff[:, 2]
    np.testing.assert_allclose(affine_lstsq(src, dst), aff, atol=1e-3)
    # points on a line do not determine an affine: it falls back to a similarity instead of blowing up
    line = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    m = affine_lstsq(line, line + [3.0, 4.0])
    np.testing.assert_allclose(m, [[1, 0, 3], [0, 1, 4]], atol=1e-5)
    assert similarity_lstsq(np.zeros((2, 2)), np.ones((2, 2))) is None


def test_wholebody_maps_to_coco18_with_neck_between_shoulders():
    wb = to_wholebody(POSE_B)
    np.testing.assert_allclose(to_coco18(wb), POSE_B)
    wb[5] = np.nan  # a missing shoulder makes the neck missing too
    assert np.isnan(to_coco18(wb)[1]).all()
    with pytest.raises(ValueError, match="17"):
        to_coco18(np.zeros((17, 2), np.float32))


# --- the warp ---------------------------------------------------------------------------------------

def test_output_shape_range_and_info(model):
    a, b = draw_figure(POSE_A), draw_figure(POSE_B)
    batch = batch_of(a, b, POSE_A, POSE_B)
    batch2 = {k: (v + v if isinstance(v, list) else torch.cat([v, v])) for k, v in batch.items()}
    out = model.generate(batch2, [torch.Generator(), torch.Generator()])
    assert out.shape == (2, 3, H, W) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    info = model.info()
    assert info["name"] == "keypoint-warp" and info["parameters"] == 0 and info["nfe"] == 0
    assert info["description"]


def test_registered_under_its_name():
    from fpdm_bench.models import load_model

    assert isinstance(load_model("keypoint-warp"), KeypointWarp)


def test_identity_pose_gives_back_the_source(model):
    a = draw_figure(POSE_A)
    out = model.generate(batch_of(a, a, POSE_A, POSE_A), [None])[0].permute(1, 2, 0).numpy()
    figure = np.abs(a - draw_figure(np.full_like(POSE_A, -100))).max(2) > 0.05  # pixels the person covers
    assert figure.sum() > 3000
    assert np.abs(out - a)[figure].mean() < 0.01
    assert np.abs(out - a).mean() < 0.005


def test_translated_pose_moves_the_person(model):
    a = draw_figure(POSE_A, flat=True)
    bg = np.float32([210, 220, 235]) / 255
    shift = np.float32([14, -9])
    out = model.generate(batch_of(a, a, POSE_A, POSE_A + shift), [None])[0].permute(1, 2, 0).numpy()

    def centroid(im):
        ys, xs = np.nonzero(np.abs(im - bg).max(2) > 0.15)
        return np.array([xs.mean(), ys.mean()])

    moved = centroid(out) - centroid(a)
    np.testing.assert_allclose(moved, shift, atol=1.5)
    # and the source person is gone from where it stood: the fill there is background
    x, y = 59, 120  # on the source's right forearm
    assert np.abs(a[y, x] - bg).max() > 0.15
    assert np.abs(out[y, x] - bg).max() < 0.08


def test_beats_copy_source_on_a_two_pose_figure(model):
    a, b = draw_figure(POSE_A), draw_figure(POSE_B)
    out = model.generate(batch_of(a, b, POSE_A, POSE_B), [None])[0].permute(1, 2, 0).numpy()
    copy_ssim, warp_ssim = ssim(a, b), ssim(out, b)
    copy_mae, warp_mae = np.abs(a - b).mean(), np.abs(out - b).mean()
    assert warp_ssim > copy_ssim + 0.05, (warp_ssim, copy_ssim)
    assert warp_mae < 0.7 * copy_mae, (warp_mae, copy_mae)


@pytest.mark.parametrize("case", ["source", "target", "both", "all-source", "all-target", "head-only"])
def test_missing_keypoints_do_not_crash(model, case):
    rng = np.random.default_rng(1)
    s, t = POSE_A.copy(), POSE_B.copy()
    if case in ("source", "both"):
        s[rng.choice(18, 7, replace=False)] = np.nan
    if case in ("target", "both"):
        t[rng.choice(18, 7, replace=False)] = np.nan
    if case == "all-source":
        s[:] = np.nan
    if case == "all-target":
        t[:] = np.nan
    if case == "head-only":
        s[2:14] = np.nan
        t[2:14] = np.nan
    a, b = draw_figure(POSE_A), draw_figure(POSE_B)
    out = model.generate(batch_of(a, b, s, t), [None])
    assert out.shape == (1, 3, H, W) and torch.isfinite(out).all()
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    if case == "all-source":  # nothing to move: the source comes back
        np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), a)


def test_part_seen_only_in_the_source_is_erased():
    t = POSE_B.copy()
    t[[6, 7]] = np.nan  # left forearm not visible in the target
    parts = body_parts(POSE_A, t, (H, W))
    assert parts["l_forearm"].matrix is None and parts["l_upper_arm"].matrix is None
    assert parts["r_forearm"].matrix is not None
    s = POSE_A.copy()
    s[[9, 10]] = np.nan  # right shin not visible in the source: nothing to cut out
    assert "r_shin" not in body_parts(s, POSE_B, (H, W))


def test_wholebody_133_input(model):
    a, b = draw_figure(POSE_A), draw_figure(POSE_B)
    wa, wbk = to_wholebody(POSE_A), to_wholebody(POSE_B)
    # body points only: the same warp as the COCO-18 input (the neck is made from the shoulders)
    out18 = model.generate(batch_of(a, b, POSE_A, POSE_B), [None])
    out133 = model.generate(batch_of(a, b, wa, wbk), [None])
    torch.testing.assert_close(out133, out18)

    # with hands (91-111 left, 112-132 right) the hands become parts of their own
    ha = [hand_points(POSE_A, 6, 7), hand_points(POSE_A, 3, 4)]
    hb = [hand_points(POSE_B, 6, 7), hand_points(POSE_B, 3, 4)]
    wa[91:112], wa[112:133] = ha
    wbk[91:112], wbk[112:133] = hb
    parts = body_parts(wa, wbk, (H, W))
    assert {"l_hand", "r_hand"} <= set(parts)
    # the left hand's map takes the source hand points onto the target's
    m = parts["l_hand"].matrix
    np.testing.assert_allclose(ha[0] @ m[:, :2].T + m[:, 2], hb[0], atol=0.5)
    a, b = draw_figure(POSE_A, hands=ha), draw_figure(POSE_B, hands=hb)
    out = model.generate(batch_of(a, b, wa, wbk), [None])[0].permute(1, 2, 0).numpy()
    assert ssim(out, b) > ssim(a, b) + 0.05
    assert np.abs(out - b).mean() < 0.7 * np.abs(a - b).mean()


def test_deterministic_and_ignores_generators(model):
    a, b = draw_figure(POSE_A), draw_figure(POSE_B)
    batch = batch_of(a, b, POSE_A, POSE_B)
    o1 = model.generate(batch, [torch.Generator().manual_seed(1)])
    o2 = model.generate(batch, [torch.Generator().manual_seed(2)])
    assert torch.equal(o1, o2)
    # the input batch is not modified
    assert torch.equal(batch["source"][0].permute(1, 2, 0), torch.from_numpy(a))
