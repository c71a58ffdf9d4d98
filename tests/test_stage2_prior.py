"""The tiny recipe's prior (reference_impl/stage2/prior.py): stage 2 diffuses the residual of the target
over a keypoint warp of the source. Micro models (32x24) as in test_stage2.py."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import FUSION_DIM, micro_config, save_micro_stage1  # noqa: E402
from helpers import warp_inputs as _inputs  # noqa: E402

from fpdm_bench.errors import BenchError  # noqa: E402
from fpdm_bench_baselines.keypoint_warp import KeypointWarp  # noqa: E402
from fpdm_bench_reference.pipeline import FPDMPipeline  # noqa: E402
from fpdm_bench_reference.stage2.model import build_model, build_scheduler  # noqa: E402

WARP = "stage2.prior=keypoint-warp"


def test_unknown_prior_is_refused_at_build_time():
    with pytest.raises(BenchError, match="prior must be one of none, keypoint-warp"):
        build_model(micro_config("stage2.prior=flow"), FUSION_DIM)


def test_prior_adds_three_channels_to_the_pose_embedding_input():
    plain = build_model(micro_config(), FUSION_DIM)
    warp = build_model(micro_config(WARP), FUSION_DIM)
    assert plain.pose_embed.conv_in.in_channels == 3 and not plain.has_prior
    assert warp.pose_embed.conv_in.in_channels == 6 and warp.has_prior
    pose = torch.rand(2, 3, 32, 24)
    assert torch.equal(plain.condition_image(pose), pose)
    prior = torch.rand(2, 3, 64, 48)
    both = warp.condition_image(pose, prior)
    assert both.shape == (2, 6, 32, 24) and torch.equal(both[:, :3], pose)
    torch.testing.assert_close(both[:, 3:], warp.resize(prior))
    with pytest.raises(BenchError, match="pass the prior"):
        warp.condition_image(pose)


def test_residual_latents_round_trip_to_the_image():
    """A full-rank patch PCA encodes the residual losslessly, so decode(encode(x, prior), prior) = x at
    the model size; at a larger prior the output takes the prior's size."""
    torch.manual_seed(0)
    m = build_model(micro_config(WARP, "stage2.vae.config={patch: 4, latent_channels: 48}",
                                 "stage2.unet.config.in_channels=48", "stage2.unet.config.out_channels=48"),
                    FUSION_DIM).eval()
    g = torch.Generator().manual_seed(1)
    x, prior = torch.rand(3, 3, 32, 24, generator=g), torch.rand(3, 3, 32, 24, generator=g)
    m.vae.fit(torch.rand(8, 3, 32, 24, generator=g) * 2 - 1)
    z = m.encode_latents(x, sample=False, prior=prior)
    torch.testing.assert_close(m.decode_latents(z, prior), x, rtol=0, atol=1e-5)  # float32 projections
    # the zero residual decodes to the prior itself (what a low source_strength starts from)
    torch.testing.assert_close(m.decode_latents(m.encode_latents(prior, sample=False, prior=prior), prior), prior,
                               rtol=0, atol=1e-5)
    big = torch.rand(3, 3, 64, 48, generator=g)
    assert m.decode_latents(z, big).shape == (3, 3, 64, 48)
    with pytest.raises(BenchError, match="pass the prior"):
        m.encode_latents(x, sample=False)


@pytest.fixture(scope="module")
def warp_pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe-prior")
    save_micro_stage1(root / "stage1", seed=1)
    torch.manual_seed(2)
    model = build_model(micro_config(WARP), FUSION_DIM)
    with torch.no_grad():  # give the zero-initialised pose path some weight, as training would
        model.pose_embed.conv_out.weight.normal_(0, 0.1)
    model.save_pretrained(root / "stage2")
    build_scheduler(model.config).save_config(str(root / "stage2"))
    return FPDMPipeline.from_pretrained(root)


def test_pipeline_with_a_prior_outputs_at_the_source_size_and_per_sample(warp_pipeline):
    src, skp, tkp = _inputs(3)
    gens = lambda: [torch.Generator().manual_seed(10 + i) for i in range(3)]  # noqa: E731
    out = warp_pipeline(src, tkp, gens(), num_inference_steps=3, source_kp=skp)
    assert out.shape == src.shape and out.min() >= 0 and out.max() <= 1
    apart = torch.cat([warp_pipeline(src[i:i + 1], tkp[i:i + 1], [g], num_inference_steps=3, source_kp=skp[i:i + 1])
                       for i, g in enumerate(gens())])
    torch.testing.assert_close(out, apart, rtol=1e-4, atol=1e-5)
    # the output is the keypoint-warp floor's output plus the residual: a threshold above any residual
    # leaves exactly the warp
    warp = KeypointWarp().generate({"source": src, "source_kp": skp, "target_kp": tkp}, gens())
    only_prior = warp_pipeline(src, tkp, gens(), num_inference_steps=2, source_kp=skp, residual_threshold=1e6)
    torch.testing.assert_close(only_prior, warp.clamp(0, 1), rtol=0, atol=0)
    assert (out - warp).abs().max() > 1e-3  # and without it the residual is there
    with pytest.raises(BenchError, match="source_kp"):
        warp_pipeline(src, tkp, gens(), num_inference_steps=2)
    with pytest.raises(BenchError, match="frame"):
        warp_pipeline(src, tkp, gens(), num_inference_steps=2, source_kp=skp, frame=(80, 56))


