"""--model-arg init=random: one mechanism for every model, and a random-weight run never scores.

The published-size builds themselves (FPDM paper config, PIDM, CFLD, PoCoLD) are checked for their
parameter counts here on the meta device (no memory, seconds); running them end to end at their
published sizes is ``tests/test_published_random.py`` / ``make test-published``.
"""
import json

import pytest
import torch
from click.testing import CliRunner

from fpdm_bench.errors import BenchError
from fpdm_bench.models import MODELS, ModelAdapter, load_model, random_buildable
from fpdm_bench.runner import RunConfig, run
from helpers import NoisyCopy


class RandomNoisy(NoisyCopy):
    """NoisyCopy with a 'random-weight build' (its info says so), to test the plumbing cheaply."""

    name = "random-noisy"

    def __init__(self, *a, seed=None, **kw):
        super().__init__(*a, **kw)
        self.seed = seed

    @classmethod
    def from_random(cls, device="cpu", dtype=torch.float32, seed=0):
        return cls(device=device, dtype=dtype, seed=seed)

    def info(self):
        return {**super().info(), **({"init": "random", "init_seed": self.seed} if self.seed is not None else {})}


if "random-noisy" not in MODELS:
    MODELS.register("random-noisy", RandomNoisy, "test model with a random-weight build")


def _cfg(root, out, **kw):
    base = dict(model="random-noisy", dataset="fixture", data_root=str(root), out=str(out), progress=False,
                protocol="standard", model_args={"init": "random"})
    base.update(kw)
    return RunConfig(**base)


def test_the_one_spelling_reaches_from_random():
    m = load_model("random-noisy", init="random", init_seed=3)
    assert m.info()["init"] == "random" and m.info()["init_seed"] == 3
    assert "init" not in load_model("random-noisy").info()
    assert "random-noisy" in random_buildable() and "copy-source" not in random_buildable()
    for name in ("fpdm", "pidm", "cfld", "pocold"):
        assert name in random_buildable(), name


@pytest.mark.parametrize("kwargs, message", [
    ({"init": "randm"}, "expected one of pretrained, random"),
    ({"init_seed": 2}, "only applies with init=random"),
    ({"init": "random", "init_seed": "x"}, "expected an integer"),
    ({"init": "random", "stepz": 2}, "takes no argument 'stepz'"),
])
def test_bad_init_arguments_are_one_line(kwargs, message):
    with pytest.raises(BenchError, match=message):
        load_model("random-noisy", **kwargs)


def test_models_without_a_published_configuration_refuse():
    with pytest.raises(BenchError, match="has no random-weight build"):
        load_model("copy-source", init="random")
    with pytest.raises(BenchError, match="give no --checkpoint"):
        load_model("random-noisy", "some/folder", init="random")


def test_a_random_run_scores_nothing_and_is_marked(fixture_root, tmp_path):
    res = run(_cfg(fixture_root, tmp_path / "r"), log=lambda m: None)
    assert res["metrics"] == {}  # the standard protocol would score FID, SSIM, LPIPS...: none is
    assert res["random_weights"] is True and "no metric is scored" in res["note"]
    assert res["model"]["init"] == "random"
    assert res["protocol"]["not_scored"] and res["protocol"]["metrics_used"] == {}
    assert res["n"] == 12 and len(list((tmp_path / "r" / "samples").glob("*.png"))) == 12


def test_the_run_command_prints_no_metric_table_for_random_weights(fixture_root, tmp_path):
    from fpdm_bench.cli import main

    out = tmp_path / "cli"
    r = CliRunner().invoke(main, ["run", "--model", "random-noisy", "--dataset", "fixture", "--data-root",
                                  str(fixture_root), "--out", str(out), "--model-arg", "init=random",
                                  "--protocol", "paired", "--no-progress"])
    assert r.exit_code == 0, r.output
    header = r.stdout.splitlines()[0]
    assert header.split() == ["model", "dataset", "protocol", "n"]  # no metric column
    assert "random-noisy [random weights]" in r.stdout and "no metric is scored" in r.stdout
    for metric in ("ssim", "psnr", "mae", "lpips"):
        assert metric not in r.stdout


