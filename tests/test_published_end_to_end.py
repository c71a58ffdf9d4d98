"""The published configurations at their published sizes, end to end on the CPU, random weights:
``fpdm-bench run`` (1 pair, 2 sampler steps) and ``fpdm-bench profile --steps 2 --batch-sizes 1``
through the real loaders at each paper's protocol size.

Marked ``published``: each model takes 1-5 minutes and 3-8 GB on 2 CPU cores (FPDM: 1.6 B
parameters), so ``make test`` leaves them out and ``make test-published`` runs them (~15 min).
"""
import json

import pytest
from click.testing import CliRunner

from fpdm_bench.cli import main

pytestmark = pytest.mark.published

#: model -> (its paper's protocol, the resolution it generates at)
PUBLISHED = {"fpdm": ("fpdm", [512, 352]), "pidm": ("pidm", [256, 256]), "cfld": ("cfld", [512, 512]),
             "pocold": ("pocold", [512, 384])}


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    from fpdm_bench.data.synth import synthesize_deepfashion

    root = tmp_path_factory.mktemp("people")
    synthesize_deepfashion(root, seed=0, train_identities=1, test_identities=2, poses=2, train_poses=1)
    return root


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_run_and_profile_at_the_published_size(model, people, tmp_path):
    protocol, resolution = PUBLISHED[model]
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["run", "--model", model, "--model-arg", "init=random", "--steps", "2",
                                  "--limit", "1", "--batch-size", "1", "--dataset", "synthetic", "--data-root",
                                  str(people), "--protocol", protocol, "--workers", "0", "--no-progress",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["random_weights"] and res["metrics"] == {} and res["n"] == 1
    assert res["model"]["init"] == "random" and res["model"]["resolution"] == resolution
    assert res["model"]["steps"] == 2
    assert f"{model} [random weights]" in r.stdout
    assert len(list((out / "samples").glob("*.png"))) == 1

    prof = tmp_path / "profile.json"
    r = CliRunner().invoke(main, ["profile", "--model", model, "--model-arg", "init=random", "--steps", "2",
                                  "--batch-sizes", "1", "--repeats", "1", "--warmup", "0", "--dataset", "synthetic",
                                  "--data-root", str(people), "--protocol", protocol, "--no-metrics",
                                  "--device", "cpu", "--out", str(prof)])
    assert r.exit_code == 0, r.output
    rep = json.loads(prof.read_text())
    row = rep["rows"][0]
    assert rep["random_weights"] and row["denoising_step_seconds"] > 0
    assert row["memory"]["process_maxrss_bytes"] > 0 and rep["model_info"]["parameters"] > 1e8
