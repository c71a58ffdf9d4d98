"""FPDM sampling: the three-branch guidance, per-sample seeding, the adapter on the shipped checkpoint,
and the paper config built from local weight folders."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import FUSION_DIM, micro_config, save_micro_stage1  # noqa: E402

from fpdm_bench.errors import BenchError  # noqa: E402
from fpdm_bench_reference.pipeline import FPDMPipeline, three_branch_guidance  # noqa: E402
from fpdm_bench_reference.stage2.model import build_model, build_scheduler  # noqa: E402


@pytest.fixture(scope="module")
def micro_pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    save_micro_stage1(root / "stage1", seed=1)
    torch.manual_seed(2)
    model = build_model(micro_config(), FUSION_DIM)
    with torch.no_grad():  # give the zero-initialised pose path some weight, as training would
        model.pose_embed.conv_out.weight.normal_(0, 0.1)
    model.save_pretrained(root / "stage2")
    build_scheduler(model.config).save_config(str(root / "stage2"))
    return FPDMPipeline.from_pretrained(root)


def _inputs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 40, 28, generator=g), torch.rand(n, 18, 2, generator=g) * torch.tensor([28.0, 40.0])


def test_three_branch_guidance_formula():
    u, s, f = torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([4.0])
    # u + g (src - u) + g (full - src)
    assert three_branch_guidance(u, s, f, 2.0).item() == 1 + 2 * 2 + 2 * 1
    assert three_branch_guidance(u, s, f, 1.0).item() == f.item()  # g = 1: the fully conditioned branch
    assert three_branch_guidance(u, s, f, 0.0).item() == u.item()


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_batch_of_4_equals_4_batches_of_1(micro_pipeline, scheduler):
    src, kp = _inputs(4)
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(4)]  # noqa: E731
    together = micro_pipeline(src, kp, gens(), num_inference_steps=4, scheduler=scheduler)
    apart = torch.cat([micro_pipeline(src[i:i + 1], kp[i:i + 1], [g], num_inference_steps=4, scheduler=scheduler)
                       for i, g in enumerate(gens())])
    torch.testing.assert_close(together, apart, rtol=1e-4, atol=1e-5)
    assert together.shape[-2:] == micro_pipeline.resolution
    # another seed gives another image; the guidance scale changes the result
    other = micro_pipeline(src[:1], kp[:1], [torch.Generator().manual_seed(7)], num_inference_steps=4,
                           scheduler=scheduler)
    assert (other - together[:1]).abs().max() > 1e-3
    unguided = micro_pipeline(src[:1], kp[:1], gens()[:1], num_inference_steps=4, guidance_scale=1.0,
                              scheduler=scheduler)
    assert (unguided - together[:1]).abs().max() > 1e-4


def test_pipeline_checks_its_inputs(micro_pipeline):
    src, kp = _inputs(2)
    with pytest.raises(BenchError, match="generators"):
        micro_pipeline(src, kp, [torch.Generator()], num_inference_steps=2)
    with pytest.raises(BenchError, match="unknown scheduler"):
        micro_pipeline(src, kp, [torch.Generator(), torch.Generator()], num_inference_steps=2, scheduler="euler")


def test_adapter_runs_the_shipped_checkpoint():
    from fpdm_bench.models import MODELS

    adapter = MODELS.get("fpdm").from_pretrained(None, steps=3)
    src, kp = _inputs(2, seed=3)
    _, source_kp = _inputs(2, seed=4)
    src = torch.nn.functional.interpolate(src, size=(128, 88))
    kp, source_kp = kp * torch.tensor([88 / 28, 128 / 40]), source_kp * torch.tensor([88 / 28, 128 / 40])
    batch = {"source": src, "target_kp": kp, "source_kp": source_kp}
    a = adapter.generate(batch, [torch.Generator().manual_seed(i) for i in range(2)])
    b = adapter.generate(batch, [torch.Generator().manual_seed(i) for i in range(2)])
    # the keypoint-warp prior is drawn at the batch's size, and so is the output
    assert a.shape == (2, 3, 128, 88) and 0 <= a.min() and a.max() <= 1
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    info = adapter.info()
    # the shipped sampling: DDIM without guidance (1 UNet call per step), temperature 0
    assert info["nfe"] == 3 and info["prior"] == "keypoint-warp" and info["temperature"] == 0.0
    assert len(info["checkpoint_sha256"]) == 64 and info["parameters"] > 1e6
    # temperature 0 with DDIM starts every sample from the zero latent: the seed does not matter
    c = adapter.generate(batch, [torch.Generator().manual_seed(50 + i) for i in range(2)])
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    sampled = MODELS.get("fpdm").from_pretrained(None, steps=3, temperature=1.0)
    assert (sampled.generate(batch, [torch.Generator().manual_seed(50 + i) for i in range(2)]) - a).abs().max() > 1e-3
    with pytest.raises(BenchError, match="source_kp"):
        adapter.generate({"source": src, "target_kp": kp}, [torch.Generator() for _ in range(2)])


def test_paper_config_builds_from_local_folders(tmp_path):
    """The paper config reads SD-2.1-style and DINOv2 folders from disk; here they hold tiny random
    models in the same layout (the real ones are not on this machine)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import Dinov2Config, Dinov2Model

    from fpdm_bench_reference.config import load_config

    sd = tmp_path / "sd21"
    AutoencoderKL(block_out_channels=[8, 8, 8, 8], norm_num_groups=4, latent_channels=4,
                  down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4).save_pretrained(sd / "vae")
    UNet2DConditionModel(block_out_channels=[32, 32], layers_per_block=1, cross_attention_dim=16,
                         attention_head_dim=2, norm_num_groups=8, sample_size=8,
                         down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                         up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"]).save_pretrained(sd / "unet")
    DDPMScheduler(prediction_type="v_prediction").save_pretrained(sd / "scheduler")
    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                             patch_size=8)).save_pretrained(tmp_path / "dinov2")
    cfg = load_config("stage2", "paper", [f"stage2.vae.path={sd}", f"stage2.unet.path={sd}",
                                          f"stage2.scheduler.path={sd}", f"stage2.source_encoder.path={tmp_path / 'dinov2'}",
                                          "stage2.source_encoder.image_size=[32,32]", "stage2.resolution=[64,48]",
                                          "stage2.source_proj.hidden_dim=16", "stage2.fusion_proj.hidden_dim=16",
                                          "stage2.pose_embed.channels=[8,8,8,8]"])
    model = build_model(cfg, 24)
    assert model.latent_shape == (4, 8, 6)
    assert build_scheduler(model.config).config.prediction_type == "v_prediction"
    torch.testing.assert_close(model.unet.conv_in.weight,
                               UNet2DConditionModel.from_pretrained(sd / "unet").conv_in.weight)


