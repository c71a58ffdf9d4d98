"""Reproduction tolerances from training noise (issue 29, item 4): the rule, the tool that writes a
shipped checkpoint's reproduce-tolerance.yaml, the shipped files against the metrics they guard, and
the make targets that pass them to `compare --no-ci`."""
import importlib.util
import json
import math
import shutil
import statistics
import subprocess
from pathlib import Path

import fpdm_bench  # noqa: F401  (torchvision shim first)
import pytest
import yaml

from fpdm_bench.errors import BenchError
from fpdm_bench.results import Results
from fpdm_bench.stats import verdict as V
from fpdm_bench.stats.training_noise import tolerances

ROOT = Path(__file__).resolve().parents[1]
#: every shipped tiny checkpoint and the make target that retrains it
SHIPPED = {"reference_impl/checkpoints/tiny": "train-tiny", "reference_impl/checkpoints/tiny-phoenix": "train-tiny",
           "baselines/pidm/checkpoints/tiny": "train-tiny-pidm", "baselines/cfld/checkpoints/tiny": "train-tiny-cfld",
           "baselines/pocold/checkpoints/tiny": "train-tiny-pocold"}


def _tool():
    spec = importlib.util.spec_from_file_location("training_noise_tool", ROOT / "tools" / "training_noise.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: Student's t quantiles from a printed table (one-sided 0.99): df 2 -> 6.965, df 3 -> 4.541
T99 = {2: 6.965, 3: 4.541}


def _expected(shipped, values, higher_is_better=True):
    n, mean, sd = len(values), statistics.fmean(values), statistics.stdev(values)
    half = T99[n - 1] * sd * math.sqrt(1 + 1 / n)
    return shipped - (mean - half) if higher_is_better else (mean + half) - shipped


def test_tolerance_is_the_distance_to_a_99_percent_prediction_bound_or_the_default_floor():
    out = tolerances({"ssim": 3.0, "mae": 0.5, "fid": 10.0},
                     [{"ssim": 3.0, "mae": 0.5, "fid": 10.0}, {"ssim": 2.0, "mae": 0.5001, "fid": 12.0},
                      {"ssim": 1.0, "mae": 0.4999, "fid": 14.0}, {"ssim": 2.5, "mae": 0.5, "fid": 11.0}],
                     {"ssim": True, "mae": False, "fid": False})
    # ssim (higher is better): the shipped 3.0 is the best, so its room reaches down past the mean
    assert out["ssim"]["tolerance"] == pytest.approx(_expected(3.0, [3.0, 2.0, 1.0, 2.5]), rel=1e-3)
    assert out["ssim"]["bound"] < min(3.0, 2.0, 1.0, 2.5)
    # fid (lower is better): the bound lies above the mean
    assert out["fid"]["tolerance"] == pytest.approx(_expected(10.0, [10.0, 12.0, 14.0, 11.0], False), rel=1e-3)
    # mae barely moves: the floor 1e-4 + 2 % of the shipped 0.5
    assert out["mae"]["tolerance"] == pytest.approx(1e-4 + 0.02 * 0.5)
    assert (out["ssim"]["min"], out["ssim"]["max"], out["ssim"]["n"]) == (1.0, 3.0, 4)


def test_a_shipped_value_beyond_the_bound_gets_the_floor():
    # the shipped 0.0 is not among the trainings and lies far below their bound: no room, so the floor
    out = tolerances({"ssim": 0.0}, [{"ssim": 1.0}, {"ssim": 1.1}, {"ssim": 0.9}, {"ssim": 1.0}], {"ssim": True})
    assert out["ssim"]["bound"] > 0 and out["ssim"]["tolerance"] == pytest.approx(1e-4)


def test_few_trainings_no_direction_or_a_bad_alpha_are_refused():
    with pytest.raises(BenchError, match="at least 3"):
        tolerances({"ssim": 1.0}, [{"ssim": 1.0}, {"ssim": 2.0}], {"ssim": True})
    with pytest.raises(BenchError, match="no direction"):
        tolerances({"x": 1.0}, [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}], {"x": None})
    with pytest.raises(BenchError, match="between 0 and 0.5"):
        tolerances({"x": 1.0}, [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}], {"x": True}, alpha=1.0)


def _results(path: Path, pairs="abc", **values):
    path.mkdir(parents=True)
    metrics = {k: {"metric": k.split("_")[0], "value": v, "n": 10} for k, v in values.items()}
    (path / "results.json").write_text(json.dumps({"metrics": metrics, "protocol": {"name": "paired"},
                                                   "dataset": {"name": "synthetic", "pairs_sha256": pairs}}))
    return path


