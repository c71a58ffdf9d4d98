"""A third-party package adds a metric, a model and a protocol through entry points alone.

The test writes a tiny "installed" package into a temporary folder: a module plus a
``*.dist-info`` folder with ``METADATA`` and ``entry_points.txt``, exactly what pip leaves in
site-packages. With that folder on the path (``PYTHONPATH``), a fresh ``fpdm-bench`` process finds
the toy metric, model and protocol through ``importlib.metadata``, the same mechanism it uses for its
own; nothing of fpdm-bench is edited. The fixture dataset is registered by the test's conftest.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TOY_MODULE = textwrap.dedent('''
    """A third-party fpdm-bench plugin (test)."""
    import torch

    from fpdm_bench.metrics import PairedMetric
    from fpdm_bench.models import ModelAdapter
    from fpdm_bench.protocols import Protocol


    class MeanSquaredError(PairedMetric):
        """Toy metric: mean squared error per image."""

        name = "toy_mse"
        higher_is_better = False

        def per_sample(self, generated, target, batch):
            return (generated.double() - target.double()).pow(2).flatten(1).mean(1)


    class Darken(ModelAdapter):
        """Toy model: the target image, darkened by a factor (a stand-in with a known error)."""

        name = "toy-darken"

        def __init__(self, device="cpu", dtype=torch.float32, factor=0.5):
            super().__init__(device, dtype)
            self.factor = factor

        def generate(self, batch, generators):
            return batch["target"] * self.factor


    TOY = Protocol(name="toy", description="toy protocol: SSIM + the toy metric", source="test",
                   metrics={"ssim": {}, "toy_mse": {}})
''')

ENTRY_POINTS = textwrap.dedent('''
    [fpdm_bench.metrics]
    toy_mse = toy_fpdm_plugin:MeanSquaredError

    [fpdm_bench.models]
    toy-darken = toy_fpdm_plugin:Darken

    [fpdm_bench.protocols]
    toy = toy_fpdm_plugin:TOY
''')

CLI = textwrap.dedent('''
    import sys
    sys.path.insert(0, {tests!r})
    import conftest  # registers the "fixture" dataset
    from fpdm_bench.cli import entry
    sys.argv = ["fpdm-bench"] + sys.argv[1:]
    entry()
''')


@pytest.fixture
def plugin(tmp_path):
    site = tmp_path / "site"
    (site / "toy_fpdm_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "toy_fpdm_plugin.py").write_text(TOY_MODULE)
    (site / "toy_fpdm_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: toy-fpdm-plugin\nVersion: 0.1\n")
    (site / "toy_fpdm_plugin-0.1.dist-info" / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


def cli(plugin, *args, ok=True):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    script = CLI.format(tests=str(Path(__file__).parent))
    res = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, text=True,
                         timeout=300)
    if ok:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.mark.slow  # eight fresh fpdm-bench processes (~2 s of imports each)
def test_toy_metric_model_and_protocol_work_in_run_score_report_compare(plugin, fixture_root, tmp_path):
    assert "toy-darken" in cli(plugin, "models").stdout
    assert "toy_mse" in cli(plugin, "protocols").stdout

    run = tmp_path / "run"
    cli(plugin, "run", "--model", "toy-darken", "--dataset", "fixture", "--data-root", fixture_root, "--out", run,
        "--protocol", "toy", "--no-progress")
    res = json.loads((run / "results.json").read_text())
    mse = res["metrics"]["toy_mse"]
    assert mse["metric"] == "toy_mse" and mse["n"] == 12 and mse["value"] > 0
    # the toy metric's value, computed here from the images independently
    import numpy as np
    from PIL import Image

    want = []
    for line in (run / "samples.jsonl").read_text().splitlines():
        pid = json.loads(line)["pair_id"]
        gen = np.asarray(Image.open(run / "samples" / f"{pid}.png"), np.float64) / 255
        tgt_name = pid.split("_2_")[1] + ".png"
        tgt = np.asarray(Image.open(fixture_root / "img" / tgt_name), np.float64) / 255
        want.append(((gen - tgt) ** 2).mean())
    # the harness holds images as float32 x/255, numpy here as float64: 1e-6 covers that rounding
    assert mse["value"] == pytest.approx(np.mean(want), rel=1e-6)

    scored = cli(plugin, "score", "--dataset", "fixture", "--data-root", fixture_root, "--generated",
                 run / "samples", "--protocol", "toy", "--out", tmp_path / "score.json")
    assert "toy_mse ↓" in scored.stdout
    assert json.loads((tmp_path / "score.json").read_text())["metrics"]["toy_mse"]["value"] == mse["value"]

    table = cli(plugin, "report", run, "--format", "markdown").stdout
    assert "toy_mse ↓" in table and "toy-darken" in table

    # compare reads the toy metric's direction from the registry: darker images = larger error = WORSE
    darker = tmp_path / "darker"
    cli(plugin, "run", "--model", "toy-darken", "--dataset", "fixture", "--data-root", fixture_root, "--out", darker,
        "--protocol", "toy", "--no-progress", "--model-arg", "factor=0.2")
    assert cli(plugin, "compare", run, run).returncode == 0
    worse = cli(plugin, "compare", run, darker, ok=False)
    assert worse.returncode == 1
    assert "toy_mse" in worse.stderr and "WORSE" in worse.stdout
    assert cli(plugin, "compare", darker, run).returncode == 0  # the other way round it is better


def test_without_the_plugin_the_names_are_unknown(fixture_root, tmp_path):
    from fpdm_bench.metrics import METRICS
    from fpdm_bench.models import MODELS

    assert "toy_mse" not in METRICS and "toy-darken" not in MODELS


# --- a set metric with its own network and weight file, a floor and a perturbation ----------------

SET_MODULE = textwrap.dedent('''
    """A third-party plugin adding a set metric (own feature network + weight file), a floor and a
    perturbation, each declaring its own facts."""
    import torch

    from fpdm_bench import weights
    from fpdm_bench.metrics.fid import FID
    from fpdm_bench.models import ModelAdapter
    from fpdm_bench.perturb.source import SourcePerturbation
    from fpdm_bench.protocols import Protocol

    TOY_NET = weights.WeightSpec("toy-net", "toy_net.pt", "Toy-FD (toy network)", "toy_fd's feature network")


    class ToyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 4, stride=4)

        @torch.no_grad()
        def forward(self, x):
            return torch.tanh(self.conv(x * 2 - 1)).mean((2, 3))


    class ToyFD(FID):
        """Toy set metric: a Frechet distance on a 6-d toy network's features."""

        name = "toy_fd"
        weights = (TOY_NET,)
        title, latex_title = "Toy-FD", "Toy-FD"
        order = 15

        def __init__(self, key=None, replicates=10, drop_remainder=0, seed=0):
            super().__init__(key, backbone="toy-net", replicates=replicates, drop_remainder=drop_remainder, seed=seed)

        def build_network(self, path, device):
            net = ToyNet()
            net.load_state_dict(torch.load(weights.find(TOY_NET, path), map_location="cpu", weights_only=True))
            return net.to(device).eval()


    class Gray(ModelAdapter):
        """Toy floor: a mid-gray image."""

        name = "toy-gray"
        floor, order, colour = True, 9, "#123456"

        def generate(self, batch, generators):
            return torch.full_like(batch["source"], 0.5)


    class Blend(ModelAdapter):
        """Toy model (not a floor): half source, half target."""

        name = "toy-blend"
        needs_target = True

        def generate(self, batch, generators):
            return (batch["source"] + batch["target"]) / 2


    class Invert(SourcePerturbation):
        """Toy perturbation: blends the source with its negative."""

        name = "source.toy-invert"
        unit = "blend"
        levels = (0.05, 0.1, 0.15, 0.2, 0.3)

        def change(self, image, kp, value, rng, keypoint_format):
            return image * (1 - value) + (1 - image) * value


    INVERT = Invert()
    TOYSET = Protocol(name="toyset", description="toy protocol: SSIM + the toy set metric", source="test",
                      metrics={"ssim": {}, "toy_fd": {}})
