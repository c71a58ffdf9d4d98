"""The Python API (fpdm_bench.api): its functions give what the commands give on the same runs, its
DataFrames are the CSV files fpdm-bench writes (written back with its CSV writer, byte for byte; a report
table's CSV cell by cell), its figures draw the frames' numbers, and the notebook example runs."""
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_fixture
from helpers import NoisyCopy
from PIL import Image

from fpdm_bench import api
from fpdm_bench.cli import main
from fpdm_bench.errors import BenchError
from fpdm_bench.io import csv_text
from fpdm_bench.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy, "test model")
QUIET = {"progress": False, "workers": 0, "log": None}


def cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code in (0, 1), res.output + repr(res.exception)
    return res


def records(frame) -> list[dict]:
    """A frame's rows as dicts, missing values as None (as the CSV writer takes them)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def as_csv(frame) -> str:
    """The frame written by fpdm-bench's CSV writer (fpdm_bench.io.csv_text)."""
    return csv_text(records(frame), list(frame.columns))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two floors and two seeds of a model on the fixture set (protocol paired), through the API; a
    report of them through the command line."""
    base = tmp_path_factory.mktemp("api")
    root = make_fixture(base / "fixture")
    common = dict(dataset="fixture", data_root=root, protocol="paired", **QUIET)
    out = {}
    for name, model, seed in (("cs", "copy-source", 0), ("kw", "keypoint-warp", 0), ("a", "noisy-copy", 0),
                              ("b", "noisy-copy", 1)):
        out[name] = base / name
        api.run(model=model, out=out[name], seed=seed, **common)
    labels = [f"{out['a']}=noisy A", f"{out['b']}=noisy B"]
    cli("report", out["a"], out["b"], out["cs"], out["kw"], "--out", base / "report", "--k", "2",
        *[x for label in labels for x in ("--label", label)])
    return {"base": base, "root": root, "labels": labels, **out}


def test_run_returns_results_json_and_matches_the_command(runs, tmp_path):
    on_disk = json.loads((runs["kw"] / "results.json").read_text())
    again = api.run(model="keypoint-warp", dataset="fixture", data_root=runs["root"], out=runs["kw"],
                    protocol="paired", **QUIET)
    assert again == on_disk  # a finished run is read: results.json, config included
    assert on_disk["config"]["limit"] is None and on_disk["config"]["out"] == str(runs["kw"])
    cli("run", "--model", "keypoint-warp", "--dataset", "fixture", "--data-root", runs["root"], "--protocol",
        "paired", "--out", tmp_path / "kw", "--no-progress", "--workers", "0")
    by_cli = json.loads((tmp_path / "kw" / "results.json").read_text())
    assert by_cli["metrics"] == on_disk["metrics"]
    assert {k: v for k, v in by_cli["config"].items() if k != "out"} == {
        k: v for k, v in on_disk["config"].items() if k != "out"}


def test_score_matches_the_command(runs, tmp_path):
    folder = runs["kw"] / "samples"
    got = api.score(folder, "fixture", data_root=runs["root"], protocol="paired", out=tmp_path / "api.json", log=None)
    assert got == json.loads((tmp_path / "api.json").read_text())
    cli("score", "--dataset", "fixture", "--data-root", runs["root"], "--generated", folder, "--protocol", "paired",
        "--out", tmp_path / "cli.json")
    by_cli = json.loads((tmp_path / "cli.json").read_text())
    assert got["metrics"] == by_cli["metrics"] == json.loads((runs["kw"] / "results.json").read_text())["metrics"]
    assert {k: v for k, v in got["config"].items()} == by_cli["config"]
    with pytest.raises(BenchError, match="exactly one"):
        api.score(folder, log=None)
    with pytest.raises(BenchError, match="unknown run setting"):
        api.run(model="oracle", out=tmp_path / "x", limits=3)


def test_load_runs_is_the_report_table_in_long_format(runs):
    from fpdm_bench.reporting.tables import RUN_COLUMNS

    paths = [runs["a"], runs["b"], runs["cs"], runs["kw"]]
    frame = api.load_runs(paths, labels=runs["labels"], significance=True)
    assert list(frame.columns) == RUN_COLUMNS
    table = next((runs["base"] / "report" / "tables").glob("table1-*.csv"))
    wide = (l.split(",") for l in table.read_text().splitlines())
    head = next(wide)
    metrics = [h for h in head[3:] if not h.endswith(("_ci95_low", "_ci95_high", "_best", "_significant"))]
    assert len(frame) == 4 * len(metrics) and list(frame["metric"].unique()) == metrics  # one row per (run, metric)
    for row in wide:
        cells = dict(zip(head, row))
        mine = frame[frame["model"] == cells["model"]].set_index("metric")
        assert mine["role"].iloc[0] == cells["role"] and str(mine["n"].iloc[0]) == cells["n"]
        for m in metrics:
            assert mine.loc[m, "value"] == float(cells[m])  # every digit
            assert mine.loc[m, "ci95_low"] == float(cells[f"{m}_ci95_low"])
            assert mine.loc[m, "best"] == int(cells[f"{m}_best"])
            assert mine.loc[m, "significant"] == int(cells[f"{m}_significant"])
    for path, model in ((runs["cs"], "copy-source"), (runs["a"], "noisy A")):
        res = json.loads((path / "results.json").read_text())
        mine = frame[frame["model"] == model]
        assert dict(zip(mine["metric"], mine["value"])) == {m: res["metrics"][m]["value"] for m in metrics}
    # without the tests the values are the same and `significant` is empty
    quick = api.load_runs(paths, labels=runs["labels"])
    assert quick["value"].tolist() == frame["value"].tolist() and quick["significant"].isna().all()


def test_load_samples_and_per_sample(runs):
    samples = api.load_samples([runs["a"], runs["kw"]], labels=runs["labels"][:1])
    assert list(samples.columns) == ["model", "pair_id", "metric", "value", "run"]
    lines = [json.loads(x) for x in (runs["kw"] / "samples.jsonl").read_text().splitlines()]
    kw = samples[samples["model"] == "keypoint-warp"]
    assert len(kw) == sum(len(x["metrics"]) for x in lines)
    assert {(r["pair_id"], k): v for r in lines for k, v in r["metrics"].items()} == dict(
        zip(zip(kw["pair_id"], kw["metric"]), kw["value"]))
    view = api.per_sample([runs["a"], runs["b"], runs["cs"], runs["kw"]], labels=runs["labels"], k=2)
    csv = runs["base"] / "report" / "figures" / "per-sample-noisy-B-vs-noisy-A.csv"
    assert as_csv(view) == csv.read_text()


def test_sweep_frame_is_sweep_csv_and_its_curve(runs, tmp_path):
    rows = api.sweep("keypoint-warp", ["pose.jitter"], tmp_path / "sweep", severities=[0, 2], dataset="fixture",
                     data_root=runs["root"], limit=4, protocol="paired", progress=False, workers=0, log=None)
    frame = api.load_sweep(tmp_path / "sweep")
    assert as_csv(frame) == (tmp_path / "sweep" / "sweep.csv").read_text()
    assert records(frame) == rows
    fig = api.plot_robustness(frame, "ssim")
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == frame[frame["metric"] == "ssim"]["value"].tolist()


def test_profile_frames_are_the_timing_csvs(runs, tmp_path):
    prof = tmp_path / "profile.json"
    report = api.profile("keypoint-warp", dataset="fixture", data_root=runs["root"], batch_sizes="1,2", repeats=2,
                         metric_pass=False, device="cpu", out=prof, log=None)
    assert json.loads(prof.read_text())["rows"] == json.loads(json.dumps(report["rows"], default=str))
    cli("report", prof, "--out", tmp_path / "rep")
    steps, stages = api.load_profiles(prof), api.load_profile_stages(prof)
    assert as_csv(steps) == (tmp_path / "rep" / "figures" / "timing-steps.csv").read_text()
    assert as_csv(stages) == (tmp_path / "rep" / "figures" / "timing-stages.csv").read_text()
    assert len(api.plot_timing_stages(stages).axes) == 1 and len(api.plot_timing_steps(steps).axes) == 1


def test_compare_frame_is_the_commands_csv(runs):
    frame = api.compare(runs["cs"], runs["kw"])
    res = cli("compare", runs["cs"], runs["kw"], "--format", "csv")
    assert res.stdout == as_csv(frame)
    rows = json.loads(cli("compare", runs["cs"], runs["kw"], "--format", "json").stdout)["rows"]
    assert frame["metric"].tolist() == [r["metric"] for r in rows]
    assert frame["delta"].tolist() == [r["delta"] for r in rows]
    assert frame["ci95_low"].tolist() == [r["ci95"][0] for r in rows]
    assert set(frame["verdict"]) <= {"better", "no change", "WORSE"}


def test_plot_metrics_draws_the_frame(runs):
    frame = api.load_runs([runs["cs"], runs["kw"]])
    fig = api.plot_metrics(frame, ["ssim", "mae"])
    assert [ax.get_title() for ax in fig.axes] == ["SSIM ↑", "MAE ↓"]
    for ax, metric in zip(fig.axes, ["ssim", "mae"]):
        drawn = [c.lines[0].get_xdata()[0] for c in ax.containers]
        assert drawn == frame[frame["metric"] == metric]["value"].tolist()


def test_importing_the_api_imports_no_pandas_or_matplotlib():
    code = "import sys, fpdm_bench.api; print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.slow  # makes the embedded synthetic set (~7 s) and runs the example (~10 s in all)
def test_notebook_example_scores_a_folder_and_plots_two_runs(tmp_path, monkeypatch):
    """examples/notebook/score_and_plot.py, run as its cells run (data made under tmp_path)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FPDM_BENCH_EXAMPLE_OUT", str(tmp_path / "nb"))
    ns = runpy.run_path(str(ROOT / "examples" / "notebook" / "score_and_plot.py"))
    frame, runs_ = ns["frame"], ns["runs"]
    assert (tmp_path / "data" / "synthetic").is_dir()  # the embedded set, made on first use
    assert len(frame) == 2 * 4 and set(frame["metric"]) == {"ssim", "ssim_gauss", "psnr", "mae"}
    for model, results in runs_.items():
        on_disk = json.loads((tmp_path / "nb" / model / "results.json").read_text())
        assert results == on_disk and on_disk["n"] == 8
        mine = frame[frame["model"] == model]
        assert dict(zip(mine["metric"], mine["value"])) == {k: e["value"] for k, e in on_disk["metrics"].items()}
    assert ns["scored"]["metrics"] == runs_["keypoint-warp"]["metrics"]  # the folder scores as the run did
    assert (ns["comparison"].set_index("metric")["verdict"] == "better").all()  # keypoint-warp beats copy-source
    png = tmp_path / "nb" / "metrics.png"
    im = Image.open(png).convert("L")
    assert png.stat().st_size > 10_000 and im.size[0] >= 1500
    assert np.ptp(np.asarray(im)) > 100  # drawn, not blank
