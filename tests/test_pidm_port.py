"""The PIDM port against data made by running the official code (tests/fixtures/pidm/README.md says
how): key manifests, golden arrays of the tiny model, the official pose tensor, an official-format
last.pt.

Tolerances: the port computes the same float32 operations in the same order as the official code
(on the machine that made the fixtures the differences are exactly 0), but convolutions, einsum and
GroupNorm may take other kernels on another CPU (another summation order: ~1e-7 relative per
operation, accumulated over ~40 layers on outputs of magnitude <= 3), so encoder features and
conditional denoiser outputs are compared at 1e-5, the issue's bar (measured with OpenBLAS
Sandybridge / torch's generic kernels: 4.4e-6 and 5.5e-6). The null branch encodes an all-zero image:
its first group norm normalises a constant map, whose variance is zero up to rounding, so the
summation order's last-bit differences come out multiplied by 1/sqrt(eps) = 316 (measured on the
generic kernels: up to 1.9e-4 on null features of magnitude <= 6.5); null features are compared at
5e-4 and outputs that use them (null, guided = 2 cond - null) at 5e-5 (measured 8.8e-6 and 1.6e-5).
The loss's VB term goes through exp/log of those outputs (1e-4). The 5-step DDIM state grows to ~100
for this untrained model; it is compared at 1e-5 relative to its scale (measured 2e-6).
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from fpdm_bench.errors import BenchError
from fpdm_bench_baselines.pidm.checkpoint import UNUSED, infer_config, load_official, load_state, official_key_map
from fpdm_bench_baselines.pidm.diffusion import GaussianDiffusion, ddim_sample, guided, linear_betas
from fpdm_bench_baselines.pidm.network import PIDMConfig, PIDMUNet
from fpdm_bench_baselines.pidm.pose import render_pose

FIX = Path(__file__).parent / "fixtures" / "pidm"
MANIFEST = json.loads((FIX / "manifest.json").read_text())


def _config(official: dict) -> PIDMConfig:
    keys = ("image_size", "in_channels", "model_channels", "out_channels", "num_res_blocks", "embed_channels",
            "attention_resolutions", "channel_mult", "dropout", "num_heads")
    return PIDMConfig(**{k: official[k] for k in keys})


@pytest.fixture(scope="module")
def golden():
    z = np.load(FIX / "golden_tiny.npz")
    return {k: torch.from_numpy(z[k]) for k in z.files if z[k].dtype.kind != "U"}


@pytest.fixture(scope="module")
def tiny(golden):
    model = PIDMUNet(_config(MANIFEST["tiny_config"]))
    load_state(model, {k[2:]: v for k, v in golden.items() if k.startswith("w/")}, "golden_tiny.npz")
    return model.eval()


def _close(a, b, atol, what):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    err = (a - b).abs().max().item()
    assert err <= atol, f"{what}: max |diff| {err:.3g} > {atol}"


# --- keys ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["tiny", "published"])
def test_manifest_loads_strictly_after_the_key_map(size):
    manifest = MANIFEST[size]
    cfg = _config(MANIFEST[f"{size}_config"])
    with torch.device("meta"):
        model = PIDMUNet(cfg)
    used, unused = official_key_map(manifest)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(ours) == set(used.values())
    assert {k: tuple(manifest[k]) for k in used} == {used_k: ours[used_k] for used_k in used}
    # every dropped key is matched by a documented reason, and no reason is unused
    assert unused and all(any(__import__("re").search(p, k) for p in UNUSED) for k in unused)
    assert all(any(__import__("re").search(p, k) for k in unused) for p in UNUSED)
    # the architecture is read back from the shapes alone
    inferred = infer_config({k: torch.empty(v, device="meta") for k, v in manifest.items()}, image_size=cfg.image_size)
    assert (inferred.model_channels, inferred.channel_mult, inferred.num_res_blocks, inferred.attention_resolutions,
            inferred.embed_channels, inferred.in_channels, inferred.out_channels) == (
        cfg.model_channels, cfg.channel_mult, cfg.num_res_blocks, cfg.attention_resolutions, cfg.embed_channels,
        cfg.in_channels, cfg.out_channels)


def test_dropped_keys_are_exactly_the_ones_the_official_forward_never_uses():
    _, unused = official_key_map(MANIFEST["tiny"])
    assert sorted(unused) == sorted(MANIFEST["unused_in_forward"]["tiny"])


def test_a_missing_or_misshapen_key_is_named(golden):
    model = PIDMUNet(_config(MANIFEST["tiny_config"]))
    sd = {k[2:]: v for k, v in golden.items() if k.startswith("w/")}
    bad = dict(sd)
    bad.pop("out.2.weight")
    with pytest.raises(BenchError, match="1 missing .*out.2.weight"):
        load_state(model, bad, "x.pt")
    bad = {**sd, "out.2.weight": torch.zeros(1, 1, 3, 3)}
    with pytest.raises(BenchError, match="another shape .*out.2.weight"):
        load_state(model, bad, "x.pt")


# --- numbers ---------------------------------------------------------------------------------------

def test_encoder_and_denoiser_match_the_official_outputs(tiny, golden):
    with torch.no_grad():
        feats = tiny.encode(golden["src"])
        null = tiny.encode(torch.zeros_like(golden["src"]))
        for i, f in enumerate(feats):
            _close(f, golden[f"enc/{i}"], 1e-5, f"encoder feature {i}")
            _close(null[i], golden[f"enc_null/{i}"], 5e-4, f"null feature {i}")
        x = torch.cat([golden["x_t"], golden["pose"]], 1)
        t = golden["t"].float()
        _close(tiny(x, t, feats), golden["out_cond"], 1e-5, "conditional output")
        _close(tiny(x, t, null), golden["out_null"], 5e-5, "null output")
        _close(guided(tiny, golden["x_t"], golden["pose"], t, feats, null, 2.0), golden["out_guided"], 5e-5, "guided")
        # a non-square input (the tiny PIDM works at 64x44)
        ns = guided(tiny, golden["ns/x_t"], golden["ns/pose"], t, tiny.encode(golden["ns/src"]),
                    tiny.encode(torch.zeros_like(golden["ns/src"])), 2.0)
        _close(ns, golden["ns/out_guided"], 5e-5, "non-square guided output")


def test_ddim_five_steps_match(tiny, golden):
    out = ddim_sample(tiny, golden["src"], golden["pose"], golden["noise"], steps=5, guidance=2.0)
    assert list(golden["ddim_seq"].tolist()) == [0, 200, 400, 600, 800]
    scale = golden["ddim5"].abs().max().item()
    _close(out, golden["ddim5"], 1e-5 * scale, "DDIM after 5 steps")


def test_ancestral_step_and_loss_match(tiny, golden):
    d = GaussianDiffusion.pidm()
    t = golden["t_long"].long()
    with torch.no_grad():
        feats, null = tiny.encode(golden["src"]), tiny.encode(torch.zeros_like(golden["src"]))
        out = guided(tiny, golden["x_t"], golden["pose"], t.float(), feats, null, 2.0)
        p = d.p_mean_variance(out, golden["x_t"], t, clip=True)
        _close(p["mean"], golden["pmv_mean"], 1e-4, "posterior mean")
        _close(p["log_variance"], golden["pmv_log_variance"], 1e-5, "learned log-variance")
        _close(p["pred_xstart"], golden["pmv_pred_xstart"], 1e-4, "x0")
        x0, noise = golden["loss_x_start"], golden["noise"]
        xt = d.q_sample(x0, t, noise)
        out = tiny(torch.cat([xt, golden["pose"]], 1), t.float(), feats)
        losses = d.training_losses(out, x0, xt, t, noise)
    _close(losses["mse"], golden["loss_mse"], 1e-5, "eps MSE")
    _close(losses["vb"], golden["loss_vb"], 1e-4, "VB term")
    _close(losses["loss"], golden["loss_total"], 1e-4, "loss")


def test_schedule_is_the_official_linear_one():
    b = linear_betas()
    assert b.dtype == np.float64 and len(b) == 1000 and b[0] == 1e-4 and b[-1] == 2e-2


# --- pose --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("canvas", [(256, 256), (256, 176)])
def test_pose_tensor_equals_the_official_one(n, canvas):
    z = np.load(FIX / "pose_golden.npz")
    kp_file = z[f"kp/{n}"].astype(np.float64)  # x in the 40-px padded frame, -1 = missing
    kp = np.where((kp_file == -1).any(axis=1, keepdims=True), np.nan, kp_file - [40, 0])  # our convention
    ours = render_pose(kp, (256, 176), canvas)
    want = z[f"label/{n}/{canvas[0]}x{canvas[1]}"]
    assert ours.shape == want.shape == (20, *canvas)
    assert np.array_equal(ours, want), f"{(ours != want).sum()} values differ"


# --- the official checkpoint file ----------------------------------------------------------------------

def test_official_last_pt_loads_safely_and_runs(golden):
    model, info = load_official(FIX / "last_tiny.pt", image_size=32)
    assert info["unused_official_keys"] == len(MANIFEST["unused_in_forward"]["tiny"])
    with torch.no_grad():
        feats, null = model.encode(golden["src"]), model.encode(torch.zeros_like(golden["src"]))
        out = guided(model, golden["x_t"], golden["pose"], golden["t"].float(), feats, null, 2.0)
    _close(out, golden["ckpt/ema_out_guided"], 1e-4, "guided output of the checkpoint's EMA weights")


def test_a_pickle_that_calls_anything_else_is_refused(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "last.pt"
    torch.save({"ema": {}, "conf": Evil()}, path)
    with pytest.raises(BenchError, match=r"last\.pt: refusing to load (posix|nt)\.system"):
        load_official(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint", "not a readable torch checkpoint"),
    (None, "not a PIDM checkpoint"),
])
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "last.pt"
    if content is None:
        torch.save({"state_dict": {}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(BenchError, match=message):
        load_official(path)


def test_truncated_checkpoint_is_named(tmp_path):
    data = (FIX / "last_tiny.pt").read_bytes()
    path = tmp_path / "last.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchError, match=r"last\.pt: not a readable torch checkpoint"):
        load_official(path)


def test_unpickler_keeps_the_config_inert():
    from fpdm_bench.safe_load import StandIn, load_torch_pickle

    ckpt = load_torch_pickle(FIX / "last_tiny.pt", ("config", "tensorfn", "pydantic"))
    assert set(ckpt) == {"model", "ema", "scheduler", "optimizer", "conf"}
    conf = ckpt["conf"]
    assert isinstance(conf, StandIn) and conf.official == "config.diffconfig.DiffusionConfig"
    assert pickle.dumps  # the stand-in is a plain object: nothing of tensorfn or pydantic was imported
    import sys

    assert "tensorfn" not in sys.modules and "config.diffconfig" not in sys.modules
