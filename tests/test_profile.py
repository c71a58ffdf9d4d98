"""`fpdm-bench profile`: the report's fields, stage hooks (timed, consistent, removed), NFE, errors."""
import json
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from conftest import make_fixture
from fpdm_bench.cli import entry, main
from fpdm_bench.data import open_dataset
from fpdm_bench.data.base import collate
from fpdm_bench.errors import BenchError
from fpdm_bench.models import load_model
from fpdm_bench.profile import ProfileConfig, StageTimer, parse_int_list, profile, profile_batch, summarize
from fpdm_bench.seeding import make_generators

ROW_FIELDS = {"batch_size", "steps", "sampler_steps", "nfe", "seconds_per_batch", "seconds_per_image",
              "images_per_second", "memory", "stages", "stages_seconds", "other_seconds", "denoiser_stage",
              "denoising_step_seconds", "vae_decode_seconds", "metric_pass", "load_seconds"}
SPREAD = {"median", "mean", "min", "max", "iqr", "sd", "n", "values"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(make_fixture(tmp_path_factory.mktemp("profile") / "fixture"))


@pytest.fixture(scope="module")
def kw_report(data_root, tmp_path_factory):
    """keypoint-warp through the CLI, batch sizes 1 and 2, with the standard protocol's metric pass."""
    out = tmp_path_factory.mktemp("kw") / "profile.json"
    res = CliRunner().invoke(main, ["profile", "--model", "keypoint-warp", "--dataset", "fixture", "--data-root",
                                    data_root, "--batch-sizes", "1,2", "--steps", "5", "--repeats", "2",
                                    "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text()), res.stdout


@pytest.fixture(scope="module")
def fpdm_report(data_root):
    cfg = ProfileConfig(model="fpdm", dataset="fixture", data_root=data_root, batch_sizes=[1, 2], steps=[2],
                        repeats=2, warmup=1, device="cpu", protocol="paired")
    return profile(cfg, log=lambda m: None)


def test_report_has_every_field(kw_report):
    report, table = kw_report
    for key in ("format", "config", "environment", "git_commit", "model_info", "loads", "dataset", "timing",
                "memory_method", "metric_pass", "notes", "rows"):
        assert key in report, key
    assert report["config"]["model"] == "keypoint-warp" and report["environment"]["packages"]["torch"]
    assert len(report["rows"]) == 2 and [r["batch_size"] for r in report["rows"]] == [1, 2]
    for row in report["rows"]:
        assert ROW_FIELDS <= set(row)
        for key in ("seconds_per_batch", "seconds_per_image", "images_per_second"):
            assert SPREAD <= set(row[key]) and row[key]["n"] == 2 and row[key]["median"] > 0
        assert row["steps"] is None  # keypoint-warp takes no steps: --steps is ignored, one profile
        assert row["nfe"] == 0 and row["stages"] == {} and row["denoising_step_seconds"] is None
        assert row["memory"]["kind"] == "rss_sampled" and row["memory"]["peak_bytes"] >= row["memory"]["baseline_bytes"]
        assert row["memory"]["process_maxrss_bytes"] > 0
        mp = row["metric_pass"]
        assert {"quantize", "paired", "features", "set_update", "total", "seconds_per_image"} <= set(mp)
        assert mp["features"]["median"] > 0  # the FID Inception ran on the batch
    assert any("takes no steps" in n for n in report["notes"])
    mp = report["metric_pass"]
    assert mp["protocol"] == "standard" and "ssim" in mp["paired"] and "fid" in mp["set"]
    assert set(mp["unavailable"]) | set(mp["paired"]) | set(mp["set"]) >= {"ssim", "psnr", "mae", "fid", "kid", "lpips"}
    lines = table.splitlines()
    assert "ms/img" in lines[1] and "img/s" in lines[1] and "NFE" in lines[1]
    assert lines[3].split()[:2] == ["1", "-"] and lines[4].split()[:2] == ["2", "-"]


def test_fpdm_stages_nfe_and_sum(fpdm_report):
    info = load_model("fpdm", steps=2, dataset="fixture").info()
    per_step = 3 if info["guidance"] != 1 else 1  # the guidance branches run batched: one UNet call per step
    assert [r["batch_size"] for r in fpdm_report["rows"]] == [1, 2]
    for row in fpdm_report["rows"]:
        assert row["steps"] == 2 and row["nfe"] == info["nfe"] == 2 * per_step
        assert row["sampler_steps"] == 2
        stages = row["stages"]
        assert {"source_encoder", "fusion", "pose_encoder", "denoiser", "vae_decode"} <= set(stages)
        assert stages["denoiser"]["calls_per_batch"] == info["nfe"] // per_step == 2
        assert stages["vae_decode"]["calls_per_batch"] == 1 and stages["source_encoder"]["calls_per_batch"] == 1
        totals = row["seconds_per_batch"]["values"]
        for i, total in enumerate(totals):
            parts = [s["seconds_per_batch"]["values"][i] for s in stages.values()]
            assert all(p >= 0 for p in parts)
            assert sum(parts) <= total + 1e-6
            assert row["other_seconds"]["values"][i] >= -1e-6
        assert row["denoising_step_seconds"] == pytest.approx(stages["denoiser"]["seconds_per_batch"]["median"] / 2)
        assert row["vae_decode_seconds"] >= 0 and row["metric_pass"]["paired"]["median"] > 0


def test_hooks_removed_and_outputs_unchanged(data_root):
    model = load_model("fpdm", steps=2, dataset="fixture")
    ds = open_dataset("fixture", data_root)
    batch = collate([ds[i] for i in range(2)])
    before = model.generate(batch, make_generators(0, batch["pair_id"]))
    modules = [s for s in model.stages().values() if isinstance(s, torch.nn.Module)]
    hooks = [(dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in modules]
    profile_batch(model, batch, ProfileConfig(model="fpdm", repeats=2, warmup=0, protocol=None))
    assert [(dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in modules] == hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in modules)
    for obj, method in (s for s in model.stages().values() if isinstance(s, tuple)):
        assert method not in vars(obj)  # the temporary wrappers are gone: the class methods again
    after = model.generate(batch, make_generators(0, batch["pair_id"]))
    assert torch.equal(before, after)


def test_stage_timer_nesting_methods_and_functions():
    inner = torch.nn.Linear(2, 2)

    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) + helpers.work(x)

    helpers = types.SimpleNamespace(work=lambda x: x * 2)
    module = types.ModuleType("fake_mod")
    module.render = lambda x: x + 1
    outer = Outer()
    timer = StageTimer({"outer": outer, "inner": inner, "work": (helpers, "work"), "render": (module, "render")})
    with timer:
        timer.reset()
        outer(module.render(torch.zeros(1, 2)))
        snap = timer.snapshot()
    assert {n: s["calls"] for n, s in snap.items()} == {"outer": 1, "inner": 1, "work": 1, "render": 1}
    assert snap["inner"]["nested_calls"] == 1 and snap["work"]["nested_calls"] == 1 and snap["outer"]["nested_calls"] == 0
    # nested time counts once: the covered time is the outer stage's plus the render call's
    assert timer.covered == pytest.approx(snap["outer"]["seconds"] + snap["render"]["seconds"])
    assert not outer._forward_hooks and not inner._forward_pre_hooks
    assert "work" in vars(helpers) and not hasattr(helpers.work, "__wrapped__")  # own attribute restored
    assert module.render(1) == 2 and not hasattr(module.render, "__wrapped__")
    with pytest.raises(BenchError, match="expected an nn.Module"):
        StageTimer({"bad": (helpers, "missing")})


def test_parse_and_summarize():
    assert parse_int_list("1, 4,16,4", "--batch-sizes") == [1, 4, 16]
    for bad in ("", "1,x", "0", "-2", "1.5"):
        with pytest.raises(BenchError, match="--batch-sizes"):
            parse_int_list(bad, "--batch-sizes")
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s["median"] == 2.5 and s["min"] == 1 and s["max"] == 4 and s["iqr"] == pytest.approx(1.5) and s["n"] == 4
    assert summarize([2.0])["sd"] == 0.0


@pytest.mark.parametrize("args, message", [
    (["--batch-sizes", "1,x"], "error: --batch-sizes: expected comma-separated positive integers"),
    (["--steps", "10,0"], "error: --steps: expected comma-separated positive integers"),
])
def test_bad_lists_are_one_line_errors(monkeypatch, capsys, args, message):
    monkeypatch.setattr(sys, "argv", ["fpdm-bench", "profile", "--model", "keypoint-warp", *args])
    with pytest.raises(SystemExit) as e:
        entry()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and len(err.splitlines()) == 1


def test_unknown_model_did_you_mean(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["fpdm-bench", "profile", "--model", "fpdmm"])
    with pytest.raises(SystemExit) as e:
        entry()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "unknown model 'fpdmm'" in err and "Did you mean 'fpdm'" in err


def test_help_explains_the_measurement():
    res = CliRunner().invoke(main, ["profile", "--help"])
    assert res.exit_code == 0
    for words in ("warm", "--repeats", "max_memory_allocated", "RSS", "maxrss", "median"):
        assert words in res.output, words


@pytest.mark.parametrize("name, calls_per_step", [("pidm", 2), ("cfld", 1), ("pocold", 2)])
def test_baseline_stages(data_root, name, calls_per_step):
    """Every baseline's stages resolve and are timed: the denoiser runs calls_per_step times per
    sampler iteration (pidm: its two guidance branches as two calls on the CPU, batched on a GPU; cfld:
    branches batched; pocold: null+cat, then full)."""
    model = load_model(name, steps=2, dataset="fixture")
    ds = open_dataset("fixture", data_root)
    batch = collate([ds[0]])
    row = profile_batch(model, batch, ProfileConfig(model=name, repeats=1, warmup=0, protocol=None))
    stages = row["stages"]
    assert stages["denoiser"]["calls_per_batch"] == calls_per_step * model.sampler_steps()
    assert sum(s["seconds_per_batch"]["median"] for s in stages.values()) <= row["seconds_per_batch"]["median"] + 1e-6
    assert not any(s.get("nested_calls") for s in stages.values())
    if name != "pidm":
        assert stages["vae_decode"]["calls_per_batch"] == 1
    for stage in model.stages().values():
        if isinstance(stage, torch.nn.Module):
            assert not stage._forward_hooks and not stage._forward_pre_hooks
        else:
            assert not hasattr(getattr(*stage), "__wrapped__")
