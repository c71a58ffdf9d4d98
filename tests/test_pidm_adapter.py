"""The ``pidm`` adapter through the runner: official last.pt and our folders, per-sample noise, sizes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fpdm_bench.data.keypoints import DEEPFASHION_PAD_X, pad_x
from fpdm_bench.errors import BenchError
from fpdm_bench.runner import RunConfig, run
from fpdm_bench_baselines.pidm.adapter import PIDMAdapter
from fpdm_bench_baselines.pidm.checkpoint import save_pretrained
from fpdm_bench_baselines.pidm.diffusion import GaussianDiffusion, respaced_timesteps
from fpdm_bench_baselines.pidm.network import PIDMConfig, PIDMUNet
from fpdm_bench_baselines.pidm.pose import canvas_keypoints

FIX = Path(__file__).parent / "fixtures" / "pidm"
MICRO = PIDMConfig(image_size=32, model_channels=8, embed_channels=16, attention_resolutions=(16,),
                   channel_mult=(1, 2), num_res_blocks=1, dropout=0.0)


def _micro_folder(path: Path, canvas=(32, 24)) -> Path:
    torch.manual_seed(0)
    model = PIDMUNet(MICRO)
    with torch.no_grad():  # zero-initialised layers would make the output ignore its inputs
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.1)
    save_pretrained(model, path, extra={"canvas": list(canvas), "output_resize": "bicubic",
                                        "sampling": {"scheduler": "ddim", "steps": 3, "guidance": 2.0}})
    return path


def _run(root, out, checkpoint, **kw):
    cfg = dict(model="pidm", dataset="fixture", data_root=str(root), out=str(out), checkpoint=str(checkpoint),
               progress=False, protocol="paired")
    cfg.update(kw)
    return run(RunConfig(**cfg), log=lambda m: None)


def _images(folder: Path) -> dict:
    return {p.name: np.asarray(Image.open(p), np.int16) for p in sorted((folder / "samples").iterdir())}


def test_batch_size_does_not_change_the_images(fixture_root, tmp_path):
    ck = _micro_folder(tmp_path / "ck")
    runs = {b: _run(fixture_root, tmp_path / f"b{b}", ck, batch_size=b, limit=4) for b in (1, 4)}
    a, b = _images(tmp_path / "b1"), _images(tmp_path / "b4")
    assert a.keys() == b.keys() and len(a) == 4
    # one generator per pair: the same noise; batched convolutions may round differently (<= 1 level)
    assert max(int(np.abs(a[k] - b[k]).max()) for k in a) <= 1
    # the official DDIM grid range(0, 1000, 1000 // 3) has 4 points: 4 iterations x 2 branches
    assert runs[1]["model"]["nfe"] == 8 and runs[1]["model"]["steps"] == 3
    # different pairs, different noise and poses: different images
    imgs = list(a.values())
    assert np.abs(imgs[0] - imgs[1]).mean() > 1


def test_official_last_pt_runs_through_the_runner(fixture_root, tmp_path):
    assert PIDMAdapter.from_pretrained(str(FIX / "last_tiny.pt")).resolution == (256, 256)  # the official canvas
    # (this tiny architecture attends at 1/2 and 1/4 of its input: a 32x32 canvas keeps the test fast)
    res = _run(fixture_root, tmp_path / "o", FIX / "last_tiny.pt", limit=2, model_args={"steps": 2, "canvas": [32, 32]})
    model = res["model"]
    assert model["checkpoint_format"] == "official last.pt" and model["resolution"] == [32, 32]
    assert model["output_resize"] == "pil-bicubic" and model["scheduler"] == "ddim" and model["guidance"] == 2.0
    from fpdm_bench.io import sha256_file

    assert model["checkpoint_sha256"] == sha256_file(FIX / "last_tiny.pt")
    assert all(v.shape == (32, 24, 3) for v in _images(tmp_path / "o").values())  # back to the batch frame


def test_ancestral_sampler_and_its_respacing(fixture_root, tmp_path):
    assert respaced_timesteps(1000) == list(range(1000))
    assert respaced_timesteps(4) == [0, 333, 666, 999]
    d = GaussianDiffusion.pidm().respaced(4)
    # the respaced process keeps the kept alpha-bars exactly
    assert np.allclose(d.alphas_cumprod, GaussianDiffusion.pidm().alphas_cumprod[[0, 333, 666, 999]], rtol=1e-12)
    ck = _micro_folder(tmp_path / "ck")
    res = _run(fixture_root, tmp_path / "a", ck, limit=2, model_args={"scheduler": "ddpm", "steps": 4})
    assert res["model"]["scheduler"] == "ddpm" and res["model"]["nfe"] == 8


@pytest.mark.parametrize("args, message", [
    ({"scheduler": "dpm"}, "unknown scheduler 'dpm'"),
    ({"steps": 0}, "steps must be in 1..1000"),
    ({"canvas": [31, 24]}, "multiples of 2"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, args, message):
    ck = _micro_folder(tmp_path / "ck")
    with pytest.raises(BenchError, match=message):
        PIDMAdapter.from_pretrained(str(ck), **args)


def test_checkpoint_errors_name_the_file(tmp_path):
    ck = _micro_folder(tmp_path / "ck")
    (ck / "model.safetensors").write_bytes((ck / "model.safetensors").read_bytes()[:100])
    with pytest.raises(BenchError, match=r"model\.safetensors: unreadable safetensors"):
        PIDMAdapter.from_pretrained(str(ck))
    with pytest.raises(BenchError, match=r"config\.json missing"):
        PIDMAdapter.from_pretrained(str(tmp_path))
    with pytest.raises(BenchError, match="no such file or folder"):
        PIDMAdapter.from_pretrained(str(tmp_path / "nope.pt"))


def test_padding_round_trip():
    """Pose files (PIDM, GFLA) store x in the 40-px-padded 256x256 frame; removing the pad gives our
    256x176 keypoints back exactly, and both give the same canvas points."""
    rng = np.random.default_rng(0)
    kp = np.stack([rng.integers(0, 176, 18), rng.integers(0, 256, 18)], 1).astype(np.float64)
    kp[3] = np.nan
    padded = pad_x(kp)
    assert np.array_equal(padded[:, 0] - DEEPFASHION_PAD_X, kp[:, 0], equal_nan=True)
    for canvas in [(256, 256), (256, 176), (64, 44)]:
        a = canvas_keypoints(kp, (256, 176), canvas)
        b = canvas_keypoints(padded - [DEEPFASHION_PAD_X, 0], (256, 176), canvas)
        assert np.array_equal(a, b) and (a[3] == -1).all()
    # on the annotation frame itself the points are unchanged (up to the official float ops)
    same = canvas_keypoints(kp, (256, 176), (256, 176))
    assert np.allclose(same[np.isfinite(kp).all(1)], kp[np.isfinite(kp).all(1)], atol=1e-9)
    # the 256x256 canvas stretches x by 256/176 (the published model's squashed people)
    wide = canvas_keypoints(kp, (256, 176), (256, 256))
    assert np.allclose(wide[0], kp[0] * [256 / 176, 1.0])


def test_convert_gives_a_folder_with_the_same_outputs(tmp_path, fixture_root):
    from click.testing import CliRunner

    from fpdm_bench_baselines.pidm.checkpoint import load_official, load_pretrained
    from fpdm_bench_baselines.pidm.convert import convert_command

    res = CliRunner().invoke(convert_command, [str(FIX / "last_tiny.pt"), str(tmp_path / "conv")])
    assert res.exit_code == 0, res.output
    a, _ = load_official(FIX / "last_tiny.pt", image_size=32)
    b, meta = load_pretrained(tmp_path / "conv")
    assert meta["canvas"] == [256, 256] and meta["converted_from"]["weights"] == "ema"
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
