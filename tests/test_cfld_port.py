"""The CFLD port, piece by piece, against data made by running the official code
(tests/fixtures/cfld/README.md says how): Swin backbone, decoder, appearance and pose encoders, the
UNet's three branches, the sampler's steps and whole loop (with the official noise replayed).

Tolerance: the same float32 operations as the official code (diffusers 0.19.3 there, this project's
diffusers here); other CPU kernels may sum in another order (~1e-7 relative per operation over ~30
layers on values of magnitude <= ~10): 1e-5; the 50-step loop 1e-4 of its scale.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fpdm_bench_baselines.cfld.swin import SwinBackbone, SwinConfig

FIX = Path(__file__).parent / "fixtures" / "cfld"
MANIFEST = json.loads((FIX / "manifest.json").read_text())


@pytest.fixture(scope="module")
def golden():
    z = np.load(FIX / "golden_tiny.npz")
    return {k: torch.from_numpy(z[k]) for k in z.files if z[k].dtype.kind != "U"}


@pytest.fixture(scope="module")
def released():
    return torch.load(FIX / "pytorch_model.bin", map_location="cpu", weights_only=True)


def _tiny_swin() -> SwinBackbone:
    c = MANIFEST["config_tiny"]
    s = c["MODEL"]["COND_STAGE_CONFIG"]
    return SwinBackbone(SwinConfig(img_size=c["INPUT"]["COND"]["IMG_SIZE"][0], embed_dim=s["EMBED_DIM"],
                                   depths=tuple(s["DEPTHS"]), num_heads=tuple(s["NUM_HEADS"]),
                                   window_size=s["WINDOW_SIZE"]))


def test_published_swin_keys_and_shapes_match_the_manifest():
    s = MANIFEST["config_published"]["MODEL"]["COND_STAGE_CONFIG"]
    with torch.device("meta"):
        model = SwinBackbone(SwinConfig(embed_dim=s["EMBED_DIM"], depths=tuple(s["DEPTHS"]),
                                        num_heads=tuple(s["NUM_HEADS"]), window_size=s["WINDOW_SIZE"]))
    _assert_published_shapes(model, "backbone.")


def test_swin_loads_the_released_file_strictly_and_matches_the_official_features(golden, released):
    model = _tiny_swin()
    sd = {k[len("backbone."):]: v for k, v in released.items() if k.startswith("backbone.")}
    ours = model.state_dict()
    # the buffers we compute are the ones the official code saved
    for k in ours:
        if k.endswith(("relative_position_index", "attn_mask")):
            assert torch.equal(ours[k], sd[k]), k
    model.load_state_dict(sd, strict=True)
    model.eval()
    src = (golden["in/src_u8"].float() / 255 - 0.5) / 0.5  # ToTensor, Normalize(0.5, 0.5)
    with torch.no_grad():
        pooled, feats = model(src)
    assert len(feats) == 4
    for i, f in enumerate(feats):
        err = (f - golden[f"backbone/feature/{i}"]).abs().max().item()
        assert err <= 1e-5, f"stage {i}: {err}"
    assert (pooled - golden["backbone/pooled"]).abs().max().item() <= 1e-5


def _sub(released, prefix):
    return {k[len(prefix):]: v for k, v in released.items() if k.startswith(prefix)}


def _assert_published_shapes(model, prefix):
    """``model`` (built on the meta device at the published size) has exactly the manifest's keys and
    shapes under ``prefix`` of the released pytorch_model.bin."""
    want = {k[len(prefix):]: v for k, v in MANIFEST["published"]["pytorch_model.bin"].items() if k.startswith(prefix)}
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == want


def test_pose_encoder_matches_the_official_residuals(golden, released):
    from fpdm_bench_baselines.cfld.pose_encoder import PoseEncoder

    p = MANIFEST["config_tiny"]["MODEL"]["POSE_GUIDANCE_CONFIG"]
    model = PoseEncoder(p["POSE_CHANNELS"], p["DOWNSCALE_FACTOR"], p["IN_CHANNELS"], tuple(p["CHANNELS"]))
    model.load_state_dict(_sub(released, "pose_encoder."), strict=True)
    model.eval()
    with torch.no_grad():
        feats = model(golden["in/pose_u8"].float() / 255)
    for i, f in enumerate(feats):
        assert (f - golden[f"pose/{i}"]).abs().max().item() <= 1e-5, i
    q = MANIFEST["config_published"]["MODEL"]["POSE_GUIDANCE_CONFIG"]
    with torch.device("meta"):
        big = PoseEncoder(q["POSE_CHANNELS"], q["DOWNSCALE_FACTOR"], q["IN_CHANNELS"], tuple(q["CHANNELS"]))
    _assert_published_shapes(big, "pose_encoder.")


def _decoder(cfg):
    from fpdm_bench_baselines.cfld.decoder import Decoder

    d, s = cfg["MODEL"]["DECODER_CONFIG"], cfg["MODEL"]["COND_STAGE_CONFIG"]
    stage4 = s["EMBED_DIM"] * 2 ** (len(s["DEPTHS"]) - 1)
    tokens = (cfg["INPUT"]["COND"]["IMG_SIZE"][0] // 32) ** 2
    return Decoder(d["N_CTX"], d["CTX_DIM"], d["HEADS"], d["DEPTH"], stage4, tokens)


def test_decoder_matches_the_official_output(golden, released):
    model = _decoder(MANIFEST["config_tiny"])
    model.load_state_dict(_sub(released, "decoder."), strict=True)
    model.eval()
    with torch.no_grad():
        out = model(golden["backbone/feature/3"])
    assert (out - golden["decoder/out"]).abs().max().item() <= 1e-5
    with torch.device("meta"):
        big = _decoder(MANIFEST["config_published"])
    _assert_published_shapes(big, "decoder.")


def _appearance(cfg):
    from fpdm_bench_baselines.cfld.appearance import AppearanceEncoder

    a = cfg["MODEL"]["APPEARANCE_GUIDANCE_CONFIG"]
    assert a["TO_QUERIES"] and not (a["TO_KEYS"] or a["TO_VALUES"] or a["TO_SELF_ATTN"])
    assert set(a["CONVIN_KERNEL_SIZE"]) == {1} and set(a["CONVIN_STRIDE"]) == {1} and set(a["CONVIN_PADDING"]) == {0}
    return AppearanceEncoder(a["INNER_DIMS"], a["CTX_DIMS"], a["EMBED_DIMS"], a["HEADS"], a["DEPTH"],
                             a["ATTN_RESIDUAL_BLOCK_IDX"])


def test_appearance_encoder_matches_the_official_residuals(golden, released):
    model = _appearance(MANIFEST["config_tiny"])
    model.load_state_dict(_sub(released, "appearance_encoder."), strict=True)
    model.eval()
    with torch.no_grad():
        out = model([golden[f"backbone/feature/{i}"] for i in range(4)])
    assert sorted(out) == list(range(3, 12))
    for idx, r in out.items():
        assert (r - golden[f"appearance/block_{idx}_cross_attn_q"]).abs().max().item() <= 1e-5, idx
    with torch.device("meta"):
        big = _appearance(MANIFEST["config_published"])
    _assert_published_shapes(big, "appearance_encoder.")


def test_unet_branches_match_the_official_three_branch_call(golden):
    from fpdm_bench_baselines.cfld.unet import SD15_UNET, CFLDUNet

    unet = CFLDUNet(json.loads((FIX / "unet_tiny" / "config.json").read_text()))
    unet.load_state_dict(torch.load(FIX / "pytorch_model_1.bin", map_location="cpu", weights_only=True), strict=True)
    unet.eval()
    lat, c = golden["in/latents"], golden["cond/c"]
    b = lat.shape[0]
    uc, cond = c[:b], c[b:]
    pose = [golden[f"pose/{i}"] for i in range(3)]
    app = {i: golden[f"appearance/block_{i}_cross_attn_q"] for i in range(3, 12)}
    zeros = [torch.zeros_like(p) for p in pose]
    with torch.no_grad():
        out = unet(torch.cat([lat] * 3), golden["unet/t"], torch.cat([uc, uc, cond]),
                   pose=[torch.cat([z, p, p]) for z, p in zip(zeros, pose)],
                   appearance={k: torch.cat([torch.zeros_like(v), torch.zeros_like(v), v]) for k, v in app.items()})
        e_uc, e_down, e_full = out.chunk(3)
        # the uc branch alone: no residuals at all
        alone = unet(lat, golden["unet/t"], uc)
    for name, got in (("uc", e_uc), ("down", e_down), ("full", e_full)):
        assert (got - golden[f"unet/eps_{name}"]).abs().max().item() <= 1e-5, name
    assert (alone - golden["unet/eps_uc"]).abs().max().item() <= 1e-5
    guided = e_uc + 2 * (e_down - e_uc) + 2 * (e_full - e_down)
    assert (guided - golden["unet/eps_guided"]).abs().max().item() <= 1e-5
    with torch.device("meta"):
        big = CFLDUNet(SD15_UNET)
    assert {k: list(v.shape) for k, v in big.state_dict().items()} == MANIFEST["published"]["pytorch_model_1.bin"]


@pytest.mark.slow
def test_sampler_steps_and_whole_loop_match(golden, monkeypatch):
    """The official noise (one global RNG) is replayed in place of the per-pair generators."""
    import diffusers.schedulers.scheduling_ddpm as ddpm

    from fpdm_bench_baselines.cfld.sampler import guided_eps, make_scheduler, sample
    from fpdm_bench_baselines.cfld.unet import CFLDUNet

    assert [int(t) for t in make_scheduler(50).timesteps] == golden["meta/timesteps"].tolist()
    unet = CFLDUNet(json.loads((FIX / "unet_tiny" / "config.json").read_text()))
    unet.load_state_dict(torch.load(FIX / "pytorch_model_1.bin", map_location="cpu", weights_only=True), strict=True)
    unet.eval()
    b = golden["in/latents"].shape[0]
    pose = [golden[f"pose/{i}"] for i in range(3)]
    app = {i: golden[f"appearance/block_{i}_cross_attn_q"] for i in range(3, 12)}
    recorded = iter([golden[f"steps/noise_{k}"] for k in (1, 2, 3)])
    monkeypatch.setattr(ddpm, "randn_tensor", lambda *a, **k: next(recorded))
    x = golden["in/latents"]
    sched = make_scheduler(50)
    with torch.no_grad():
        for k, t in enumerate(sched.timesteps[:3], start=1):
            eps = guided_eps(unet, x, t, golden["cond/c"][:b], golden["cond/c"][b:], pose, app)
            x = sched.step(eps, t, x).prev_sample
            assert (x - golden[f"steps/latents_{k}"]).abs().max().item() <= 1e-5, k
    rng = torch.Generator().manual_seed(int(golden["meta/seed_sample"]))
    monkeypatch.setattr(ddpm, "randn_tensor", lambda shape, **k: torch.randn(shape, generator=rng))
    lat = sample(unet, golden["in/latents"], golden["cond/c"][:b], golden["cond/c"][b:], pose, app, None, steps=50)
    scale = golden["sample/final_latents"].abs().max().item()
    assert (lat - golden["sample/final_latents"]).abs().max().item() <= 1e-4 * max(1.0, scale)


def test_conditioner_loads_the_released_file_strictly_and_matches(golden, released):
    from fpdm_bench_baselines.cfld.model import CFLDConditioner, CFLDConfig

    model = CFLDConditioner(CFLDConfig.from_official(MANIFEST["config_tiny"]))
    model.load_state_dict(released, strict=True)  # buffers (relative_position_index, attn_mask) included
    model.eval()
    with torch.no_grad():
        null, text, pose, app = model((golden["in/src_u8"].float() / 255 - 0.5) / 0.5,
                                      golden["in/pose_u8"].float() / 255)
    assert (torch.cat([null, text]) - golden["cond/c"]).abs().max().item() <= 1e-5
    assert all((p - golden[f"pose/{i}"]).abs().max().item() <= 1e-5 for i, p in enumerate(pose))
    assert all((v - golden[f"appearance/block_{k}_cross_attn_q"]).abs().max().item() <= 1e-5 for k, v in app.items())
    with torch.device("meta"):
        big = CFLDConditioner(CFLDConfig.from_official(MANIFEST["config_published"]))
    assert {k: list(v.shape) for k, v in big.state_dict().items()} == MANIFEST["published"]["pytorch_model.bin"]
    assert CFLDConfig.from_official(MANIFEST["config_published"]) == CFLDConfig()  # the defaults are the published model


@pytest.mark.slow
def test_pipeline_end_to_end_equals_the_official_sample(golden, monkeypatch, tmp_path):
    """The official sample() with the tiny VAE and its metric post-processing (64x44 here), the
    official noise replayed: the 8-bit images within one level (truncation turns ulps into levels)."""
    import diffusers.schedulers.scheduling_ddpm as ddpm

    from fpdm_bench_baselines.cfld.pipeline import CFLDPipeline
    from helpers import cfld_tiny_folder

    cfld_tiny_folder(tmp_path, with_vae=False)
    pipe = CFLDPipeline.from_pretrained(tmp_path, vae=FIX / "vae_tiny")
    rng = torch.Generator().manual_seed(int(golden["meta/seed_sample"]))
    monkeypatch.setattr(ddpm, "randn_tensor", lambda shape, **k: torch.randn(shape, generator=rng))
    out = pipe((golden["in/src_u8"].float() / 255 - 0.5) / 0.5, golden["in/pose_u8"].float() / 255, None, (64, 44),
               latents=golden["in/latents"])
    got = (out * 255).round().to(torch.int16)
    want = golden["sample/images_64x44_uint8"].to(torch.int16)
    assert (got - want).abs().max().item() <= 1


def test_checkpoint_folder_errors_name_the_file(tmp_path):
    from fpdm_bench.errors import BenchError
    from fpdm_bench_baselines.cfld.pipeline import CFLDPipeline

    with pytest.raises(BenchError, match="pytorch_model.bin missing"):
        CFLDPipeline.from_pretrained(tmp_path, vae=None)
    (tmp_path / "pytorch_model.bin").write_bytes(b"truncated")
    (tmp_path / "pytorch_model_1.bin").write_bytes(b"x")
    with pytest.raises(BenchError, match=r"pytorch_model\.bin: not a readable state dict"):
        CFLDPipeline.from_pretrained(tmp_path, vae=None)


def test_a_missing_vae_is_named(tmp_path):
    from fpdm_bench.errors import WeightsMissing
    from fpdm_bench_baselines.cfld.pipeline import CFLDPipeline
    from helpers import cfld_tiny_folder

    cfld_tiny_folder(tmp_path, with_vae=False)
    with pytest.raises(WeightsMissing, match=r"CFLD's VAE .* unavailable: vae/config.json missing"):
        CFLDPipeline.from_pretrained(tmp_path, vae=None)
