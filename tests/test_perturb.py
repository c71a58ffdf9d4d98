"""Input perturbations (fpdm_bench.perturb): identity at severity 0, determinism, no mutation,
monotone severities, exact limb/swap/flip index tables, registry errors, docs in sync."""
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fpdm_bench.data.keypoints import COCO18_NAMES
from fpdm_bench.perturb import (PERTURBATIONS, apply_perturbation, describe_perturbations, get_perturbation,
                                parse_perturbation, perturbation_rng)
from fpdm_bench.perturb.base import flip_permutation
from fpdm_bench.perturb.pose import Limb
from fpdm_bench.perturb.source import person_mask
from fpdm_bench.registry import UnknownName

FORMATS = {"coco18": 18, "wholebody133": 133}
NAMES = [
    "pose.jitter", "pose.dropout", "pose.limb", "pose.scale", "pose.shift", "pose.rotate", "pose.swap",
    "source.occlusion", "source.blur", "source.color", "source.jpeg", "source.downsample",
    "source.background", "source.flip",
]
TENSOR_KEYS = ("source", "target", "source_kp", "target_kp")


def make_sample(fmt="coco18", hw=(64, 44), pair_id="p0", seed=0, missing=(3,), margin=0.2):
    """A fake sample: noise images, keypoints well inside the frame, a few points missing."""
    H, W = hw
    g = torch.Generator().manual_seed(seed)
    K = FORMATS[fmt]

    def pose():
        lo = torch.tensor([margin * W, margin * H])
        span = torch.tensor([(1 - 2 * margin) * (W - 1), (1 - 2 * margin) * (H - 1)])
        kp = lo + torch.rand(K, 2, generator=g) * span
        kp[list(missing)] = float("nan")
        return kp

    return {
        "pair_id": pair_id, "source_name": "a.jpg", "target_name": "b.jpg",
        "source": torch.rand(3, H, W, generator=g), "target": torch.rand(3, H, W, generator=g),
        "source_kp": pose(), "target_kp": pose(),
    }


def bits(t: torch.Tensor) -> bytes:
    """Bit pattern (so NaN == NaN when produced the same way)."""
    return t.detach().cpu().contiguous().numpy().tobytes()


