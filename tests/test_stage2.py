"""FPDM stage 2: model conditioning paths, persistence, official-key converter, training and resume.

Everything runs on micro versions of the tiny config (32x24 images) built here.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)
import json  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from fpdm_bench.errors import BenchError, WeightsMissing  # noqa: E402
from fpdm_bench.modeling.pose import PoseStyle, render_batch, render_batch_fpdm  # noqa: E402
from fpdm_bench_reference.config import load_config  # noqa: E402
from fpdm_bench_reference.stage1.model import FusionModel  # noqa: E402
from fpdm_bench_reference.stage1.model import build_model as build_stage1  # noqa: E402
from fpdm_bench_reference.stage2.model import Stage2Model, build_model  # noqa: E402
from helpers import FUSION_DIM, STAGE1_MICRO, STAGE2_MICRO, STAGE2_MICRO_KL, micro_config, save_micro_stage1  # noqa: E402,F401



def micro_model(seed=0):
    torch.manual_seed(seed)
    return build_model(micro_config(), FUSION_DIM).eval()


def inputs(model, B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(B, 3, 40, 28, generator=g)
    kps = torch.rand(B, 18, 2, generator=g) * torch.tensor([28.0, 40.0])
    with torch.no_grad():
        tokens = model.encode_source(src)
        latents = model.encode_latents(src, generator=g)
        pose = model.pose_image(kps, (40, 28))
    fusion = torch.nn.functional.normalize(torch.randn(B, FUSION_DIM, generator=g), dim=-1)
    noisy = torch.randn(latents.shape, generator=g)
    t = torch.tensor([10, 500, 990])[:B]
    return noisy, t, tokens, fusion, pose


def perturb_pose_embedding(model, seed=1):
    """Give the zero-initialised last conv of the pose embedding some weights (as training would)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.pose_embed.conv_out.weight.copy_(torch.randn(model.pose_embed.conv_out.weight.shape, generator=g) * 0.1)


# --- shapes and conditioning paths ---------------------------------------------------------------


