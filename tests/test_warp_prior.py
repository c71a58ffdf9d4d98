"""The keypoint-warp prior as one recipe option (fpdm_bench/modeling/warp_prior.py): the same prior,
residual and composition as the tiny FPDM's stage 2, the config record, and each baseline's tiny
recipe over it (2 training steps on the fixture set; its adapter adds the warp back)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import FUSION_DIM, micro_config  # noqa: E402
from helpers import warp_inputs as _inputs  # noqa: E402

from fpdm_bench.errors import BenchError  # noqa: E402
from fpdm_bench.modeling import warp_prior as wp  # noqa: E402
from fpdm_bench.modeling.keypoint_warp import warp_batch  # noqa: E402
from fpdm_bench.modeling.warp_prior import WarpPrior  # noqa: E402
from fpdm_bench_baselines.keypoint_warp import KeypointWarp  # noqa: E402

WARP = WarpPrior("keypoint-warp")


# --- one prior, FPDM's -------------------------------------------------------------------------------

def test_the_shared_prior_is_fpdms_and_the_floors_bit_for_bit():
    from fpdm_bench_reference.stage2 import prior as fpdm_prior

    src, skp, tkp = _inputs(3)
    shared = WARP.images(src, skp, tkp)
    assert torch.equal(shared, warp_batch(src, skp, tkp))  # what stage2/prior.py drew before it re-exported
    assert torch.equal(shared, fpdm_prior.prior_images("keypoint-warp", src, skp, tkp))
    assert torch.equal(shared, KeypointWarp().generate({"source": src, "source_kp": skp, "target_kp": tkp}, []))
    assert fpdm_prior.check_prior is wp.check_prior and fpdm_prior.PRIORS == wp.PRIORS


def test_residual_and_compose_are_fpdm_stage2s_bit_for_bit():
    """What stage 2 encodes (vae_input) and how it composes (decode_latents) with a prior are the shared
    residual and compose (stage2/model.py calls them; that its shipped checkpoints still give their
    golden images is tests/test_tiny_fpdm_golden.py's check)."""
    from fpdm_bench_reference.stage2.model import build_model

    torch.manual_seed(0)
    m = build_model(micro_config("stage2.prior=keypoint-warp"), FUSION_DIM).eval()
    src, skp, tkp = _inputs(2, size=(64, 48))
    target = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(3))
    prior = m.prior_images(src, skp, tkp)
    assert torch.equal(m.vae_input(target, prior), wp.residual(target, prior, m.resolution))
    with torch.no_grad():
        z = m.encode_latents(target, sample=False, prior=prior)
        decoded = m.vae.decode((z / m.scaling_factor).to(m.vae.dtype)).sample.float()
        for tau in (0.0, 0.025):
            assert torch.equal(m.decode_latents(z, prior, tau), wp.compose(prior, decoded, tau))


def test_residual_and_compose_round_trip():
    g = torch.Generator().manual_seed(0)
    target, prior = torch.rand(2, 3, 40, 28, generator=g), torch.rand(2, 3, 40, 28, generator=g)
    for scale in (1.0, 2.0, 0.5):
        w = WarpPrior("keypoint-warp", residual_scale=scale)
        r = w.target(target, prior)
        torch.testing.assert_close(r, (target - prior) * scale, rtol=0, atol=1e-6)
        torch.testing.assert_close(w.compose(prior, r), target, rtol=0, atol=1e-6)
    # a low-resolution residual is upsampled to the prior's size; one above any threshold leaves the prior
    small = WARP.target(target, prior, (20, 14))
    assert small.shape == (2, 3, 20, 14) and WARP.compose(prior, small).shape == prior.shape
    assert torch.equal(WARP.compose(prior, small, threshold=10.0), prior)
    assert torch.equal(WARP.at_threshold(10.0).compose(prior, small), prior)


