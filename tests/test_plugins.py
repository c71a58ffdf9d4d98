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