def test_shapes_and_frozen_parts():
    m = micro_model()
    noisy, t, tokens, fusion, pose = inputs(m)
    assert m.latent_shape == (4, 8, 6)
    assert noisy.shape == (3, 4, 8, 6)
    assert tokens.shape == (3, 1 + (32 // 8) ** 2, 32)  # CLS + 4x4 patches, kept as officially
    assert pose.shape == (3, 3, 32, 24) and 0 <= pose.min() and pose.max() <= 1 and pose.max() > 0
    with torch.no_grad():
        out = m(noisy, t, tokens, fusion, pose)
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    assert not any(p.requires_grad for p in m.vae.parameters())
    trainable = {id(p) for p in m.trainable_parameters()}
    assert all(id(p) in trainable for p in m.unet.parameters())
    # tiny recipe: the random-init source encoder trains with the UNet
    assert m.source_encoder_trainable and all(id(p) in trainable for p in m.source_encoder.parameters())
    assert all(p.requires_grad for p in m.source_encoder.parameters())
    # the paper's (and STAGE2_MICRO_KL's) encoder stays frozen, and an AutoencoderKL is never trained here
    torch.manual_seed(0)
    kl = build_model(micro_config(*STAGE2_MICRO_KL), FUSION_DIM)
    trainable = {id(p) for p in kl.trainable_parameters()}
    assert not any(p.requires_grad for p in kl.source_encoder.parameters()) and kl.vae_scale_factor == 4
    assert all(id(p) not in trainable for p in [*kl.vae.parameters(), *kl.source_encoder.parameters()])


def test_zero_initialised_pose_embedding_leaves_unet_unchanged_at_init():
    m = micro_model()
    noisy, t, tokens, fusion, pose = inputs(m)
    with torch.no_grad():
        with_pose = m(noisy, t, tokens, fusion, pose)
        no_pose = m(noisy, t, tokens, fusion, pose, drop_pose=torch.ones(3, dtype=torch.bool))
        cond = m.project(tokens, fusion, pose)
        bare = m.unet(noisy, t, encoder_hidden_states=cond.hidden_states, class_labels=cond.class_emb).sample
        assert cond.pose_features.abs().max() == 0
        torch.testing.assert_close(with_pose, no_pose, rtol=0, atol=0)
        torch.testing.assert_close(with_pose, bare, rtol=0, atol=0)
        # and the path is live: once the last conv has weights, the pose changes the prediction
        perturb_pose_embedding(m)
        assert (m(noisy, t, tokens, fusion, pose) - with_pose).abs().max() > 1e-4


def test_condition_dropout_replaces_each_condition_by_its_null():
    m = micro_model()
    perturb_pose_embedding(m)
    noisy, t, tokens, fusion, pose = inputs(m)
    drop, others = torch.tensor([False, True, False]), torch.tensor([True, False, True])
    with torch.no_grad():
        full = m.project(tokens, fusion, pose)
        dropped = m.project(tokens, fusion, pose, drop_source=drop, drop_fusion=drop, drop_pose=drop)
        null_fusion = m.fusion_proj(torch.zeros(1, FUSION_DIM))
    # dropped row: zero source tokens, fusion MLP of a zero vector, zero pose features
    assert dropped.hidden_states[1].abs().max() == 0 and full.hidden_states[1].abs().max() > 0
    torch.testing.assert_close(dropped.class_emb[1:2], null_fusion)
    assert dropped.pose_features[1].abs().max() == 0 and full.pose_features[1].abs().max() > 0
    # other rows untouched
    for f in ("hidden_states", "class_emb", "pose_features"):
        torch.testing.assert_close(getattr(dropped, f)[others], getattr(full, f)[others])
    # each single drop changes the prediction of that sample only
    with torch.no_grad():
        ref = m(noisy, t, tokens, fusion, pose)
        for name in ("drop_source", "drop_fusion", "drop_pose"):
            out = m(noisy, t, tokens, fusion, pose, **{name: drop})
            assert (out[1] - ref[1]).abs().max() > 1e-5, name
            torch.testing.assert_close(out[[0, 2]], ref[[0, 2]], rtol=1e-4, atol=1e-5)


def test_pose_levels_must_match_the_vae():
    with pytest.raises(BenchError, match="pose_embed.channels"):
        build_model(micro_config("stage2.pose_embed.channels=[16,32,96,256]"), FUSION_DIM)


def test_save_load_round_trip(tmp_path):
    m = micro_model()
    m.config["vae"]["scaling_factor"] = 0.7
    perturb_pose_embedding(m)
    noisy, t, tokens, fusion, pose = inputs(m)
    m.save_pretrained(tmp_path / "s2")
    back = Stage2Model.from_pretrained(tmp_path / "s2")
    assert back.scaling_factor == 0.7 and back.resolution == (32, 24)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0, msg=k)
    with torch.no_grad():
        torch.testing.assert_close(back(noisy, t, tokens, fusion, pose), m(noisy, t, tokens, fusion, pose))
    # fp16 storage: half the bytes, same model up to fp16 rounding
    m.save_pretrained(tmp_path / "half", dtype=torch.float16)
    assert (tmp_path / "half/model.safetensors").stat().st_size < 0.6 * (tmp_path / "s2/model.safetensors").stat().st_size
    half = Stage2Model.from_pretrained(tmp_path / "half")
    assert half.unet.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(half(noisy, t, tokens, fusion, pose), m(noisy, t, tokens, fusion, pose),
                                   rtol=0, atol=5e-2)


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(WeightsMissing, match="config.json"):
        Stage2Model.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(BenchError, match="not an FPDM stage-2 checkpoint"):
        Stage2Model.from_pretrained(tmp_path)


def test_paper_config_needs_local_weights(tmp_path):
    cfg = load_config("stage2", "paper", [f"stage2.vae.path={tmp_path / 'nope'}"])
    assert tuple(cfg["stage2"]["resolution"]) == (512, 352)
    with pytest.raises(WeightsMissing, match="nope"):
        build_model(cfg, 768)
    with pytest.raises(BenchError, match="stage2.vae.path"):
        build_model(load_config("stage2", "paper", ["stage2.vae.path=null"]), 768)


# --- inputs: pose drawing and the fusion branch's source preprocessing ---------------------------


def _paper_inputs_model():
    """A micro model with the paper config's pose_render and fusion_preprocess (the paper towers need weights)."""
    paper = load_config("stage2", "paper")["stage2"]
    cfg = micro_config()
    cfg["stage2"]["pose_render"] = paper["pose_render"]
    cfg["stage2"]["fusion_preprocess"] = paper["fusion_preprocess"]
    torch.manual_seed(0)
    return build_model(cfg, FUSION_DIM).eval()


def _stage1_clip_crop():
    """A micro stage-1 model that centre-crops its images, as the paper's stage 1 trains."""
    torch.manual_seed(0)
    return build_stage1(load_config("stage1", "tiny", STAGE1_MICRO + ["stage1.preprocess=clip_crop"])).eval()


def _record_tower_inputs(fm):
    seen = []
    orig = fm.embed_tower_inputs

    def rec(x):
        seen.append(x.detach().clone())
        return orig(x)

    fm.embed_tower_inputs = rec
    return seen


def _src_kps(B=2):
    g = torch.Generator().manual_seed(3)
    src = torch.rand(B, 3, 40, 28, generator=g)  # portrait: a centre crop and a squash differ
    kps = torch.rand(B, 18, 2, generator=g) * torch.tensor([28.0, 40.0])
    kps[0, 4] = float("nan")
    return src, kps


def test_paper_config_picks_official_pose_and_squash():
    paper = load_config("stage2", "paper")["stage2"]
    assert paper["fusion_preprocess"] == "squash"
    assert PoseStyle.from_config(paper["pose_render"]) == PoseStyle("fpdm_official", (1101, 750), 100)
    assert PoseStyle.from_config(paper["pose_render"], train=True) == PoseStyle("fpdm_official", (550, 375), None)
    tiny = load_config("stage2", "tiny")["stage2"]
    assert "pose_render" not in tiny and "fusion_preprocess" not in tiny


def test_official_pose_image_train_and_inference_canvases():
    m = _paper_inputs_model()
    _, kps = _src_kps()
    test_style = PoseStyle("fpdm_official", (1101, 750), 100)  # pre-rendered pose_img JPEGs
    train_style = PoseStyle("fpdm_official", (550, 375), None)  # drawn on the fly while training
    at_test = m.pose_image(kps, (40, 28))
    assert at_test.shape == (2, 3, 32, 24)
    assert torch.equal(at_test, render_batch_fpdm(kps, (40, 28), (32, 24), test_style))
    m.train()
    at_train = m.pose_image(kps, (40, 28))
    assert torch.equal(at_train, render_batch_fpdm(kps, (40, 28), (32, 24), train_style))
    assert torch.equal(m.pose_image(kps, (40, 28), train=False), at_test)
    assert not torch.equal(at_train, at_test)
    bench = micro_model()
    assert not torch.allclose(bench.pose_image(kps, (40, 28)), at_test)
    with pytest.raises(BenchError, match="pose_render"):
        build_model(micro_config("stage2.pose_render.style=openpose"), FUSION_DIM)
    with pytest.raises(BenchError, match="fusion_preprocess"):
        build_model(micro_config("stage2.fusion_preprocess=crop"), FUSION_DIM)


def test_fusion_branch_inputs_paper_squash_vs_stage1_crop():
    """Official stage 2 feeds the stage-1 CLIP tower the source squashed (no centre crop) and the
    same pose drawing as the UNet, although stage 1 trained on centre crops."""
    m, fm = _paper_inputs_model(), _stage1_clip_crop()
    src, kps = _src_kps()
    seen = _record_tower_inputs(fm)
    with torch.no_grad():
        fusion = m.fusion(fm, src, kps, (40, 28))
    source_in, pose_in = seen
    squash, crop = fm.resize(src, crop=False), fm.resize(src, crop=True)
    assert not torch.allclose(squash, crop)
    assert torch.equal(source_in, squash)
    assert torch.equal(pose_in, m.pose_image(kps, (40, 28), size=(32, 32)))
    assert fusion.shape == (2, FUSION_DIM)
    with torch.no_grad():  # the stage-1 model's own default differs: it crops
        assert not torch.allclose(fusion, fm.fuse(src, kps, size=(40, 28)))


def test_fusion_branch_unchanged_without_the_keys():
    """Tiny config (keys absent): exactly the stage-1 model's own fuse, as before the keys existed."""
    m, fm = micro_model(), _stage1_clip_crop()
    src, kps = _src_kps()
    seen = _record_tower_inputs(fm)
    with torch.no_grad():
        got = m.fusion(fm, src, kps, (40, 28))
        assert torch.equal(seen[0], fm.resize(src, crop=True))
        assert torch.equal(seen[1], fm.resize(render_batch(kps, (40, 28)), crop=False))
        assert torch.equal(got, fm.fuse(src, kps, size=(40, 28)))


def test_shipped_tiny_checkpoint_keeps_its_inputs():
    from pathlib import Path

    import fpdm_bench_reference

    ck = Path(fpdm_bench_reference.__file__).parent / "checkpoints" / "tiny" / "stage2"
    saved = json.loads((ck / "config.json").read_text())["stage2"]
    assert "pose_render" not in saved and "fusion_preprocess" not in saved  # saved before the keys
    m = Stage2Model.from_pretrained(ck)
    assert m.pose_style(train=True) == m.pose_style(train=False) == PoseStyle()
    kps = torch.rand(2, 18, 2) * torch.tensor([176.0, 256.0])
    assert torch.equal(m.pose_image(kps, (256, 176)), m.resize(render_batch(kps, (256, 176))))


# --- official checkpoint converter ---------------------------------------------------------------

# Ours -> official (latest FPDM code, transformers 4.40 / diffusers 0.27 names), written out by hand.
OFFICIAL_NAMES = [
    ("fusion_proj.", "unet.class_embedding.net."),
    ("unet.", "unet."),
    ("vae.", "vae."),
    ("source_proj.", "sd_model.srcimage_proj_model.net."),
    ("pose_embed.", "sd_model.pose_t_proj."),
    ("source_encoder.", "src_image_encoder."),
]
OLD_DINOV2 = [(".attention.q_proj.", ".attention.attention.query."), (".attention.k_proj.", ".attention.attention.key."),
              (".attention.v_proj.", ".attention.attention.value."), (".attention.o_proj.", ".attention.output.dense.")]
STAGE1_OFFICIAL = [("tower.", "img_encoder."), ("combiner.pose_proj.", "combiner.kpt_projection_layer."),
                   ("combiner.image_proj.", "combiner.image_projection_layer."),
                   ("combiner.combine.", "combiner.combiner_layer."), ("combiner.output.", "combiner.output_layer."),
                   ("combiner.gate.", "combiner.dynamic_scalar.")]


def to_official(state, table, renames=()):
    out = {}
    for k, v in state.items():
        for ours, theirs in table:
            if k.startswith(ours):
                rest = k[len(ours):]
                for new, old in renames:
                    rest = rest.replace(new, old)
                out[theirs + rest] = v.clone()
                break
        else:
            raise AssertionError(f"no official name for {k}")
    return out


def official_stage2_state(model):
    state = to_official(model.state_dict(), OFFICIAL_NAMES, OLD_DINOV2)
    # the Lightning module also registers the same UNet under sd_model.unet
    state.update({"sd_model." + k: v.clone() for k, v in state.items() if k.startswith("unet.")
                  and not k.startswith("unet.class_embedding.")})
    return state


def test_converter_round_trip_strict():
    from fpdm_bench_reference.stage2.convert import convert_official_stage2

    m = micro_model()
    perturb_pose_embedding(m)
    official = official_stage2_state(m)
    assert any(k.startswith("src_image_encoder.encoder.layer.0.attention.attention.query") for k in official)
    converted = convert_official_stage2({"state_dict": official, "epoch": 3})
    fresh = micro_model(seed=123)
    fresh.load_state_dict(converted, strict=True)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_converter_rejects_unknown_and_inconsistent_keys():
    from fpdm_bench_reference.stage2.convert import convert_official_stage2

    official = official_stage2_state(micro_model())
    with pytest.raises(BenchError, match="unexpected key"):
        convert_official_stage2({**official, "sd_model.fusionpatch_proj_model.net.0.weight": torch.zeros(1)})
    key = next(k for k in official if k.startswith("sd_model.unet."))
    with pytest.raises(BenchError, match="differs"):
        convert_official_stage2({**official, key: official[key] + 1})


def test_top_level_loader_dispatches_by_stage(tmp_path):
    from fpdm_bench_reference.convert import load_official_checkpoint

    m = micro_model()
    s1 = FusionModel.from_pretrained(save_micro_stage1(tmp_path / "s1"))
    s1_official = to_official(s1.state_dict(), STAGE1_OFFICIAL)
    both = {**official_stage2_state(m), **{"fusion_model." + k: v for k, v in s1_official.items()}}
    torch.save({"state_dict": both}, tmp_path / "stage2.ckpt")
    torch.save({"state_dict": s1_official}, tmp_path / "stage1.ckpt")
    torch.save({"state_dict": {"model.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")

    ck2 = load_official_checkpoint(tmp_path / "stage2.ckpt")
    assert ck2.stage == 2
    micro_model(seed=5).load_state_dict(ck2.stage2, strict=True)
    FusionModel(dict(s1.config), tower=type(s1.tower)(s1.tower.config)).load_state_dict(ck2.stage1, strict=True)
    ck1 = load_official_checkpoint(tmp_path / "stage1.ckpt")
    assert ck1.stage == 1 and ck1.stage2 is None and set(ck1.stage1) == set(s1.state_dict())
    with pytest.raises(BenchError, match="not an official FPDM checkpoint"):
        load_official_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(WeightsMissing):
        load_official_checkpoint(tmp_path / "missing.ckpt")


# --- training ------------------------------------------------------------------------------------


@pytest.fixture
def train_setup(tmp_path):
    from conftest import make_fixture, open_manifest

    ds = open_manifest(make_fixture(tmp_path / "fx", n_images=4, size=(40, 28)), split="train")
    return ds, save_micro_stage1(tmp_path / "stage1")


def _log(path):
    return [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow  # training
def test_short_overfit_loss_falls(tmp_path, train_setup, monkeypatch):
    import fpdm_bench_reference.stage2.train as train_mod

    ds, s1 = train_setup
    ds.pairs = ds.pairs[:4]
    # Overfit one fixed batch: every step repeats step 1's draws (timesteps, noise, posterior sample),
    # so the loss measures memorisation rather than the noise of fresh timesteps (~1 for v-prediction).
    real_generator = train_mod._generator
    monkeypatch.setattr(train_mod, "_generator",
                        lambda seed, *parts: real_generator(seed, *(p for p in parts if not isinstance(p, int))))
    cfg = micro_config("train.lr=3e-3", "train.checkpoint_every=0", "train.ema_decay=null",
                       "stage2.condition_dropout={source: 0, fusion: 0, pose: 0}")
    out = train_mod.train_stage2(cfg, ds, s1, tmp_path / "run", seed=0, max_steps=40, progress=False)
    losses = out["losses"]
    assert len(losses) == 40 and all(map(lambda x: x == x, losses))
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.2 * first, (first, last)  # measured: 0.62 -> 0.007 (quarter means)
    info = json.loads((tmp_path / "run/train_info.json").read_text())
    assert info["seed"] == 0 and info["dataset"]["pairs_sha256"] == ds.pairs_sha256()
    assert info["stage1"]["sha256"] and info["summary"]["vae_scaling_factor"] > 0
    back = Stage2Model.from_pretrained(tmp_path / "run")
    assert back.scaling_factor == pytest.approx(info["summary"]["vae_scaling_factor"])
    assert info["summary"]["vae_kind"] == "patch-pca" and 0 < info["summary"]["vae_explained_variance"] <= 1
    # the tiny recipe trains the source encoder: the saved one is not the initial one
    torch.manual_seed(train_mod._seed_for(0, "init"))
    init = build_model(cfg, FUSION_DIM).state_dict()
    moved = [k for k, v in back.state_dict().items() if k.startswith("source_encoder.") and not torch.equal(v, init[k])]
    assert moved, "source encoder weights did not train"


def test_kl_vae_is_fitted_first_and_the_frozen_encoder_stays_put(tmp_path, train_setup):
    from fpdm_bench_reference.stage2.train import _seed_for, train_stage2

    ds, s1 = train_setup
    cfg = micro_config(*STAGE2_MICRO_KL)
    out = train_stage2(cfg, ds, s1, tmp_path / "kl", seed=0, max_steps=2, progress=False)
    assert out["vae_steps"] == 2 and out["vae_recon_mae"] > 0 and "vae_kind" not in out
    torch.manual_seed(_seed_for(0, "init"))
    init = build_model(cfg, FUSION_DIM).state_dict()
    back = Stage2Model.from_pretrained(tmp_path / "kl").state_dict()
    for k, v in init.items():
        if k.startswith("source_encoder."):
            torch.testing.assert_close(back[k], v, rtol=0, atol=0)


@pytest.mark.slow  # training, twice
def test_resume_continues_like_a_straight_run(tmp_path, train_setup):
    from fpdm_bench_reference.stage2.train import train_stage2

    ds, s1 = train_setup
    cfg = micro_config()
    train_stage2(cfg, ds, s1, tmp_path / "a", seed=3, max_steps=3, progress=False)
    assert (tmp_path / "a/checkpoint/state.safetensors").is_file()
    first = _log(tmp_path / "a")
    assert [r["step"] for r in first] == [1, 2, 3]
    resumed = train_stage2(cfg, ds, s1, tmp_path / "a", seed=3, max_steps=6, progress=False)
    straight = train_stage2(cfg, ds, s1, tmp_path / "b", seed=3, max_steps=6, progress=False)
    log_a, log_b = _log(tmp_path / "a"), _log(tmp_path / "b")
    assert resumed["steps"] == straight["steps"] == 6
    assert [r["step"] for r in log_a] == list(range(1, 7))
    assert [r["loss"] for r in log_a[:3]] == [r["loss"] for r in first]  # the log continues, not restarts
    for ra, rb in zip(log_a, log_b):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-4, abs=1e-6)
    # weights agree to float noise: Adam divides by sqrt(v), which amplifies last-bit differences
    # of a few near-zero gradients (seen: 2e-5 on one bias with one thread)
    wa = Stage2Model.from_pretrained(tmp_path / "a").state_dict()
    wb = Stage2Model.from_pretrained(tmp_path / "b").state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-4, msg=lambda m, k=k: f"{k}: {m}")
    # a checkpoint from another seed is not silently continued
    with pytest.raises(BenchError, match="seed"):
        train_stage2(cfg, ds, s1, tmp_path / "a", seed=4, max_steps=7, progress=False)


def test_cli_command_trains_and_ships_without_resume_state(tmp_path, train_setup):
    from fpdm_bench_reference.stage2.train import train_stage2_command

    ds, s1 = train_setup
    args = ["--config", "tiny", "--dataset", "fixture", "--data-root", str(ds.root), "--stage1", str(s1),
            "--out", str(tmp_path / "cli"), "--seed", "1", "--max-steps", "2", "--quiet",
            "--set", "train.keep_checkpoint=false", "--set", "train.save_dtype=float16"]
    for o in STAGE2_MICRO:
        args += ["--set", o]
    res = CliRunner().invoke(train_stage2_command, args)
    assert res.exit_code == 0, res.output
    assert "trained 2 steps" in res.output
    assert not (tmp_path / "cli/checkpoint").exists()
    assert {p.name for p in (tmp_path / "cli").iterdir()} >= {"config.json", "model.safetensors",
                                                              "scheduler_config.json", "train_info.json"}
    info = json.loads((tmp_path / "cli/train_info.json").read_text())
    assert info["seed"] == 1 and info["summary"]["steps"] == 2 and info["command"]


def test_convert_command_builds_a_loadable_pipeline(tmp_path):
    """Official stage-2 file (with its stage-1 model embedded) -> pipeline folder -> same weights."""
    from fpdm_bench_reference.convert import convert_to_pipeline
    from fpdm_bench_reference.pipeline import FPDMPipeline

    m = micro_model(seed=2)
    s1 = FusionModel.from_pretrained(save_micro_stage1(tmp_path / "s1", seed=3))
    official = {**official_stage2_state(m),
                **{"fusion_model." + k: v for k, v in to_official(s1.state_dict(), STAGE1_OFFICIAL).items()}}
    torch.save({"state_dict": official}, tmp_path / "fpdm.ckpt")
    cfg1, cfg2 = load_config("stage1", "tiny", STAGE1_MICRO), micro_config()
    out = convert_to_pipeline(tmp_path / "fpdm.ckpt", tmp_path / "pipe", cfg1, cfg2)
    pipe = FPDMPipeline.from_pretrained(out)
    for mine, theirs in ((pipe.stage2, m), (pipe.stage1, s1)):
        got, want = mine.state_dict(), theirs.state_dict()
        assert set(got) == set(want)
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0, msg=lambda msg, k=k: f"{k}: {msg}")
    with pytest.raises(BenchError, match="not empty"):  # nothing already written is overwritten
        convert_to_pipeline(tmp_path / "fpdm.ckpt", out, cfg1, cfg2)
    with pytest.raises(BenchError, match="do not fit"):  # a config that is not the checkpoint's
        convert_to_pipeline(tmp_path / "fpdm.ckpt", tmp_path / "other", cfg1,
                            micro_config("stage2.unet.config.block_out_channels=[16,32,64]"))