def _count_unet_calls(pipe):
    calls = []
    handle = pipe.stage2.unet.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_source_strength_starts_from_the_noised_source(micro_pipeline, scheduler):
    src, kp = _inputs(2, seed=4)
    gens = lambda: [torch.Generator().manual_seed(30 + i) for i in range(2)]  # noqa: E731
    plain = micro_pipeline(src, kp, gens(), num_inference_steps=8, scheduler=scheduler)
    full = micro_pipeline(src, kp, gens(), num_inference_steps=8, scheduler=scheduler, source_strength=1.0)
    torch.testing.assert_close(full, plain, rtol=0, atol=0)  # 1 = the paper's sampler, same process
    calls, handle = _count_unet_calls(micro_pipeline)
    try:
        half = micro_pipeline(src, kp, gens(), num_inference_steps=8, scheduler=scheduler, source_strength=0.5)
    finally:
        handle.remove()
    assert len(calls) == 4 == micro_pipeline.nfe(8, 2.0, 0.5) // 3  # the last 4 of 8 steps, 3 branches per call
    assert (half - plain).abs().max() > 1e-3
    # per sample: a batch of 2 equals two batches of 1
    apart = torch.cat([micro_pipeline(src[i:i + 1], kp[i:i + 1], [g], num_inference_steps=8, scheduler=scheduler,
                                      source_strength=0.5) for i, g in enumerate(gens())])
    torch.testing.assert_close(half, apart, rtol=1e-4, atol=1e-5)
    # a small strength keeps the image near the source's reconstruction; the full schedule does not
    recon = micro_pipeline.stage2.decode_latents(micro_pipeline.stage2.encode_latents(src, sample=False))
    low = micro_pipeline(src, kp, gens(), num_inference_steps=8, scheduler=scheduler, source_strength=0.125)
    assert (low - recon).abs().mean() < 0.5 * (plain - recon).abs().mean()
    for bad in (0.0, 1.5):
        with pytest.raises(BenchError, match="source_strength"):
            micro_pipeline(src, kp, gens(), num_inference_steps=8, source_strength=bad)


def test_shipped_checkpoints_are_picked_by_dataset_and_carry_their_sampling():
    from fpdm_bench.models import MODELS
    from fpdm_bench_reference.adapter import TINY_CHECKPOINT, TINY_PHOENIX_CHECKPOINT

    cls = MODELS.get("fpdm")
    assert cls.default_checkpoint("synthetic") == cls.default_checkpoint(None) == TINY_CHECKPOINT
    assert cls.default_checkpoint("deepfashion") == TINY_CHECKPOINT
    assert cls.default_checkpoint("synthetic-phoenix") == cls.default_checkpoint("phoenix") == TINY_PHOENIX_CHECKPOINT
    for path in (TINY_CHECKPOINT, TINY_PHOENIX_CHECKPOINT):
        adapter = cls.from_pretrained(path)
        saved = adapter.pipeline.stage2.config["sampling"]
        info = adapter.info()
        assert {k: info[k] for k in saved} == saved  # defaults come from the checkpoint ...
        assert cls.from_pretrained(path, steps=3, guidance=1.0, source_strength=1.0).info()["nfe"] == 3  # ... unless given
