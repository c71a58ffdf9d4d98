"""`fpdm-bench sweep`: cells are normal runs, the table is long-format and the same on rerun."""
import csv
import json

import pytest
from click.testing import CliRunner

from fpdm_bench.cli import main


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """A small embedded-default set (synthetic people in the DeepFashion layout, 256x176)."""
    from fpdm_bench.data.synth import synthesize_deepfashion

    root = tmp_path_factory.mktemp("people")
    synthesize_deepfashion(root, seed=0, train_identities=1, test_identities=3, poses=3, train_poses=1)
    return root


def _sweep(root, out, models="keypoint-warp,fpdm"):
    res = CliRunner().invoke(main, ["sweep", "--model", models, "--dataset", "synthetic", "--data-root", str(root),
                                    "--perturb", "pose.jitter,source.occlusion", "--severities", "0,2,4",
                                    "--out", str(out), "--limit", "8", "--protocol", "paired", "--no-progress",
                                    "--workers", "0"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


@pytest.mark.slow
def test_sweep_two_perturbations_three_severities(people, tmp_path):
    out = tmp_path / "sweep"
    _sweep(people, out)
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    cells = {(r["model"], r["perturbation"], r["severity"]) for r in rows}
    assert len(cells) == 2 * 2 * 3
    # severity 0 is one clean run per model, shared by both perturbations
    assert {r["run"] for r in rows if r["severity"] == "0"} == {"keypoint-warp/clean", "fpdm/clean"}
    ssim = {int(r["severity"]): float(r["value"]) for r in rows
            if r["model"] == "keypoint-warp" and r["perturbation"] == "pose.jitter" and r["metric"] == "ssim"}
    assert ssim[0] > ssim[2] > ssim[4]  # sanity: a warp along a jittered pose lands further off
    res = json.loads((out / "keypoint-warp/pose.jitter/severity-4/results.json").read_text())
    assert res["perturbation"]["name"] == "pose.jitter" and res["perturbation"]["value"] == 8
    assert json.loads((out / "keypoint-warp/pose.jitter/severity-4/config.json").read_text())["identity"]["perturb"] \
        == "pose.jitter:4"
    table = (out / "sweep.csv").read_bytes()
    again = _sweep(people, out)
    assert (out / "sweep.csv").read_bytes() == table
    assert again.output.count("finished already") == 10  # every cell read, none run again


def test_sweep_cells_refuse_mixing(people, tmp_path):
    """A run directory made under one perturbation is not resumed under another, and compare
    refuses results of different perturbations."""
    from fpdm_bench.runner import RunConfig, run

    base = dict(model="copy-source", dataset="synthetic", data_root=str(people), limit=4, protocol="paired",
                progress=False, workers=0)
    a = run(RunConfig(out=str(tmp_path / "a"), perturb="source.blur:2", **base), log=lambda m: None)
    with pytest.raises(Exception, match="perturb: 'source.blur:2' there vs 'source.blur:3' now"):
        run(RunConfig(out=str(tmp_path / "a"), perturb="source.blur:3", **base), log=lambda m: None)
    clean = run(RunConfig(out=str(tmp_path / "c"), perturb="source.blur:0", **base), log=lambda m: None)
    assert clean["perturbation"] is None  # severity 0 is the clean run
    res = CliRunner().invoke(main, ["compare", str(tmp_path / "c"), str(tmp_path / "a")])
    assert res.exit_code != 0 and "differently perturbed inputs (clean vs source.blur:2)" in str(res.exception)
    assert a["metrics"]["ssim"]["value"] != clean["metrics"]["ssim"]["value"]


def test_bad_sweep_arguments_are_one_line_errors(people, tmp_path):
    for args, msg in ((["--perturb", "pose.jiter"], "Did you mean 'pose.jitter'"),
                      (["--perturb", "pose.jitter", "--severities", "0,9"], "severity must be an integer 0..5")):
        res = CliRunner().invoke(main, ["sweep", "--model", "copy-source", "--dataset", "synthetic", "--data-root",
                                        str(people), "--out", str(tmp_path / "x"), *args])
        assert res.exit_code != 0 and msg in str(res.exception)


def test_released_images_cannot_be_perturbed(people, tmp_path):
    from fpdm_bench.errors import BenchError
    from fpdm_bench.runner import RunConfig, run

    with pytest.raises(BenchError, match="does not read its inputs"):
        run(RunConfig(model="images", dataset="synthetic", data_root=str(people), out=str(tmp_path / "i"),
                      checkpoint=str(tmp_path), perturb="pose.jitter:2", progress=False), log=lambda m: None)
    assert not (tmp_path / "i").exists()