''')

SET_ENTRY_POINTS = textwrap.dedent('''
    [fpdm_bench.metrics]
    toy_fd = toy_set_plugin:ToyFD

    [fpdm_bench.models]
    toy-gray = toy_set_plugin:Gray
    toy-blend = toy_set_plugin:Blend

    [fpdm_bench.perturbations]
    source.toy-invert = toy_set_plugin:INVERT

    [fpdm_bench.protocols]
    toyset = toy_set_plugin:TOYSET
''')


@pytest.fixture
def set_plugin(tmp_path):
    import torch

    site = tmp_path / "site2"
    info = site / "toy_set_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "toy_set_plugin.py").write_text(SET_MODULE)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-set-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(SET_ENTRY_POINTS)
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 6, 4, stride=4)
    torch.save({"conv." + k: v for k, v in conv.state_dict().items()}, weights_dir / "toy_net.pt")
    return site, weights_dir


@pytest.mark.slow  # eleven fresh fpdm-bench processes
def test_set_metric_floor_and_perturbation_from_a_package(set_plugin, fixture_root, tmp_path, monkeypatch):
    site, weights_dir = set_plugin
    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(weights_dir))

    # the weight file is listed and found; the floor and the perturbation are listed
    listed = cli(site, "weights").stdout
    assert "toy_net.pt" in listed and str(weights_dir) in listed
    assert cli(site, "models", "--floors").stdout.split() == ["copy-source", "oracle", "keypoint-warp", "toy-gray"]
    assert "source.toy-invert" in cli(site, "perturbations").stdout

    runs = {}
    for model, extra in (("toy-gray", []), ("toy-blend", []), ("copy-source", []),
                         ("copy-source", ["--perturb", "source.toy-invert:5"])):
        out = tmp_path / (model + ("-inv" if extra else ""))
        cli(site, "run", "--model", model, "--dataset", "fixture", "--data-root", fixture_root, "--out", out,
            "--protocol", "toyset", "--no-progress", *extra)
        runs[out.name] = out
    res = json.loads((runs["copy-source"] / "results.json").read_text())
    fd = res["metrics"]["toy_fd"]
    assert fd["metric"] == "toy_fd" and fd["n"] == 12 and fd["value"] >= 0 and fd["ci95"]
    assert res["protocol"]["metrics_used"]["toy_fd"]["backbone"] == "toy-net"
    gray = json.loads((runs["toy-gray"] / "results.json").read_text())["metrics"]["toy_fd"]["value"]
    assert gray > fd["value"]  # a gray image is far from real images' features

    # tables: the metric's direction and display order (its order 15 puts it before SSIM's 50) ...
    table = cli(site, "report", runs["copy-source"], runs["toy-gray"], "--format", "markdown").stdout
    head = next(line for line in table.splitlines() if line.startswith("| model"))
    assert head.index("toy_fd ↓") < head.index("ssim ↑")
    # ... and in a report folder its title, with the new floor below the rule, under the model
    folder = tmp_path / "report"
    cli(site, "report", runs["toy-gray"], runs["toy-blend"], runs["copy-source-inv"], "--out", folder)
    md = sorted((folder / "tables").glob("table1-*.md"))[0].read_text()
    assert "Toy-FD ↓" in md and md.index("| toy-blend") < md.index("| *floors*") < md.index("| toy-gray")

    # compare resamples the set metric from the stored features (FID's joint bootstrap, as it declares)
    blend, gray = runs["toy-blend"], runs["toy-gray"]
    assert cli(site, "compare", blend, blend).returncode == 0
    worse = cli(site, "compare", blend, gray, "--format", "json", ok=False)
    assert worse.returncode == 1, worse.stdout + worse.stderr
    rows = {r["metric"]: r for r in json.loads(worse.stdout)["rows"]}
    assert rows["toy_fd"]["verdict"] == "WORSE", rows["toy_fd"]
    assert rows["toy_fd"]["method"] != rows["ssim"]["method"] and "bootstrap" in rows["toy_fd"]["method"]

    # the sweep runs the perturbation and reports the set metric
    sweep = tmp_path / "sweep"
    cli(site, "sweep", "--model", "copy-source", "--dataset", "fixture", "--data-root", fixture_root,
        "--perturb", "source.toy-invert", "--severities", "0,5", "--protocol", "toyset", "--out", sweep,
        "--no-progress")
    import csv

    cells = list(csv.DictReader((sweep / "sweep.csv").open()))
    fds = {row["severity"]: float(row["value"]) for row in cells if row["metric"] == "toy_fd"}
    assert set(fds) == {"0", "5"} and fds["5"] > fds["0"]