def test_compare_refuses_a_random_run_either_way(fixture_root, tmp_path):
    from fpdm_bench.commands.compare import compare_results

    rand = run(_cfg(fixture_root, tmp_path / "r", protocol="paired"), log=lambda m: None)
    real = run(_cfg(fixture_root, tmp_path / "t", protocol="paired", model_args={}), log=lambda m: None)
    assert "random_weights" not in real and real["metrics"]
    for a, b in ((tmp_path / "r", tmp_path / "t"), (tmp_path / "t", tmp_path / "r")):
        with pytest.raises(BenchError, match="is a random-weight run"):  # the CLI's exit 2, a refusal
            compare_results(a, b)
    assert rand["random_weights"]


def test_reports_label_random_runs(fixture_root, tmp_path):
    from fpdm_bench.report import format_table
    from fpdm_bench.results import Results

    rand = Results.load(run(_cfg(fixture_root, tmp_path / "r", protocol="paired"), log=lambda m: None)
                        and tmp_path / "r")
    real = run(_cfg(fixture_root, tmp_path / "t", protocol="paired", model_args={}), log=lambda m: None)
    text = format_table([rand, real])
    rows = text.splitlines()
    random_row = next(line for line in rows if line.startswith("random-noisy [random weights]"))
    assert set(random_row.split()[6:]) == {"-"}  # every metric cell of the random run is empty
    assert rand.label == "random-noisy [random weights]" and Results.of(real).label == "random-noisy"


def _meta_parameters(adapter_cls) -> int:
    with torch.device("meta"):
        m = adapter_cls.from_random(device="meta")
    return m.info()["parameters"]


def test_fpdm_paper_build_has_the_published_tower_sizes():
    """Published sizes: SD 2.1 UNet 865,910,724 and VAE 83,653,863 parameters, CLIP ViT-L/14 vision
    tower with projection 303,966,208, DINOv2-large 304,368,640 (the model cards' counts; DINOv2's
    keys and shapes also equal the manifest made with transformers 4.40.1, the official pin)."""
    from pathlib import Path

    from fpdm_bench_reference.pipeline import FPDMPipeline

    with torch.device("meta"):
        pipe = FPDMPipeline.from_random(device="meta")
    parts = pipe.parameters()
    assert parts["stage2.unet"] == 865_910_724
    assert parts["stage2.vae"] == 83_653_863
    assert parts["stage2.source_encoder"] == 304_368_640
    assert sum(p.numel() for p in pipe.stage1.tower.parameters()) == 303_966_208
    assert pipe.resolution == (512, 352) and pipe.stage2.latent_shape == (4, 64, 44)
    manifest = json.loads((Path(__file__).parent / "fixtures" / "fpdm_keys"
                           / "dinov2_keys_transformers-4.40.1.json").read_text())
    want = {k: list(s) for k, s in manifest["keys"]["large"]}
    got = {k: list(v.shape) for k, v in pipe.stage2.source_encoder.state_dict().items()}
    assert sorted(got.values()) == sorted(want.values()) and len(got) == len(want)


def test_random_builds_are_seeded():
    """Same seed, same weights in any process state; another seed, other weights (a small part of the
    paper build: the stage-1 combiner, built under the same seeded() as every tower)."""
    from fpdm_bench.models.random_init import seeded

    def build(seed):
        torch.manual_seed(1234 + seed)  # the caller's RNG state must not matter
        with seeded(seed):
            return torch.nn.Linear(8, 8).weight.detach().clone()

    assert torch.equal(build(0), build(0)) and not torch.equal(build(0), build(1))
    state = torch.random.get_rng_state()
    with seeded(5):
        torch.nn.Linear(8, 8)
    assert torch.equal(state, torch.random.get_rng_state())  # and leaves it untouched


def test_base_adapter_has_no_random_build():
    with pytest.raises(NotImplementedError):
        ModelAdapter.from_random()