def same_sample(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        bits(a[k]) == bits(b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def test_registry_lists_every_perturbation():
    assert sorted(PERTURBATIONS.names()) == sorted(NAMES)
    for name in NAMES:
        p = get_perturbation(name)
        assert p.name == name and p.applies_to == name.split(".")[0]
        assert len(p.levels) == 5 and p.unit
        assert PERTURBATIONS.help(name)  # the docstring's first line


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_identity(name, fmt):
    s = make_sample(fmt)
    out = apply_perturbation(s, name, 0, seed=1, keypoint_format=fmt)
    assert out is not s
    assert out.keys() == s.keys()
    for k in s:
        assert out[k] is s[k]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_contract(name, fmt):
    """Every severity: same keys, shapes, dtypes; images in [0, 1]; nothing mutated; the target image
    never changes; a pose perturbation leaves the source alone and a source one the target pose."""
    s = make_sample(fmt)
    before = {k: s[k].clone() for k in TENSOR_KEYS}
    p = get_perturbation(name)
    for severity in range(1, 6):
        out = apply_perturbation(s, name, severity, seed=3, keypoint_format=fmt)
        assert out.keys() == s.keys()
        for k in TENSOR_KEYS:
            assert out[k].shape == s[k].shape and out[k].dtype == s[k].dtype, (k, severity)
        for k in ("source", "target"):
            assert 0 <= float(out[k].min()) and float(out[k].max()) <= 1
        assert bits(out["target"]) == bits(s["target"])
        if p.applies_to == "pose":
            assert bits(out["source"]) == bits(s["source"]) and bits(out["source_kp"]) == bits(s["source_kp"])
        else:
            assert bits(out["target_kp"]) == bits(s["target_kp"])
            if name != "source.flip":
                assert bits(out["source_kp"]) == bits(s["source_kp"])
        changed = "target_kp" if p.applies_to == "pose" else "source"
        if severity == 5:
            assert bits(out[changed]) != bits(s[changed])  # it does something
    for k in TENSOR_KEYS:
        assert bits(s[k]) == bits(before[k]), f"{name} mutated sample[{k!r}]"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_per_pair(name):
    """Same (seed, pair, name, severity): bit-identical. Random ones vary with the pair id (and the
    seed); deterministic ones do not."""
    s = make_sample("coco18")
    a = apply_perturbation(s, name, 2, seed=5, keypoint_format="coco18")
    b = apply_perturbation(make_sample("coco18"), name, 2, seed=5, keypoint_format="coco18")
    assert same_sample(a, b)
    outs = []
    for i in range(8):
        t = dict(s, pair_id=f"pair{i}")
        outs.append(apply_perturbation(t, name, 2, seed=5, keypoint_format="coco18"))
    distinct = {bits(o["source"]) + bits(o["source_kp"]) + bits(o["target_kp"]) for o in outs}
    if get_perturbation(name).random:
        assert len(distinct) > 1
        other_seed = {bits(apply_perturbation(dict(s, pair_id=f"pair{i}"), name, 2, seed=6)["source"])
                      + bits(apply_perturbation(dict(s, pair_id=f"pair{i}"), name, 2, seed=6)["target_kp"])
                      for i in range(8)}
        assert other_seed != distinct
    else:
        assert len(distinct) == 1


def test_rng_depends_on_each_input():
    base = perturbation_rng(0, "p", "pose.jitter", 1).random(4)
    assert np.array_equal(base, perturbation_rng(0, "p", "pose.jitter", 1).random(4))
    for args in [(1, "p", "pose.jitter", 1), (0, "q", "pose.jitter", 1), (0, "p", "pose.dropout", 1),
                 (0, "p", "pose.jitter", 2)]:
        assert not np.array_equal(base, perturbation_rng(*args).random(4))


def test_jitter_grows_with_severity():
    means = []
    for severity in range(1, 6):
        d = []
        for i in range(6):
            s = make_sample("coco18", hw=(256, 176), pair_id=f"p{i}", seed=i, margin=0.25)
            out = apply_perturbation(s, "pose.jitter", severity, seed=0, keypoint_format="coco18")
            both = ~(s["target_kp"].isnan().any(1) | out["target_kp"].isnan().any(1))
            d.append((out["target_kp"] - s["target_kp"])[both].abs())
        means.append(float(torch.cat(d).mean()))
    assert all(a < b for a, b in zip(means, means[1:])), means
    # mean |N(0, σ)| = σ sqrt(2/π) ≈ 0.8 σ
    for m, sigma in zip(means, get_perturbation("pose.jitter").levels):
        assert 0.6 * sigma < m < 1.0 * sigma, (m, sigma)


def test_dropout_rate_grows_with_severity():
    rates = []
    for severity in range(1, 6):
        s = make_sample("wholebody133", missing=())
        out = apply_perturbation(s, "pose.dropout", severity, seed=0)
        rates.append(float(out["target_kp"].isnan().any(1).float().mean()))
    assert all(a < b for a, b in zip(rates, rates[1:])), rates
    for r, p in zip(rates, get_perturbation("pose.dropout").levels):
        assert abs(r - p) < 0.15


# The documented limbs, written out here independently of fpdm_bench.perturb.base.LIMBS.
EXPECTED_LIMBS = {
    "coco18": {"r_arm": [3, 4], "l_arm": [6, 7], "r_leg": [9, 10], "l_leg": [12, 13], "head": [0, 14, 15, 16, 17]},
    "wholebody133": {
        "r_arm": [8, 10, *range(112, 133)], "l_arm": [7, 9, *range(91, 112)],
        "r_leg": [14, 16, 20, 21, 22], "l_leg": [13, 15, 17, 18, 19], "head": [0, 1, 2, 3, 4, *range(23, 91)],
    },
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_limb_removes_exactly_the_documented_points(fmt):
    limbs = EXPECTED_LIMBS[fmt]
    unions = {}
    for n in range(1, 6):
        for combo in itertools.combinations(limbs, n):
            unions[frozenset(i for name in combo for i in limbs[name])] = n
    seen = set()
    for i in range(6):
        s = make_sample(fmt, pair_id=f"p{i}", missing=())
        for severity in range(1, 6):
            out = apply_perturbation(s, "pose.limb", severity, seed=0, keypoint_format=fmt)
            nan = frozenset(np.flatnonzero(out["target_kp"].isnan().any(1).numpy()).tolist())
            assert unions.get(nan) == severity, (severity, sorted(nan))
            kept = ~out["target_kp"].isnan().any(1)
            assert torch.equal(out["target_kp"][kept], s["target_kp"][kept])  # the rest does not move
            seen.add(nan)
    assert len(seen) > 5  # which limbs is random
    assert Limb.removed(fmt, limbs) == sorted(i for v in limbs.values() for i in v)


def swapped_name(n: str) -> str:
    return "l_" + n[2:] if n.startswith("r_") else "r_" + n[2:] if n.startswith("l_") else n


def test_flip_permutation_tables():
    perm = flip_permutation("coco18")
    assert [COCO18_NAMES[j] for j in perm] == [swapped_name(n) for n in COCO18_NAMES]
    wb = flip_permutation("wholebody133")
    assert np.array_equal(wb[wb], np.arange(133))  # an involution
    assert list(wb[:17]) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert list(wb[17:23]) == [20, 21, 22, 17, 18, 19]
    assert list(wb[91:112]) == list(range(112, 133)) and list(wb[112:133]) == list(range(91, 112))
    face = wb[23:91] - 23
    assert list(face[:17]) == list(range(16, -1, -1))  # the jaw line reverses
    assert face[36] == 45 and face[30] == 30 and face[48] == 54 and face[62] == 62


@pytest.mark.parametrize("fmt", FORMATS)
def test_swap_stages(fmt):
    s = make_sample(fmt, missing=())
    kp = s["target_kp"]
    wrists = (4, 7) if fmt == "coco18" else (9, 10)
    shoulders = (2, 5) if fmt == "coco18" else (6, 5)
    outs = [apply_perturbation(s, "pose.swap", sev, seed=0, keypoint_format=fmt)["target_kp"] for sev in range(1, 6)]
    assert torch.equal(outs[0][wrists[0]], kp[wrists[1]]) and torch.equal(outs[0][shoulders[0]], kp[shoulders[0]])
    assert torch.equal(outs[2][shoulders[0]], kp[shoulders[1]])
    assert torch.equal(outs[4], kp[torch.from_numpy(flip_permutation(fmt))])
    moved = [int((o != kp).any(1).sum()) for o in outs]
    assert all(a < b for a, b in zip(moved, moved[1:])), moved  # more points relabelled each stage
    if fmt == "wholebody133":
        assert torch.equal(outs[0][91:112], kp[112:133])  # hands go with the wrists


@pytest.mark.parametrize("fmt", FORMATS)
def test_flip_twice_is_identity(fmt):
    s = make_sample(fmt)
    W = s["source"].shape[-1]
    once = apply_perturbation(s, "source.flip", 1, seed=0, keypoint_format=fmt)
    twice = apply_perturbation(once, "source.flip", 1, seed=0, keypoint_format=fmt)
    assert torch.equal(twice["source"], s["source"])
    assert torch.equal(twice["source_kp"].isnan(), s["source_kp"].isnan())
    assert torch.allclose(twice["source_kp"], s["source_kp"], atol=1e-5, equal_nan=True)
    # once: the image is mirrored, and the point labelled "right wrist" is the mirrored left wrist
    assert torch.equal(once["source"], s["source"].flip(-1))
    r, l = (4, 7) if fmt == "coco18" else (10, 9)
    assert torch.allclose(once["source_kp"][r], torch.stack([W - 1 - s["source_kp"][l, 0], s["source_kp"][l, 1]]))
    # every severity is the same flip
    for severity in range(2, 6):
        assert same_sample(apply_perturbation(s, "source.flip", severity, seed=0, keypoint_format=fmt), once)


def test_scale_shift_rotate_geometry():
    s = make_sample("coco18", hw=(256, 176), margin=0.4)
    kp = s["target_kp"].double()
    vis = ~kp.isnan().any(1)
    centre = (kp[vis].amin(0) + kp[vis].amax(0)) / 2
    for severity, f in enumerate(get_perturbation("pose.scale").levels, 1):
        out = apply_perturbation(s, "pose.scale", severity, seed=0)["target_kp"].double()
        assert torch.allclose(out[vis] - centre, f * (kp[vis] - centre), atol=1e-3)
    for severity, frac in enumerate(get_perturbation("pose.shift").levels, 1):
        out = apply_perturbation(s, "pose.shift", severity, seed=0)["target_kp"].double()
        step = out[vis] - kp[vis]
        assert torch.allclose(step, step[0].expand_as(step), atol=1e-3)
        assert abs(float(step[0].norm()) - frac * 176) < 1e-2
    d0 = torch.cdist(kp[vis], kp[vis])
    for severity, deg in enumerate(get_perturbation("pose.rotate").levels, 1):
        out = apply_perturbation(s, "pose.rotate", severity, seed=0)["target_kp"].double()
        assert torch.allclose(torch.cdist(out[vis], out[vis]), d0, atol=1e-3)  # rigid
        a, b = kp[vis][0] - centre, out[vis][0] - centre
        angle = float(torch.rad2deg(torch.atan2(a[0] * b[1] - a[1] * b[0], a @ b)))
        assert abs(abs(angle) - deg) < 1e-2


def test_points_leaving_the_frame_become_missing():
    s = make_sample("coco18", hw=(64, 44), missing=())
    s["target_kp"][0] = torch.tensor([1.0, 1.0])
    s["target_kp"][1] = torch.tensor([42.0, 62.0])
    for i in range(10):
        out = apply_perturbation(dict(s, pair_id=f"p{i}"), "pose.shift", 5, seed=0)["target_kp"]
        x, y = out[:, 0], out[:, 1]
        ok = ~out.isnan().any(1)
        assert bool(((x[ok] >= 0) & (x[ok] <= 43) & (y[ok] >= 0) & (y[ok] <= 63)).all())
        assert out[[0, 1]].isnan().any()  # 8.8 px in any direction takes one of the corner points out


def high_frequency_energy(img: torch.Tensor) -> float:
    return float((img[:, 1:, :] - img[:, :-1, :]).pow(2).mean() + (img[:, :, 1:] - img[:, :, :-1]).pow(2).mean())


def test_blur_removes_high_frequencies_monotonically():
    s = make_sample("coco18")
    e = [high_frequency_energy(apply_perturbation(s, "source.blur", sev, seed=0)["source"]) for sev in range(6)]
    assert all(a > b for a, b in zip(e, e[1:])), e


@pytest.mark.parametrize("name", ["source.jpeg", "source.downsample", "source.blur"])
def test_error_grows_with_severity(name):
    s = make_sample("coco18")
    err = [float((apply_perturbation(s, name, sev, seed=0)["source"] - s["source"]).abs().mean()) for sev in range(6)]
    assert err[0] == 0 and all(a < b for a, b in zip(err, err[1:])), err


@pytest.mark.parametrize("fmt", FORMATS)
def test_occlusion_area_grows(fmt):
    s = make_sample(fmt)
    s["source"] = torch.zeros_like(s["source"])
    H, W = s["source"].shape[-2:]
    for i in range(3):
        areas = []
        for severity, frac in enumerate(get_perturbation("source.occlusion").levels, 1):
            out = apply_perturbation(dict(s, pair_id=f"p{i}"), "source.occlusion", severity, seed=0)["source"]
            covered = (out == 0.5).all(0)
            areas.append(int(covered.sum()))
            assert abs(areas[-1] / (frac * H * W) - 1) < 0.15, (severity, areas[-1], frac * H * W)
            rows, cols = covered.any(1).nonzero(), covered.any(0).nonzero()
            assert int(covered.sum()) == len(rows) * len(cols)  # one rectangle
        assert all(a < b for a, b in zip(areas, areas[1:])), areas


@pytest.mark.parametrize("fmt", FORMATS)
def test_background_keeps_the_person(fmt):
    s = make_sample(fmt, missing=(), margin=0.35)
    for severity in range(1, 6):
        out = apply_perturbation(s, "source.background", severity, seed=0)["source"]
        changed = (out != s["source"]).any(0).numpy()
        mask = person_mask(s["source_kp"].double().numpy(), (64, 44), fmt, 0.12)
        assert not (changed & mask).any()  # nothing on the person changes
        assert changed[~mask].mean() > 0.95  # nearly all of the background does
        assert mask.any() and not mask.all()
    # no visible source keypoint: the whole image is background
    s["source_kp"] = torch.full_like(s["source_kp"], float("nan"))
    out = apply_perturbation(s, "source.background", 5, seed=0)["source"]
    assert (out != s["source"]).any(0).float().mean() > 0.95


def test_person_mask_fills_the_torso():
    kp = np.full((18, 2), np.nan)
    kp[[1, 2, 5, 8, 11]] = [[22, 10], [8, 12], [36, 12], [10, 40], [34, 40]]  # neck, shoulders, hips
    mask = person_mask(kp, (64, 44), "coco18", 0.12)
    assert mask[30, 22] and mask[30, 12] and mask[30, 32]  # inside the torso, away from every bone
    assert not mask[55, 22] and not mask[5, 2]
    kp[[8, 11]] = np.nan  # hips below the frame: the torso goes down to the bottom under the shoulders
    mask = person_mask(kp, (64, 44), "coco18", 0.12)
    assert mask[55, 22] and mask[63, 10] and not mask[55, 2]


def test_color_changes_brightness_or_contrast():
    s = make_sample("coco18")
    for severity in range(1, 6):
        out = apply_perturbation(s, "source.color", severity, seed=0)["source"]
        dm = abs(float(out.mean() - s["source"].mean()))
        ds = abs(float(out.std() - s["source"].std()))
        assert dm > 0.01 or ds > 0.01


def test_unknown_names_and_bad_arguments():
    s = make_sample("coco18")
    with pytest.raises(UnknownName, match="Did you mean 'pose.jitter'"):
        get_perturbation("pose.jiter")
    with pytest.raises(UnknownName, match="source.blur"):
        apply_perturbation(s, "source.blurr", 1, seed=0)
    with pytest.raises(UnknownName):
        parse_perturbation("pose.jiter:2")
    assert parse_perturbation("pose.jitter:3") == ("pose.jitter", 3)
    assert parse_perturbation(" source.flip:0 ") == ("source.flip", 0)
    for bad in ["pose.jitter", "pose.jitter:6", "pose.jitter:x", ":3"]:
        with pytest.raises(ValueError):
            parse_perturbation(bad)
    for bad in [6, -1, 1.5, True, "2"]:
        with pytest.raises(ValueError):
            apply_perturbation(s, "pose.jitter", bad, seed=0)
    with pytest.raises(ValueError, match="133"):
        apply_perturbation(s, "pose.jitter", 1, seed=0, keypoint_format="wholebody133")
    with pytest.raises(ValueError, match="unknown keypoint format"):
        apply_perturbation(s, "pose.jitter", 1, seed=0, keypoint_format="coco-wholebody-133")
    # None picks the format from the number of points
    assert same_sample(apply_perturbation(s, "pose.limb", 2, seed=0),
                       apply_perturbation(s, "pose.limb", 2, seed=0, keypoint_format="coco18"))


def level_text(v) -> str:
    return f"{v:g}"


def test_describe_and_docs_table():
    described = describe_perturbations()
    json.dumps(described)  # goes into results.json
    assert [d["name"] for d in described] == sorted(NAMES)
    table = (Path(__file__).resolve().parents[1] / "docs" / "perturbations.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in table.splitlines() if line.startswith("| `")}
    for d in described:
        assert set(d) >= {"name", "applies_to", "unit", "levels", "doc"}
        assert d["doc"] and len(d["levels"]) == 5
        row = rows[d["name"]]
        assert ", ".join(level_text(v) for v in d["levels"]) in row, d["name"]
        assert d["unit"] in row, d["name"]
