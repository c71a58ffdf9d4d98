"""The ``pocold`` adapter through the runner, on the official tiny pipeline folder
(tests/fixtures/pocold): per-pair noise (batch 1 = batch 2), NFE, pose input recorded, DensePose
folders checked before the run; and the rendered part maps on hand-checked keypoints."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.runner import RunConfig, run
from fpdm_bench_baselines.pocold.adapter import PoCoLDAdapter
from fpdm_bench_baselines.pocold.parts import HEAD, TORSO, one_hot, render_parts

PIPE = Path(__file__).parent / "fixtures" / "pocold" / "pipeline_tiny"


def tiny_folder(path: Path) -> Path:
    shutil.copytree(PIPE, path)
    (path / "fpdm_bench.json").write_text(json.dumps({"gen_size": [64, 48], "sampling": {"steps": 3}}))
    return path


def _run(fixture_root, tmp_path, name, batch_size, **model_args):
    return run(RunConfig(model="pocold", dataset="fixture", data_root=str(fixture_root), out=str(tmp_path / name),
                         checkpoint=str(tmp_path / "pocold"), model_args=model_args, batch_size=batch_size, limit=2,
                         progress=False, protocol="paired"), log=lambda m: None)


def _images(folder: Path) -> dict:
    return {p.name: np.asarray(Image.open(p), np.int16) for p in (folder / "samples").iterdir()}


def test_runs_through_the_runner_with_per_pair_noise(fixture_root, tmp_path):
    tiny_folder(tmp_path / "pocold")
    res = {b: _run(fixture_root, tmp_path, f"b{b}", b) for b in (1, 2)}
    a, b = _images(tmp_path / "b1"), _images(tmp_path / "b2")
    assert a.keys() == b.keys() and len(a) == 2
    assert max(int(np.abs(a[k] - b[k]).max()) for k in a) <= 1  # batched-conv rounding at most
    model = res[1]["model"]
    # 3 steps of PNDM with skip_prk_steps are 4 evaluations (the second timestep twice)
    assert model["nfe"] == 3 * 4 + 1 and model["scheduler"] == "pndm" and model["resolution"] == [64, 48]
    assert model["pose_input"].startswith("part maps rendered") and len(model["checkpoint_sha256"]) == 64
    assert "unet/diffusion_pytorch_model.bin" in model["checkpoint_sha256_of"]


def test_densepose_folder_is_checked_before_the_run(fixture_root, tmp_path):
    tiny_folder(tmp_path / "pocold")
    dp = tmp_path / "dp"
    dp.mkdir()
    with pytest.raises(BenchError, match=r"dp: 2 of the 2 pairs have no DensePose map of their target \(missing: "):
        _run(fixture_root, tmp_path, "missing", 1, densepose=str(dp))
    assert not (tmp_path / "missing" / "samples").exists() or not any((tmp_path / "missing" / "samples").iterdir())
    from fpdm_bench.data import open_dataset

    ds = open_dataset("fixture", root=fixture_root)
    rng = np.random.default_rng(0)
    for rec in ds.pairs[:2]:
        iuv = rng.integers(0, 25, (88, 64, 3), dtype=np.uint8)
        Image.fromarray(iuv).save(dp / f"{Path(rec.target).stem}.png")
    res = _run(fixture_root, tmp_path, "dp", 1, densepose=str(dp))
    assert res["model"]["pose_input"] == f"densepose maps from {dp}" and len(_images(tmp_path / "dp")) == 2


def test_errors_are_one_line(tmp_path, monkeypatch):
    import fpdm_bench_baselines.pocold.adapter as mod

    monkeypatch.setattr(mod, "TINY_CHECKPOINT", tmp_path / "tiny")
    with pytest.raises(WeightsMissing, match=r"tiny PoCoLD unavailable: .*unet/config\.json missing"):
        PoCoLDAdapter.from_pretrained(None)
    with pytest.raises(BenchError, match="scheduler 'ddim' is not offered"):
        PoCoLDAdapter.from_pretrained(str(tmp_path), scheduler="ddim")
    with pytest.raises(BenchError, match="decay must be true or false"):
        PoCoLDAdapter.from_pretrained(str(tiny_folder(tmp_path / "p")), decay="maybe")


# Rendered part maps: COCO-18 keypoints of a person standing straight on a 200x100 canvas (x, y).
STANDING = np.array([[50, 20], [50, 40], [35, 40], [30, 70], [28, 95], [65, 40], [70, 70], [72, 95],
                     [40, 100], [40, 140], [40, 180], [60, 100], [60, 140], [60, 180],
                     [46, 16], [54, 16], [42, 18], [58, 18]], np.float64)


def test_rendered_parts_label_each_body_segment():
    parts = render_parts(STANDING, (200, 100), (200, 100))
    assert parts.shape == (200, 100) and parts.dtype == np.uint8
    # each segment's midpoint carries its DensePose id (hand-checked: the ids of parts.py's docstring)
    expect = {(50, 70): TORSO, (50, 12): HEAD, (32, 55): 16, (29, 83): 20, (68, 55): 15, (71, 83): 19,
              (40, 120): 7, (40, 160): 11, (60, 120): 8, (60, 160): 12, (28, 95): 3, (72, 95): 4,
              (40, 180): 6, (60, 180): 5}
    assert {xy: int(parts[xy[1], xy[0]]) for xy in expect} == expect
    assert parts[5, 5] == 0 and parts[195, 95] == 0  # background


def test_missing_keypoints_give_empty_parts():
    kp = STANDING.copy()
    kp[3] = np.nan  # right elbow: both right-arm segments go
    parts = render_parts(kp, (200, 100), (200, 100))
    full = render_parts(STANDING, (200, 100), (200, 100))
    assert not np.isin(parts, [16, 20]).any() and np.isin(full, [16, 20]).any()
    assert (parts == 3).any()  # the right hand (wrist present) stays
    assert not render_parts(np.full((18, 2), np.nan), (200, 100), (200, 100)).any()
    # frames scale: the same person in a 400x200 frame drawn on a 200x100 canvas lands on the same parts
    assert (render_parts(STANDING * 2, (400, 200), (200, 100)) == full).mean() > 0.99
    oh = one_hot(full, (25, 12))
    assert oh.shape == (25, 25, 12) and float(oh.sum(0).min()) == 1.0