def test_condition_input_adds_the_prior_at_the_pose_size_or_unshuffled():
    pose, prior = torch.rand(2, 21, 16, 12), torch.rand(2, 3, 64, 48) * 1.4 - 0.2
    both = WARP.condition_input(pose, prior)
    assert both.shape == (2, 24, 16, 12) and torch.equal(both[:, :21], pose)
    torch.testing.assert_close(both[:, 21:], wp.resize(prior, (16, 12)).clamp(0, 1))
    unshuffled = WARP.condition_input(pose, prior, unshuffle=4)
    assert unshuffled.shape == (2, 21 + 48, 16, 12) and WARP.condition_channels(4) == 48
    assert torch.equal(WarpPrior().condition_input(pose, prior), pose)  # off: unchanged
    assert torch.equal(WarpPrior("keypoint-warp", condition=False).condition_input(pose, prior), pose)
    with pytest.raises(BenchError, match="pass the prior"):
        WARP.condition_input(pose, None)


def test_the_config_record():
    assert WarpPrior.from_config(None) == WarpPrior() and not WarpPrior().enabled
    assert WarpPrior.from_config("keypoint-warp") == WARP and WARP.enabled
    cfg = {"kind": "keypoint-warp", "threshold": 0.02, "residual_scale": 2.0, "condition": False}
    assert WarpPrior.from_config(cfg).to_config() == cfg
    for bad, match in (({"kind": "flow"}, "prior must be one of none, keypoint-warp"),
                       ({"kind": "keypoint-warp", "thresh": 1}, "unknown prior key"),
                       ({"kind": "keypoint-warp", "threshold": -1}, "residual_threshold must be >= 0"),
                       ({"kind": "keypoint-warp", "residual_scale": 0}, "residual_scale must be > 0"),
                       ({"threshold": 0.1}, "needs a checkpoint with a prior"), (3, "a kind")):
        with pytest.raises(BenchError, match=match):
            WarpPrior.from_config(bad, "x config")
    with pytest.raises(BenchError, match="needs a checkpoint with a prior"):
        WarpPrior().at_threshold(0.1, "pidm")
    assert WarpPrior().at_threshold(0.0) == WarpPrior()


# --- the like-for-like recipes -------------------------------------------------------------------------

LFL_EXAMPLES = 32_000  # steps x batch of every model in both like-for-like sets (docs/training.md)


@pytest.mark.parametrize("model", ["pidm", "cfld", "pocold"])
def test_like_for_like_configs_share_the_budget_and_only_the_prior_set_has_a_prior(model):
    import importlib

    load = importlib.import_module(f"fpdm_bench_baselines.{model}.train").load_config
    tiny, paper, prior = load("tiny"), load("tiny-paper"), load("tiny-prior")
    for cfg in (paper, prior):
        assert int(cfg["train"]["max_steps"]) * int(cfg["train"]["batch_size"]) == LFL_EXAMPLES
    assert "prior" not in tiny and "prior" not in paper and WarpPrior.from_config(prior["prior"]).enabled
    # tiny-prior varies tiny-paper only in the prior and the input channels it needs
    strip = lambda c: {k: v for k, v in c.items() if k not in ("_source", "prior", model, "channel_mapper")}  # noqa: E731
    assert strip(paper) == strip(prior)


def test_fpdm_like_for_like_steps_give_the_same_budget():
    """FPDM's like-for-like recipes are its shipped tiny configs at the Makefile's LFL_FPDM_STEPS."""
    import re
    from pathlib import Path

    from fpdm_bench_reference.config import load_config

    steps = int(re.search(r"^LFL_FPDM_STEPS := (\d+)$", (Path(__file__).parents[1] / "Makefile").read_text(),
                          re.M).group(1))
    for name in ("tiny", "tiny-phoenix"):
        cfg = load_config("stage2", name)
        assert steps * int(cfg["train"]["batch_size"]) == LFL_EXAMPLES and cfg["stage2"]["prior"] == "keypoint-warp"


# --- each baseline over the prior: 2 training steps, and the adapter adds the warp back ----------------

def _batch(ds, n=2):
    recs = ds.pairs[:n]
    kp = lambda names: torch.stack([torch.tensor(ds.keypoints(x), dtype=torch.float32) for x in names])  # noqa: E731
    return {"source": torch.stack([ds.load_image(r.source) for r in recs]),
            "source_kp": kp([r.source for r in recs]), "target_kp": kp([r.target for r in recs]),
            "pair_id": [r.pair_id for r in recs]}