@pytest.mark.slow  # training
def test_training_with_a_prior_fits_the_vae_on_residuals(tmp_path):
    from conftest import make_fixture, open_manifest

    from fpdm_bench_reference.stage2.model import Stage2Model
    from fpdm_bench_reference.stage2.train import _Features, train_stage2

    ds = open_manifest(make_fixture(tmp_path / "fx", n_images=4, size=(40, 28)), split="train")
    s1 = save_micro_stage1(tmp_path / "stage1")
    out = train_stage2(micro_config(WARP), ds, s1, tmp_path / "run", seed=0, max_steps=2, progress=False)
    assert out["steps"] == 2 and out["vae_recon_mae"] > 0
    back = Stage2Model.from_pretrained(tmp_path / "run")
    assert back.prior == "keypoint-warp" and back.pose_embed.conv_in.in_channels == 6

    # the cached training inputs (targets and priors resized apart) equal Stage2Model.vae_input of the
    # full-size images: the resize is linear, so only float rounding differs
    from fpdm_bench_reference.stage1.model import FusionModel

    feats = _Features(back, FusionModel.from_pretrained(s1), ds, torch.device("cpu"), cache=True)
    recs = ds.pairs[:3]
    src = torch.stack([ds.load_image(r.source) for r in recs])
    kp = lambda names: torch.stack([torch.from_numpy(ds.keypoints(n)) for n in names])  # noqa: E731
    prior = back.prior_images(src, kp([r.source for r in recs]), kp([r.target for r in recs]))
    tgt = torch.stack([ds.load_image(r.target) for r in recs])
    torch.testing.assert_close(feats.vae_inputs(recs), back.vae_input(tgt, prior), rtol=0, atol=1e-5)
    # and the pose embedding sees in training what it sees at sampling (the prior clamped the same way)
    pose = back.pose_image(kp([r.target for r in recs]), tuple(ds.size))
    torch.testing.assert_close(feats.condition_images(recs), back.condition_image(pose, prior), rtol=0, atol=1e-6)


def test_adapter_profiles_the_prior_as_a_stage(warp_pipeline, tmp_path):
    from fpdm_bench_reference.adapter import FPDMAdapter

    from fpdm_bench.profile.stages import StageTimer

    adapter = FPDMAdapter(warp_pipeline, tmp_path, steps=2)
    src, skp, tkp = _inputs(2)
    with StageTimer(adapter.stages()) as timer:
        out = adapter.generate({"source": src, "source_kp": skp, "target_kp": tkp},
                               [torch.Generator().manual_seed(i) for i in range(2)])
    assert out.shape == src.shape
    assert timer.calls["prior"] == 1 and timer.calls["denoiser"] == 2  # one UNet call per step (branches batched)


def test_soft_threshold_and_sampling_checks():
    from fpdm_bench_reference.pipeline import check_sampling
    from fpdm_bench.modeling.warp_prior import soft_threshold

    x = torch.tensor([-0.1, -0.02, 0.0, 0.03, 0.2])
    torch.testing.assert_close(soft_threshold(x, 0.05), torch.tensor([-0.05, 0.0, 0.0, 0.0, 0.15]))
    assert soft_threshold(x, 0.0) is x
    check_sampling(0.0, 0.05, has_prior=True)
    with pytest.raises(BenchError, match="temperature must be in"):
        check_sampling(1.5, 0.0, has_prior=True)
    with pytest.raises(BenchError, match="residual_threshold=0.05 needs a checkpoint with a prior"):
        check_sampling(1.0, 0.05, has_prior=False)
    for bad in (-0.01, float("nan")):
        with pytest.raises(BenchError, match="residual_threshold must be >= 0, got"):
            check_sampling(1.0, bad, has_prior=True)
    with pytest.raises(BenchError, match="temperature"):
        check_sampling(float("nan"), 0.0, has_prior=True)


def test_threshold_moves_the_output_towards_the_prior(warp_pipeline):
    src, skp, tkp = _inputs(2, seed=5)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa: E731
    prior = warp_pipeline.stage2.prior_images(src, skp, tkp)
    plain = warp_pipeline(src, tkp, gens(), num_inference_steps=2, source_kp=skp)
    shrunk = warp_pipeline(src, tkp, gens(), num_inference_steps=2, source_kp=skp, residual_threshold=0.1)
    assert (shrunk - prior).abs().mean() < (plain - prior).abs().mean()


def test_low_source_strength_starts_from_the_prior(warp_pipeline):
    """SDEdit with a prior starts from the zero residual: the fewer steps run, the closer to the warp."""
    src, skp, tkp = _inputs(2, seed=6)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa: E731
    prior = warp_pipeline.stage2.prior_images(src, skp, tkp)
    dist = {s: float((warp_pipeline(src, tkp, gens(), num_inference_steps=10, source_kp=skp, source_strength=s,
                                    scheduler="ddim") - prior).abs().mean()) for s in (0.1, 1.0)}
    assert dist[0.1] < 0.5 * dist[1.0], dist


def test_training_pairs_rules():
    from fpdm_bench.data.base import PairRecord
    from fpdm_bench_reference.stage2.train import training_pairs

    split = [PairRecord(f"v{v}_0_{f}", f"v{v}/0.png", f"v{v}/{f}.png") for v in range(2) for f in range(4)]
    assert training_pairs(split, "dataset") == split
    every = training_pairs(split, "all-within-group")
    assert len(every) == 2 * 4 * 4  # 2 videos, every ordered pair of 4 frames (a frame with itself included)
    assert [(r.source, r.target) for r in every[:5]] == [("v0/0.png", f"v0/{f}.png") for f in range(4)] + [("v0/1.png", "v0/0.png")]
    assert set(split) <= set(every)  # the split's own records are kept
    assert len({r.pair_id for r in every}) == len(every)
    assert all(r.source.split("/")[0] == r.target.split("/")[0] for r in every)  # never across videos
    with pytest.raises(BenchError, match="train.pairs must be one of dataset, all-within-group"):
        training_pairs(split, "everything")