def test_tool_writes_a_file_compare_reads(tmp_path, capsys):
    base = _results(tmp_path / "shipped", ssim=0.36, mae=0.226)
    a = _results(tmp_path / "a", ssim=0.33, mae=0.239)
    b = _results(tmp_path / "b", ssim=0.29, mae=0.246)
    out = tmp_path / "tol.yaml"
    rc = _tool().main(["--shipped", str(base / "results.json"), "--training", f"seed 1={a}",
                       "--training", f"seed 2={b}", "--title", "a test", "--out", str(out)])
    assert rc == 0
    loaded = V.load_file(out)
    assert loaded["ssim"].abs == pytest.approx(_expected(0.36, [0.36, 0.33, 0.29]), rel=1e-3)
    assert loaded["mae"].abs == pytest.approx(_expected(0.226, [0.226, 0.239, 0.246], False), rel=1e-3)
    doc = yaml.safe_load(out.read_text())
    assert [t["label"] for t in doc["trainings"]] == ["shipped", "seed 1", "seed 2"]
    assert doc["trainings"][2]["ssim"] == pytest.approx(0.29) and "99 % prediction bound" in doc["rule"]
    assert out.read_text().startswith("# a test\n")


def test_tool_refuses_other_pairs_and_writes_nothing(tmp_path, capsys):
    base = _results(tmp_path / "shipped", ssim=0.36)
    a = _results(tmp_path / "a", ssim=0.33)
    other = _results(tmp_path / "b", pairs="xyz", ssim=0.29)
    out = tmp_path / "tol.yaml"
    rc = _tool().main(["--shipped", str(base), "--training", f"s1={a}", "--training", f"s2={other}",
                       "--out", str(out)])
    assert rc == 2 and not out.exists()
    assert f"{other}" in capsys.readouterr().err
    # another model on the same pairs is no training of this recipe
    data = json.loads((a / "results.json").read_text())
    (a / "results.json").write_text(json.dumps({**data, "model": {"name": "cfld"}}))
    rc = _tool().main(["--shipped", str(base), "--training", f"s1={a}", "--training", f"s2={a}", "--out", str(out)])
    assert rc == 2 and not out.exists() and "not a training of the shipped" in capsys.readouterr().err


@pytest.mark.parametrize("folder", sorted(SHIPPED))
def test_shipped_tolerance_matches_its_trainings(folder):
    """Each shipped checkpoint keeps a tolerance whose first training is its own bench-paired.json (so a
    re-shipped checkpoint with a stale file fails here), that follows the rule from the trainings it
    lists, and whose spread is what they give."""
    d = ROOT / folder
    doc = yaml.safe_load((d / "reproduce-tolerance.yaml").read_text())
    results = Results.load(d / "bench-paired.json")
    shipped = {k: e["value"] for k, e in results.metrics.items()}
    first = doc["trainings"][0]
    assert Path(first["results"]).as_posix().endswith(f"{folder}/bench-paired.json")
    for k, v in shipped.items():
        # the file keeps 6 significant digits
        assert first[k] == pytest.approx(v, rel=1e-5), k
    assert len(doc["trainings"]) >= 3
    # recomputed from the 6-digit values the file lists: the tolerance agrees to 0.1 %
    directions = {k: results.higher_is_better(k) for k in shipped}
    again = tolerances(shipped, [{k: t[k] for k in shipped} for t in doc["trainings"]], directions)
    tol = V.load_file(d / "reproduce-tolerance.yaml")
    for k in shipped:
        assert tol[k].abs == pytest.approx(again[k]["tolerance"], rel=1e-3), k
        for field in ("mean", "sd", "bound"):
            assert doc["spread"][k][field] == pytest.approx(again[k][field], rel=1e-3, abs=1e-9), (k, field)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize("target", sorted(set(SHIPPED.values())))
def test_make_targets_compare_under_the_shipped_tolerance(target, tmp_path):
    out = {"train-tiny": "TINY_OUT", "train-tiny-pidm": "PIDM_OUT", "train-tiny-cfld": "CFLD_OUT",
           "train-tiny-pocold": "POCOLD_OUT"}[target]
    proc = subprocess.run(["make", "-n", "-o", "install", target, f"{out}={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    compares = [line for line in proc.stdout.splitlines() if " compare --no-ci " in line]
    folders = [f for f, t in SHIPPED.items() if t == target]
    assert len(compares) == len(folders)
    for line, folder in zip(compares, folders):
        assert f"--tolerance-file {folder}/reproduce-tolerance.yaml" in line


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_refuses_a_reproduction_check_without_a_tolerance_file(tmp_path):
    proc = subprocess.run(["make", "-n", "-o", "install", "train-tiny-pidm", f"PIDM_DIR={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert f"{tmp_path}/tiny/reproduce-tolerance.yaml is missing" in proc.stderr
