"""FPDM stage 1 reference implementation: model, loss, training, evaluation, converter, configs."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fpdm_bench  # noqa: E402,F401  (torchvision shim first)
import json  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from fpdm_bench.data import open_dataset  # noqa: E402
from fpdm_bench.errors import BenchError, WeightsMissing  # noqa: E402
from fpdm_bench.modeling.pose import PoseStyle, render_batch, render_batch_fpdm  # noqa: E402
from fpdm_bench_reference.config import apply_overrides, load_config  # noqa: E402
from fpdm_bench_reference.stage1.convert import convert_official_stage1  # noqa: E402
from fpdm_bench_reference.stage1.evaluate import eval_stage1_command, evaluate_stage1, ranks_of_targets  # noqa: E402
from fpdm_bench_reference.stage1.loss import info_nce_loss  # noqa: E402
from fpdm_bench_reference.stage1.model import Combiner, FusionModel, build_model  # noqa: E402
from fpdm_bench_reference.stage1.train import epoch_order, train_stage1, train_stage1_command  # noqa: E402

MICRO_VISION = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, projection_dim=32)


def micro_config(**train):
    return {"stage1": {"tower": "tiny", "vision": dict(MICRO_VISION),
                       "combiner": {"projection_dim": 32, "hidden_dim": 32, "dropout": 0.0}},
            "train": {"batch_size": 6, "epochs": 100, "lr": 2e-3, "warmup_steps": 0, "cache_images": True,
                      "log_every": 5, **train}}


def micro_model(seed=0):
    torch.manual_seed(seed)
    return build_model(micro_config()).eval()


# --- Combiner ------------------------------------------------------------------------------------

def test_combiner_normalised_and_gate_in_unit_interval():
    torch.manual_seed(0)
    comb = Combiner(16, 24, 20).eval()
    src, pose = torch.randn(5, 16) * 3, torch.randn(5, 16)
    out, gate = comb(src, pose, return_gate=True)
    assert out.shape == (5, 16) and gate.shape == (5, 1)
    assert torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert bool(((gate > 0) & (gate < 1)).all())


def test_combiner_formula_pose_first():
    """Recompute the Combiner by hand: out = W_o relu(W_c [p, s]) + g*pose + (1-g)*source, normalised."""
    torch.manual_seed(1)
    comb = Combiner(8, 12, 10).eval()
    src, pose = torch.randn(3, 8), torch.randn(3, 8)
    p = F.relu(pose @ comb.pose_proj.weight.T + comb.pose_proj.bias)
    s = F.relu(src @ comb.image_proj.weight.T + comb.image_proj.bias)
    joint = torch.cat([p, s], -1)  # pose first: the official concatenation order
    g = torch.sigmoid(F.relu(joint @ comb.gate[0].weight.T + comb.gate[0].bias) @ comb.gate[3].weight.T + comb.gate[3].bias)
    mixed = F.relu(joint @ comb.combine.weight.T + comb.combine.bias) @ comb.output.weight.T + comb.output.bias
    expected = F.normalize(mixed + g * pose + (1 - g) * src, dim=-1)
    assert torch.allclose(comb(src, pose), expected, atol=1e-6)


def test_gate_selects_pose_or_source():
    torch.manual_seed(2)
    comb = Combiner(8, 8, 8).eval()
    with torch.no_grad():
        comb.output.weight.zero_()
        comb.output.bias.zero_()
        comb.gate[3].weight.zero_()
        comb.gate[3].bias.fill_(30.0)  # gate -> 1: pure pose
    src, pose = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.allclose(comb(src, pose), F.normalize(pose, dim=-1), atol=1e-5)
    with torch.no_grad():
        comb.gate[3].bias.fill_(-30.0)  # gate -> 0: pure source
    assert torch.allclose(comb(src, pose), F.normalize(src, dim=-1), atol=1e-5)


# --- loss ----------------------------------------------------------------------------------------

def test_info_nce_identical_lower_than_random():
    torch.manual_seed(0)
    t = torch.randn(8, 16)
    s = torch.randn(8, 16)
    good, _ = info_nce_loss(t, F.normalize(t, dim=-1), s)
    bad, _ = info_nce_loss(t, F.normalize(torch.randn(8, 16), dim=-1), s)
    assert float(good) < float(bad)


def test_info_nce_matches_hand_computation():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    f = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    loss, stats = info_nce_loss(t, f, None, temperature=0.5, source_enhanced=False)
    cos = np.array([[0.6, 0.0], [0.8, 1.0]]) / 0.5  # rows target, columns fusion
    expected = np.mean([np.log(np.exp(cos[i]).sum()) - cos[i, i] for i in range(2)])
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert stats["acc_top1"] == 1.0


def test_source_enhanced_penalises_collapse_onto_source():
    """With the source as an extra negative, a fusion equal to the source scores worse than one equal
    to the target; without the extension the loss cannot tell the two apart on these vectors."""
    torch.manual_seed(3)
    t, s = torch.randn(6, 16), torch.randn(6, 16)
    to_target, _ = info_nce_loss(t, F.normalize(t, dim=-1), s, l1_weight=0.0)
    to_source, _ = info_nce_loss(t, F.normalize(s, dim=-1), s, l1_weight=0.0)
    assert float(to_source) > float(to_target) + 1.0
    # extended batch: 2B rows; the L1 term is mean |source - fusion| over it
    _, stats = info_nce_loss(t, F.normalize(t, dim=-1), s, l1_weight=1e-4)
    expected_l1 = float((torch.cat([s, s]) - torch.cat([F.normalize(t, dim=-1), s])).abs().mean())
    assert stats["l1"] == pytest.approx(expected_l1, rel=1e-6)


# --- model ---------------------------------------------------------------------------------------

def test_fuse_shapes_normalised_and_uses_pose():
    m = micro_model()
    x = torch.rand(3, 3, 40, 28)
    kp = torch.rand(3, 18, 2) * torch.tensor([28.0, 40.0])
    with torch.no_grad():
        f = m.fuse(x, kp)
        assert f.shape == (3, 32)
        assert torch.allclose(f.norm(dim=-1), torch.ones(3), atol=1e-5)
        assert m.embed_images(x).shape == (3, 32) and m.embed_pose(kp, (40, 28)).shape == (3, 32)
        f2 = m.fuse(x, kp.flip(0))
    assert not torch.allclose(f, f2)  # another pose, another fusion


def test_resize_modes():
    m = micro_model()
    x = torch.rand(1, 3, 64, 44)
    assert m.resize(x).shape == (1, 3, 32, 32)
    m.preprocess = "clip_crop"
    crop = m.resize(x)
    assert crop.shape == (1, 3, 32, 32)
    # centre crop of the shortest-edge resize: the top rows of the frame are cut away
    x2 = x.clone()
    x2[..., :4, :] = 0  # (the crop starts ~9.6 input rows down; bicubic support ~3 rows)
    assert torch.allclose(m.resize(x2), crop, atol=1e-6)
    m.preprocess = "squash"
    assert not torch.allclose(m.resize(x2), m.resize(x))


def test_save_load_round_trip(tmp_path):
    m = micro_model()
    x = torch.rand(2, 3, 40, 28)
    kp = torch.rand(2, 18, 2) * 28
    m.save_pretrained(tmp_path / "ck")
    assert {p.name for p in (tmp_path / "ck").iterdir()} == {"config.json", "model.safetensors"}
    m2 = FusionModel.from_pretrained(tmp_path / "ck")
    with torch.no_grad():
        assert torch.equal(m.fuse(x, kp), m2.fuse(x, kp))
    assert m2.config["combiner"] == m.config["combiner"]


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(WeightsMissing, match="config.json"):
        FusionModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(BenchError, match="not an FPDM stage-1 checkpoint"):
        FusionModel.from_pretrained(tmp_path)


# --- configs -------------------------------------------------------------------------------------

def test_presets_and_overrides(tmp_path):
    tiny = load_config("stage1", "tiny", ["train.lr=0.01", "stage1.vision.num_hidden_layers=1", "train.max_steps=null"])
    assert tiny["train"]["lr"] == 0.01 and tiny["stage1"]["vision"]["num_hidden_layers"] == 1
    assert tiny["train"]["max_steps"] is None
    paper = load_config("stage1", "paper")
    assert paper["stage1"]["clip_path"] == "openai/clip-vit-large-patch14"
    assert paper["train"]["temperature"] == 0.07 and paper["train"]["batch_size"] == 48
    f = tmp_path / "mine.yaml"
    f.write_text("stage1: {tower: tiny}\ntrain: {lr: 0.5}\n")
    assert load_config("stage1", f)["train"]["lr"] == 0.5
    with pytest.raises(BenchError, match="unknown stage1 config 'tinny'"):
        load_config("stage1", "tinny")
    with pytest.raises(BenchError, match="expected key=value"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(BenchError, match="is a value"):
        apply_overrides({"train": {"lr": 1}}, ["train.lr.x=2"])


def test_paper_config_without_weights_names_what_is_missing(tmp_path):
    cfg = load_config("stage1", "paper", [f"stage1.clip_path={tmp_path / 'no-clip-here'}"])
    with pytest.raises(WeightsMissing) as e:
        build_model(cfg)
    msg = str(e.value)
    assert "no-clip-here" in msg and "stage1.clip_path" in msg and "CLIP" in msg
    # the hub id itself: not cached here, and never downloaded
    with pytest.raises(WeightsMissing, match="openai/clip-vit-large-patch14"):
        build_model(load_config("stage1", "paper"))


# --- inputs: pose drawing and source preprocessing -----------------------------------------------

OFFICIAL_POSE = {"style": "fpdm_official", "canvas": [80, 56], "jpeg_quality": 100}


def test_pose_render_is_a_config_choice():
    kp = torch.rand(2, 18, 2) * torch.tensor([28.0, 40.0])
    kp[0, 3] = float("nan")
    bench = micro_model()
    assert bench.pose_style == PoseStyle()  # key absent: the bench renderer, as before this key existed
    with torch.no_grad():
        want_bench = bench.resize(render_batch(kp, (40, 28)), crop=False)
        assert torch.equal(bench.render_pose(kp, (40, 28)), want_bench)
        cfg = micro_config()
        cfg["stage1"]["pose_render"] = dict(OFFICIAL_POSE)
        off = build_model(cfg).eval()
        got = off.render_pose(kp, (40, 28))
        assert got.shape == (2, 3, 32, 32)
        assert torch.equal(got, render_batch_fpdm(kp, (40, 28), (32, 32), PoseStyle("fpdm_official", (80, 56), 100)))
        assert not torch.allclose(got, want_bench)
        assert not torch.allclose(off.embed_pose(kp, (40, 28)), off.embed_tower_inputs(want_bench))
    for bad in ({"style": "nope"}, {"style": "fpdm_official", "train": {"canvas": [8, 8]}}):
        cfg["stage1"]["pose_render"] = bad
        with pytest.raises(BenchError, match="pose_render"):
            build_model(cfg)


def test_paper_config_draws_official_poses_tiny_keeps_bench():
    paper = load_config("stage1", "paper")["stage1"]
    assert paper["preprocess"] == "clip_crop"  # official stage-1 training: CLIP processor centre crop
    assert PoseStyle.from_config(paper["pose_render"]) == PoseStyle("fpdm_official", (1101, 750), 100)
    tiny = load_config("stage1", "tiny")["stage1"]
    assert "pose_render" not in tiny and tiny["preprocess"] == "squash"


def test_shipped_tiny_checkpoint_keeps_the_bench_renderer():
    from pathlib import Path

    import fpdm_bench_reference

    ck = Path(fpdm_bench_reference.__file__).parent / "checkpoints" / "tiny" / "stage1"
    assert "pose_render" not in json.loads((ck / "config.json").read_text())["stage1"]  # saved before the key
    m = FusionModel.from_pretrained(ck)
    assert m.pose_style == PoseStyle() and m.preprocess == "squash"
    kp = torch.rand(2, 18, 2) * torch.tensor([176.0, 256.0])
    assert torch.equal(m.render_pose(kp, (256, 176)), m.resize(render_batch(kp, (256, 176)), crop=False))


def test_official_pose_style_trains_saves_and_reloads(fixture_root, tmp_path):
    cfg = micro_config()
    cfg["stage1"]["pose_render"] = dict(OFFICIAL_POSE)
    ds = open_dataset("fixture", root=fixture_root, split="train")
    train_stage1(cfg, ds, tmp_path / "ck", seed=0, max_steps=2, progress=False)
    saved = json.loads((tmp_path / "ck" / "config.json").read_text())["stage1"]
    assert saved["pose_render"] == OFFICIAL_POSE
    m = FusionModel.from_pretrained(tmp_path / "ck")
    assert m.pose_style == PoseStyle("fpdm_official", (80, 56), 100)


def test_fuse_source_preprocessing_can_be_chosen():
    """Stage 1 trains on centre crops (clip_crop), official stage 2 squashes: fuse takes either."""
    m = micro_model()
    m.preprocess = "clip_crop"
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 44, generator=g)  # portrait: crop and squash differ
    kp = torch.rand(2, 18, 2, generator=g) * torch.tensor([44.0, 64.0])
    with torch.no_grad():
        crop_in, squash_in = m.resize(x, crop=True), m.resize(x, crop=False)
        assert crop_in.shape == squash_in.shape == (2, 3, 32, 32) and not torch.allclose(crop_in, squash_in)
        assert torch.equal(m.embed_images(x), m.embed_tower_inputs(crop_in))
        assert torch.equal(m.embed_images(x, "squash"), m.embed_tower_inputs(squash_in))
        pose_e = m.embed_pose(kp, (64, 44))
        assert torch.equal(m.fuse(x, kp), m.fuse_embeddings(m.embed_tower_inputs(crop_in), pose_e))
        squashed = m.fuse(x, kp, preprocess="squash")
        assert torch.equal(squashed, m.fuse_embeddings(m.embed_tower_inputs(squash_in), pose_e))
        assert not torch.allclose(squashed, m.fuse(x, kp))
        pose = torch.rand(2, 3, 32, 32, generator=g)  # pose images drawn by the caller (stage 2)
        assert torch.equal(m.fuse(x, kp, pose_images=pose),
                           m.fuse_embeddings(m.embed_tower_inputs(crop_in), m.embed_tower_inputs(pose)))
    with pytest.raises(BenchError, match="tower takes"):
        m.fuse(x, kp, pose_images=torch.rand(2, 3, 16, 16))
    with pytest.raises(BenchError, match="preprocess"):
        m.embed_images(x, "centre")


# --- training ------------------------------------------------------------------------------------

def test_overfit_and_outputs(fixture_root, tmp_path):
    ds = open_dataset("fixture", root=fixture_root, split="train")
    out = tmp_path / "run"
    summary = train_stage1(micro_config(), ds, out, seed=0, max_steps=20, progress=False)
    losses = summary["losses"]
    assert summary["steps"] == 20 and len(losses) == 20
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 21))
    info = json.loads((out / "train_info.json").read_text())
    assert info["seed"] == 0 and info["dataset"]["pairs_sha256"] == ds.pairs_sha256()
    assert info["config"]["stage1"]["vision"] == MICRO_VISION and "train_stage1(" in info["command"]
    assert FusionModel.from_pretrained(out).embed_dim == 32


def test_epoch_order_plain_and_grouped_by_source():
    from fpdm_bench.data.base import PairRecord

    pairs = [PairRecord(f"p{i}", f"s{i // 5}", f"t{i}") for i in range(20)]  # 4 sources x 5 targets
    plain = epoch_order(pairs, torch.Generator().manual_seed(0))
    assert sorted(plain) == list(range(20)) and plain != list(range(20))
    grouped = epoch_order(pairs, torch.Generator().manual_seed(0), pairs_per_source=3)
    assert sorted(grouped) == list(range(20))
    # cut into runs of equal source: no run longer than 3, each source split into a 3 and a 2
    runs, cur = [], [grouped[0]]
    for i in grouped[1:]:
        if pairs[i].source == pairs[cur[-1]].source and len(cur) < 3:
            cur.append(i)
        else:
            runs.append(cur)
            cur = [i]
    runs.append(cur)
    assert sorted(len(r) for r in runs) == [2, 2, 2, 2, 3, 3, 3, 3]
    assert grouped == epoch_order(pairs, torch.Generator().manual_seed(0), pairs_per_source=3)


def test_training_is_deterministic(fixture_root, tmp_path):
    ds = open_dataset("fixture", root=fixture_root, split="train")
    a = train_stage1(micro_config(), ds, tmp_path / "a", seed=5, max_steps=4, progress=False)
    b = train_stage1(micro_config(), ds, tmp_path / "b", seed=5, max_steps=4, progress=False)
    c = train_stage1(micro_config(), ds, tmp_path / "c", seed=6, max_steps=4, progress=False)
    assert a["losses"] == b["losses"] and a["checkpoint_sha256"] == b["checkpoint_sha256"]
    assert a["checkpoint_sha256"] != c["checkpoint_sha256"]


def test_train_cli(fixture_root, tmp_path):
    cfg = tmp_path / "micro.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(micro_config()))
    res = CliRunner().invoke(train_stage1_command, [
        "--config", str(cfg), "--dataset", "fixture", "--data-root", str(fixture_root), "--out", str(tmp_path / "ck"),
        "--max-steps", "2", "--set", "train.lr=0.001", "--quiet"])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "ck" / "train_info.json").read_text())
    assert info["train"]["lr"] == 0.001 and info["summary"]["steps"] == 2

    res = CliRunner().invoke(eval_stage1_command, [
        "--checkpoint", str(tmp_path / "ck"), "--dataset", "fixture", "--data-root", str(fixture_root),
        "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert "| fusion |" in res.output


# --- evaluation ----------------------------------------------------------------------------------

def test_ranks_of_targets_by_hand():
    cand = F.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]), dim=-1)
    q = F.normalize(torch.tensor([[1.0, 0.1], [0.0, 1.0], [0.0, 1.0]]), dim=-1)
    # query 0: target 2 (far) -> candidates 0 and 1 are closer -> rank 3
    # query 1: target 2 (identical) -> rank 1
    # query 2: target 1, but candidate 2 (its own source, excluded) is closer -> rank 1
    ranks, sims = ranks_of_targets(q, cand, torch.tensor([2, 2, 1]), torch.tensor([-1, 0, 2]))
    assert ranks.tolist() == [3, 1, 1]
    assert sims[1] == pytest.approx(1.0)
    ranks, _ = ranks_of_targets(q, cand, torch.tensor([2, 2, 1]))
    assert ranks.tolist() == [3, 1, 2]
    # identical candidates: ties count against the query, a degenerate model ranks last
    same = F.normalize(torch.ones(4, 2), dim=-1)
    ranks, _ = ranks_of_targets(same[:2], same, torch.tensor([0, 3]))
    assert ranks.tolist() == [4, 4]


def test_evaluate_writes_outputs(fixture_root, tmp_path):
    ds = open_dataset("fixture", root=fixture_root, split="test")
    res = evaluate_stage1(micro_model(), ds, tmp_path / "ev", batch_size=4)
    n_cand = len({r.target for r in ds.pairs})
    assert res["n_candidates"] == n_cand and res["n_queries"] == len(ds.pairs)
    for q in ("fusion", "source", "pose"):
        r = res["queries"][q]
        assert 0 <= r["top1"] <= r["top5"] <= 1 and 1 <= r["mean_rank"] <= n_cand
    assert 0 < res["gate_mean"] < 1
    saved = json.loads((tmp_path / "ev" / "stage1_eval.json").read_text())
    assert saved["queries"] == res["queries"]
    assert (tmp_path / "ev" / "stage1_eval.md").read_text().count("|") > 20
    assert (tmp_path / "ev" / "stage1_ranking.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # per query: the rank and similarity `fpdm-bench report --stage1` draws the ranking figure from
    import csv

    ranks = list(csv.DictReader(open(tmp_path / "ev" / "stage1_ranks.csv")))
    assert len(ranks) == 3 * len(ds.pairs)
    for q in ("fusion", "source", "pose"):
        mine = [int(r["rank"]) for r in ranks if r["query"] == q]
        assert sum(k <= 1 for k in mine) / len(mine) == pytest.approx(res["queries"][q]["top1"])


# --- official checkpoint converter -----------------------------------------------------------------

# Our name -> the official LightningModule's name (src/fusion/models.py: FusionModel.img_encoder,
# .pose_encoder (same module), .attention, .combiner with kpt_projection_layer, image_projection_layer,
# combiner_layer, output_layer, dynamic_scalar). Written out independently of convert.py.
OURS_TO_OFFICIAL_COMBINER = {
    "combiner.pose_proj.weight": "combiner.kpt_projection_layer.weight",
    "combiner.pose_proj.bias": "combiner.kpt_projection_layer.bias",
    "combiner.image_proj.weight": "combiner.image_projection_layer.weight",
    "combiner.image_proj.bias": "combiner.image_projection_layer.bias",
    "combiner.combine.weight": "combiner.combiner_layer.weight",
    "combiner.combine.bias": "combiner.combiner_layer.bias",
    "combiner.output.weight": "combiner.output_layer.weight",
    "combiner.output.bias": "combiner.output_layer.bias",
    "combiner.gate.0.weight": "combiner.dynamic_scalar.0.weight",
    "combiner.gate.0.bias": "combiner.dynamic_scalar.0.bias",
    "combiner.gate.3.weight": "combiner.dynamic_scalar.3.weight",
    "combiner.gate.3.bias": "combiner.dynamic_scalar.3.bias",
}


def _official_layout(model: FusionModel) -> dict:
    ours = model.state_dict()
    official = {}
    for k, v in ours.items():
        if k.startswith("tower."):
            rest = k[len("tower."):]
            official["img_encoder." + rest] = v.clone()
            official["pose_encoder." + rest] = v.clone()  # the shared module, saved twice
        else:
            official[OURS_TO_OFFICIAL_COMBINER[k]] = v.clone()
    # the auxiliary patch-attention branch and an old-transformers buffer, both to be dropped
    official["attention.multihead_attn.in_proj_weight"] = torch.randn(3 * 8, 8)
    official["attention.norm.weight"] = torch.ones(8)
    official["img_encoder.vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    return {"epoch": 9, "global_step": 1000, "state_dict": official}


def test_convert_official_round_trip():
    src = micro_model(seed=3)
    ckpt = _official_layout(src)
    converted, dropped = convert_official_stage1(ckpt, return_dropped=True)
    dst = micro_model(seed=4)
    dst.load_state_dict(converted, strict=True)
    x, kp = torch.rand(2, 3, 40, 28), torch.rand(2, 18, 2) * 28
    with torch.no_grad():
        assert torch.equal(src.fuse(x, kp), dst.fuse(x, kp))
    assert any(k.startswith("attention.") for k in dropped)
    assert any(k.startswith("pose_encoder.") for k in dropped)


def test_convert_rejects_inconsistent_or_unknown_keys():
    ckpt = _official_layout(micro_model())
    sd = dict(ckpt["state_dict"])
    key = next(k for k in sd if k.startswith("pose_encoder."))
    sd[key] = sd[key] + 1
    with pytest.raises(BenchError, match="differs"):
        convert_official_stage1(sd)
    sd = dict(ckpt["state_dict"])
    sd["combiner.new_layer.weight"] = torch.zeros(1)
    with pytest.raises(BenchError, match="unexpected key"):
        convert_official_stage1(sd)