def _check_adapter(load, ds, eight_bit):
    """``load(**model_args)`` -> the trained folder's adapter: it records the prior; with a threshold
    above any residual its output is the keypoint-warp floor's, 8-bit as the model saves its images;
    with the checkpoint's own (0) the residual is there."""
    adapter = load()
    assert adapter.info()["prior"]["kind"] == "keypoint-warp"
    batch = _batch(ds)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa: E731
    warp = KeypointWarp().generate(batch, gens()).clamp(0, 1)
    out = adapter.generate(batch, gens())
    assert out.shape == batch["source"].shape and 0 <= out.min() and out.max() <= 1
    assert torch.equal(load(residual_threshold=1e6).generate(batch, gens()), eight_bit(warp))
    assert (out - eight_bit(warp)).abs().max() > 1 / 255  # without it the (untrained) residual shows


@pytest.mark.slow  # training
def test_pidm_over_the_prior_trains_and_its_adapter_adds_the_warp_back(fixture_root, tmp_path):
    from test_pidm_train import MICRO

    from fpdm_bench.data import open_dataset
    from fpdm_bench_baselines.pidm.adapter import PIDMAdapter
    from fpdm_bench_baselines.pidm.train import load_config, train_pidm

    ds = open_dataset("fixture", root=fixture_root)
    out = train_pidm(load_config("tiny-prior", MICRO), ds, tmp_path / "p", max_steps=2, progress=False)
    assert out["steps"] == 2
    assert PIDMAdapter.from_pretrained(str(tmp_path / "p")).model.config.in_channels == 26
    _check_adapter(lambda **kw: PIDMAdapter.from_pretrained(str(tmp_path / "p"), **kw), ds,
                   lambda x: (x * 255).floor() / 255)
    with pytest.raises(BenchError, match="in_channels is 23"):
        train_pidm(load_config("tiny-prior", MICRO + ["pidm.in_channels=23"]), ds, tmp_path / "q", max_steps=1,
                   progress=False)


@pytest.mark.slow  # training
def test_cfld_over_the_prior_trains_and_its_adapter_adds_the_warp_back(fixture_root, tmp_path):
    from test_cfld_train import MICRO

    from fpdm_bench.data import open_dataset
    from fpdm_bench_baselines.cfld.adapter import CFLDAdapter
    from fpdm_bench_baselines.cfld.train import load_config, train_cfld

    ds = open_dataset("fixture", root=fixture_root)
    out = train_cfld(load_config("tiny-prior", MICRO), ds, tmp_path / "c", max_steps=2, progress=False)
    assert out["steps"] == 2 and out["vae_recon_mae"] > 0
    _check_adapter(lambda **kw: CFLDAdapter.from_pretrained(str(tmp_path / "c"), **kw), ds,
                   lambda x: (x * 255).clamp(0, 255).to(torch.uint8).float() / 255)


@pytest.mark.slow  # training
def test_pocold_over_the_prior_trains_and_its_adapter_adds_the_warp_back(fixture_root, tmp_path):
    from test_pocold_train import MICRO

    from fpdm_bench.data import open_dataset
    from fpdm_bench_baselines.pocold.adapter import PoCoLDAdapter
    from fpdm_bench_baselines.pocold.train import load_config, train_pocold

    ds = open_dataset("fixture", root=fixture_root)
    out = train_pocold(load_config("tiny-prior", MICRO), ds, tmp_path / "o", max_steps=2, progress=False)
    assert out["steps"] == 2 and out["residual_vae_recon_mae"] > 0
    assert (tmp_path / "o" / "residual_vae" / "model.safetensors").is_file()
    assert "residual_vae/model.safetensors" in PoCoLDAdapter.from_pretrained(str(tmp_path / "o")).info()[
        "checkpoint_sha256_of"]
    _check_adapter(lambda **kw: PoCoLDAdapter.from_pretrained(str(tmp_path / "o"), **kw), ds,
                   lambda x: (x * 255).round() / 255)
