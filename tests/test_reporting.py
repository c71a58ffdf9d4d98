"""`fpdm-bench report --out`: tables that parse back to results.json, figures of the expected size,
CSVs equal to what is drawn, an index.html whose links all exist, and the refusals."""
import csv
import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import make_fixture
from fpdm_bench.cli import main
from fpdm_bench.models import MODELS, ModelAdapter
from fpdm_bench.reporting import build_report, classify, curves, stage1, timing
from fpdm_bench.reporting.grid import pick_rows
from fpdm_bench.reporting.tables import Row, build_table
from fpdm_bench.results import Results
from fpdm_bench.runner import RunConfig, run
from helpers import NoisyCopy


class NearOracle(ModelAdapter):
    """The target plus a little noise: far better than NoisyCopy on every paired metric, on every pair."""

    name = "near-oracle"
    needs_target = True

    def generate(self, batch, generators):
        noise = torch.stack([torch.rand(batch["target"].shape[1:], generator=g) for g in generators])
        return (0.8 * batch["target"] + 0.2 * noise).clamp(0, 1)


for _name, _cls in (("noisy-copy", NoisyCopy), ("near-oracle", NearOracle)):
    if _name not in MODELS:
        MODELS.register(_name, _cls, "test model")

MODELS_RUN = ("noisy-copy", "near-oracle", "copy-source", "oracle", "keypoint-warp")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Five runs on the fixture set (protocol paired), a fake sweep, a real and a fake profile, and a
    fake stage-1 evaluation."""
    base = tmp_path_factory.mktemp("reporting")
    root = make_fixture(base / "fixture")
    runs = []
    for m in MODELS_RUN:
        out = base / "runs" / m
        run(RunConfig(model=m, dataset="fixture", data_root=str(root), out=str(out), protocol="paired",
                      progress=False, workers=0), log=lambda s: None)
        runs.append(out)
    sweep = base / "sweep"
    sweep.mkdir()
    rows = []
    for model, slope in (("keypoint-warp", -0.05), ("fpdm", -0.02)):
        for pert in ("pose.jitter", "source.occlusion"):
            for sev in (0, 2, 4):
                for metric, v0 in (("fid", 100.0), ("ssim", 0.5)):
                    v = v0 * (1 + (-slope if metric == "fid" else slope) * sev)
                    rows.append({"model": model, "perturbation": pert, "severity": sev, "metric": metric, "value": v,
                                 "ci95_low": v * 0.97, "ci95_high": v * 1.03, "n": 12,
                                 "run": f"{model}/{'clean' if sev == 0 else f'{pert}/severity-{sev}'}"})
    rows.append({**rows[0], "metric": "lpips", "value": None, "ci95_low": None, "ci95_high": None})
    (sweep / "sweep.json").write_text(json.dumps({"sweep": {"dataset": "fixture", "protocol": "paired"}, "rows": rows}))
    prof_kw = base / "profile-kw.json"
    res = CliRunner().invoke(main, ["profile", "--model", "keypoint-warp", "--dataset", "fixture", "--data-root",
                                    str(root), "--batch-sizes", "1,2", "--repeats", "2", "--no-metrics", "--device",
                                    "cpu", "--out", str(prof_kw)])
    assert res.exit_code == 0, res.output
    prof_fake = base / "profile-fake.json"
    prof_fake.write_text(json.dumps(_fake_profile()))
    s1 = base / "stage1-eval"
    s1.mkdir()
    (s1 / "stage1_eval.json").write_text(json.dumps({
        "dataset": {"name": "fixture", "split": "test"}, "n_queries": 4, "n_candidates": 6,
        "candidate_set": "unique targets", "gate_mean": 0.3,
        "queries": {q: {"top1": t1, "top5": t5, "mean_rank": 2.0, "median_rank": 2.0, "mean_cosine_to_target": 0.5}
                    for q, t1, t5 in (("fusion", 0.5, 1.0), ("source", 0.25, 0.75), ("pose", 0.0, 0.5))}}))
    ranks = {"fusion": [1, 2, 1, 3], "source": [2, 1, 4, 6], "pose": [6, 5, 3, 2]}
    with open(s1 / "stage1_ranks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pair_id", "query", "rank", "cosine"])
        for q, rs in ranks.items():
            for i, r in enumerate(rs):
                w.writerow([f"p{i}", q, r, repr(0.9 - 0.1 * r)])
    return {"root": root, "runs": runs, "sweep": sweep, "profiles": [prof_kw, prof_fake], "stage1": s1,
            "ranks": ranks, "sweep_rows": rows}


def _spread(v):
    return {"median": v, "mean": v, "min": v * 0.9, "max": v * 1.2, "iqr": 0.0, "sd": 0.0, "n": 3, "values": [v] * 3}


def _fake_profile():
    rows = []
    for steps in (10, 20):
        for bs in (1, 4):
            total = 0.01 * steps * (1 + 0.1 * bs)
            stages = {"encoder": {"calls_per_batch": 1, "seconds_per_batch": _spread(0.002 * bs)},
                      "denoiser": {"calls_per_batch": steps, "seconds_per_batch": _spread(total * 0.8)}}
            rows.append({"batch_size": bs, "steps": steps, "seconds_per_batch": _spread(total),
                         "seconds_per_image": _spread(total / bs), "stages": stages,
                         "metric_pass": {"total": _spread(0.003 * bs)}})
    return {"format": "fpdm-bench/profile", "version": 1, "config": {"model": "fakediff", "device": "cpu"},
            "timing": {"warmup": 1, "repeats": 3, "torch_threads": 1}, "environment": {}, "rows": rows}


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "rep"
    args = ["report", *map(str, inputs["runs"]), str(inputs["sweep"]), *map(str, inputs["profiles"]),
            "--stage1", str(inputs["stage1"]), "--out", str(out), "--rows", "3", "--k", "2"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out, json.loads((out / "report.json").read_text())


# --- tables -------------------------------------------------------------------------------------

CELL = re.compile(r"^(?P<b>\*\*)?(?P<v>-?\d+\.\d+|inf|n/a)(?:\*\*)?(?P<s>\\\*)?(?: ±(?P<h>\d+\.\d+))?$")


def _close(text: str, value: float) -> bool:
    """text (printed with d decimals) is value rounded to d decimals."""
    if text == "inf":
        return value == math.inf
    d = len(text.split(".")[1])
    return abs(float(text) - value) <= 0.5 * 10 ** -d + 1e-12


def _results(inputs):
    return {Results.load(r).model: Results.load(r) for r in inputs["runs"]}


def test_markdown_table_parses_back_to_results_json(inputs, report):
    out, manifest = report
    md = (out / manifest["artefacts"][0]["files"]["md"]).read_text()
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:2] == ["model", "n"]
    keys = {"SSIM ↑": "ssim", "SSIM σ1.5 ↑": "ssim_gauss", "PSNR ↑": "psnr", "MAE ↓": "mae"}
    assert set(head[2:]) == set(keys), head
    assert "protocol paired" in md.lower() and "dataset fixture" in md.lower()  # named under the table
    res = _results(inputs)
    seen, floors_started = set(), False
    for ln in lines[1:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if cells[0] == "*floors*":
            floors_started = True
            continue
        if set(cells[0]) <= set(":-"):
            continue
        model = cells[0]
        seen.add(model)
        assert floors_started == (model in ("copy-source", "oracle", "keypoint-warp")), model
        assert int(cells[1]) == res[model].n == 12
        for title, cell in zip(head[2:], cells[2:]):
            m = CELL.match(cell)
            assert m, cell
            entry = res[model].metrics[keys[title]]
            assert _close(m["v"], entry["value"]), (model, title, cell, entry["value"])
            if m["h"]:
                lo, hi = entry["ci95"]
                assert _close(m["h"], (hi - lo) / 2), (model, title, cell)
            # bold: the better of the two (non-floor) models, by the registry's direction
            if not floors_started:
                other = res["near-oracle" if model == "noisy-copy" else "noisy-copy"].value(keys[title])
                up = res[model].higher_is_better(keys[title])
                better = entry["value"] > other if up else entry["value"] < other
                assert bool(m["b"]) == better, (model, title)
                assert better == (model == "near-oracle")
                # near-oracle beats noisy-copy on every pair: the paired bootstrap marks it
                assert bool(m["s"]) == better, (model, title)
            else:
                assert not m["b"] and not m["s"]
    assert seen == set(MODELS_RUN)


def test_latex_table_parses_back_and_uses_booktabs(inputs, report):
    out, manifest = report
    tex = (out / manifest["artefacts"][0]["files"]["tex"]).read_text()
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{", r"\begin{tabular}"):
        assert cmd in tex
    assert tex.count(r"\midrule") == 2  # under the header, and the rule above the floors
    res = _results(inputs)
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    head = tex.split(r"\toprule", 1)[1].split(r"\\")[0]
    order = ["ssim", "ssim_gauss", "psnr", "mae"]
    assert [h.strip().split(" ")[0] for h in head.split("&")[2:]] == ["SSIM", r"SSIM$_{\sigma", "PSNR", "MAE"]
    n_rows = 0
    for ln in body.splitlines():
        if "&" not in ln:
            continue
        cells = [c.strip() for c in ln.rstrip("\\ ").split("&")]
        model = re.sub(r"\\textit\{(.*)\}", r"\1", cells[0])
        n_rows += 1
        for key, cell in zip(order, cells[2:]):
            m = re.match(r"^\$(?:\\mathbf\{)?(?P<v>-?[\d.]+|\\infty)\}?(?:\^\{\*\})?(?: \\pm (?P<h>[\d.]+))?\$$", cell)
            assert m, cell
            entry = res[model].metrics[key]
            assert _close("inf" if m["v"] == r"\infty" else m["v"], entry["value"])
            if m["h"]:
                assert _close(m["h"], (entry["ci95"][1] - entry["ci95"][0]) / 2)
    assert n_rows == len(MODELS_RUN)


def test_table_csv_and_significance_csv(inputs, report):
    out, manifest = report
    files = manifest["artefacts"][0]["files"]
    rows = list(csv.DictReader(open(out / files["csv"])))
    res = _results(inputs)
    for r in rows:
        for key in ("ssim", "mae"):
            assert float(r[key]) == res[r["model"]].value(key)  # every digit (repr)
    sig = list(csv.DictReader(open(out / files["significance"])))
    assert {s["metric"] for s in sig} == {"ssim", "ssim_gauss", "psnr", "mae"}
    assert all(s["best"] == "near-oracle" and s["second"] == "noisy-copy" and s["significant"] == "True" for s in sig)


def test_fid_marker_comes_from_the_results_cis():
    def res(model, fid, half, n=100):
        return Results({"model": {"name": model}, "dataset": {"name": "d", "split": "test"}, "protocol": {"name": "p"},
                        "n": n, "metrics": {"fid": {"metric": "fid", "value": fid, "ci95": [fid - half, fid + half],
                                                    "n": n}}})

    t = build_table([Row("a", res("a", 50.0, 2.0), False), Row("b", res("b", 60.0, 2.0), False),
                     Row("oracle", res("oracle", 1.0, 1.0), True)])
    col = t.columns[0]
    assert col.up is False and col.best == {0} and col.marked == {0}  # oracle is a floor: not ranked
    assert "results.json CIs" in col.sig["method"]  # no run directories: the CIs, as compare does
    close = build_table([Row("a", res("a", 50.0, 4.0), False), Row("b", res("b", 52.0, 4.0), False)])
    assert close.columns[0].best == {0} and close.columns[0].marked == set()
    other_n = build_table([Row("a", res("a", 50.0, 1.0), False), Row("b", res("b", 70.0, 1.0, n=200), False)])
    assert other_n.columns[0].marked == set() and "n differs" in other_n.columns[0].sig["method"]


# --- figures ------------------------------------------------------------------------------------


def test_every_figure_is_a_non_empty_png_of_the_expected_size(report, inputs):
    out, manifest = report
    sections = {a["section"] for a in manifest["artefacts"]}
    assert sections == {"tables", "grid", "per_sample", "robustness", "timing", "stage1"}
    n_png = 0
    for a in manifest["artefacts"]:
        for kind, path in a["files"].items():
            assert (out / path).is_file() and (out / path).stat().st_size > 0, path
        if "png" not in a["files"]:
            continue
        n_png += 1
        im = Image.open(out / a["files"]["png"])
        assert im.size == tuple(a["png_size"]), a["name"]
        assert round(im.info["dpi"][0]) == 300
        lo_hi = im.convert("L").getextrema()
        assert lo_hi[1] - lo_hi[0] > 50, a["name"]  # not a blank image
        if "pdf" in a["files"]:
            assert (out / a["files"]["pdf"]).read_bytes()[:5] == b"%PDF-"
            assert b"<svg" in (out / a["files"]["svg"]).read_bytes()[:2000]
    assert n_png == 1 + 1 + 2 + 2 + 1  # grid, per-sample (1 pair of models), fid + ssim curves, 2 timing, stage 1
    grid = next(a for a in manifest["artefacts"] if a["section"] == "grid")
    h, w = grid["meta"]["cell"]
    assert grid["png_size"] == [w * len(grid["meta"]["columns"]), grid["meta"]["header"] + 3 * h]
    # source | target pose | ground truth | the runs that are not oracle / copy-source
    assert grid["meta"]["columns"] == ["source", "target pose", "ground truth", "noisy-copy", "near-oracle",
                                       "keypoint-warp"]
    from fpdm_bench.data import open_dataset

    order = [p.pair_id for p in open_dataset("fixture", inputs["root"]).pairs]
    assert grid["meta"]["pairs"] == pick_rows(order, 3)
    # the ground-truth column is the target image, the noisy-copy column its sample
    img = np.asarray(Image.open(out / grid["files"]["png"]))
    first = grid["meta"]["pairs"][0]
    sample = np.asarray(Image.open(inputs["runs"][0] / "samples" / f"{first}.png"))
    top = grid["meta"]["header"]
    assert (img[top:top + h, 3 * w:4 * w] == sample).all()


def test_robustness_csv_is_the_plotted_data(report, inputs):
    out, manifest = report
    arts = [a for a in manifest["artefacts"] if a["section"] == "robustness"]
    assert [a["meta"]["metric"] for a in arts] == ["fid", "ssim"]  # lpips has no value: no figure
    for a in arts:
        rows = list(csv.DictReader(open(out / a["files"]["csv"])))
        src = [r for r in inputs["sweep_rows"] if r["metric"] == a["meta"]["metric"]]
        assert len(rows) == len(src) == 2 * 2 * 3
        by_key = {(r["model"], r["perturbation"], int(r["severity"])): r for r in src}
        for r in rows:
            s = by_key[(r["model"], r["perturbation"], int(r["severity"]))]
            for k in ("value", "ci95_low", "ci95_high"):
                assert float(r[k]) == s[k]
        # and the figure draws exactly these values: one line per (panel, model)
        data = curves.curve_data(inputs["sweep_rows"], a["meta"]["metric"])
        fig = curves.build_figure(data, a["meta"]["metric"])
        drawn = {(ax.get_title(), ln.get_label()): list(ln.get_ydata()) for ax in fig.axes for ln in ax.get_lines()}
        assert len(drawn) == 4
        for (pert, model), ys in drawn.items():
            assert ys == [float(r["value"]) for r in rows if r["perturbation"] == pert and r["model"] == model]


def test_timing_csvs_match_the_profiles(report, inputs):
    out, manifest = report
    arts = {a["name"]: a for a in manifest["artefacts"] if a["section"] == "timing"}
    fake = _fake_profile()
    bars = list(csv.DictReader(open(out / arts["timing-stages"]["files"]["csv"])))
    fake_bars = [r for r in bars if r["model"] == "fakediff"]
    for row in fake["rows"]:
        segs = {r["segment"]: float(r["ms_per_image"]) for r in fake_bars
                if int(r["batch_size"]) == row["batch_size"] and int(r["steps"]) == row["steps"]}
        total = row["seconds_per_image"]["median"] * 1e3
        assert segs["denoiser"] == pytest.approx(row["stages"]["denoiser"]["seconds_per_batch"]["median"]
                                                 / row["batch_size"] * 1e3)
        # the stacked segments add up to the median total; the metric pass is beside it
        assert sum(v for k, v in segs.items() if k != "metric pass") == pytest.approx(total)
        assert segs["metric pass"] == pytest.approx(0.003 * row["batch_size"] / row["batch_size"] * 1e3)
    kw = json.loads(inputs["profiles"][0].read_text())
    kw_bars = [r for r in bars if r["model"] == "keypoint-warp"]
    assert [r["segment"] for r in kw_bars] == ["generate", "generate"]  # no stages, no metric pass
    assert [float(r["ms_per_image"]) for r in kw_bars] == [r["seconds_per_image"]["median"] * 1e3 for r in kw["rows"]]
    steps = list(csv.DictReader(open(out / arts["timing-steps"]["files"]["csv"])))
    assert [(r["model"], r["batch_size"], r["steps"]) for r in steps if r["model"] == "fakediff"] == [
        ("fakediff", "1", "10"), ("fakediff", "1", "20"), ("fakediff", "4", "10"), ("fakediff", "4", "20")]
    fig = timing.build_steps_figure(timing.step_data([fake]))
    lines = {c.get_label(): list(c.lines[0].get_ydata()) for c in fig.axes[0].containers}
    assert lines["fakediff, bs 4"] == [float(r["ms_per_image"]) for r in steps
                                       if r["model"] == "fakediff" and r["batch_size"] == "4"]


def test_stage1_csv_is_the_top_k_curve(report, inputs):
    out, manifest = report
    a = next(a for a in manifest["artefacts"] if a["section"] == "stage1")
    rows = list(csv.DictReader(open(out / a["files"]["csv"])))
    for q, ranks in inputs["ranks"].items():
        got = [float(r["top_k_accuracy"]) for r in rows if r["query"] == q]
        assert got == [float(np.mean(np.array(ranks) <= k)) for k in range(1, 7)]
    hist = list(csv.DictReader(open(out / a["files"]["csv_hist"])))
    assert sum(int(r["count"]) for r in hist if r["query"] == "fusion") == 4
    # an evaluation without per-query ranks: the summary bars
    summary, _ = stage1.load(inputs["stage1"])
    data = stage1.figure_data(summary, None)
    assert [r["top1"] for r in data["summary"]] == [0.5, 0.25, 0.0]


# --- index.html ---------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href"):
                self.refs.append(v)


def test_html_references_only_files_that_exist(report):
    out, manifest = report
    p = _Links()
    p.feed((out / "index.html").read_text())
    assert "script" not in p.tags and "link" not in p.tags  # no JS, the CSS is inline
    files = [r for r in p.refs if not r.startswith("#")]
    assert files, "no links"
    for ref in files:
        assert "://" not in ref and not ref.startswith("/"), ref
        assert (out / ref).is_file(), ref
    imgs = [r for r in p.refs if r.endswith(".png")]
    for a in manifest["artefacts"]:
        if "png" in a["files"]:
            assert a["files"]["png"] in imgs
    anchors = {r[1:] for r in p.refs if r.startswith("#")}
    page = (out / "index.html").read_text()
    assert all(f'id="{x}"' in page for x in anchors)


# --- command line -------------------------------------------------------------------------------


def test_report_without_out_prints_the_table_and_refuses_other_inputs(inputs):
    res = CliRunner().invoke(main, ["report", *map(str, inputs["runs"][:2]), "--format", "markdown"])
    assert res.exit_code == 0 and res.output.startswith("| model | dataset | protocol | n |")
    res = CliRunner().invoke(main, ["report", str(inputs["runs"][0]), str(inputs["sweep"])])
    assert res.exit_code != 0 and "--out" in str(res.exception)
    res = CliRunner().invoke(main, ["report", str(inputs["runs"][0]), "--baseline", "x"])
    assert res.exit_code != 0 and "--out" in str(res.exception)


def test_inputs_are_told_apart_by_content(inputs):
    assert classify(inputs["runs"][0]) == "run"
    assert classify(inputs["runs"][0] / "results.json") == "run"
    assert classify(inputs["sweep"]) == "sweep"
    assert [classify(p) for p in inputs["profiles"]] == ["profile", "profile"]
    assert classify(inputs["stage1"]) == "stage1"


def test_replacing_a_report_needs_force_and_a_report_folder(inputs, tmp_path):
    out = tmp_path / "r"
    build_report([inputs["runs"][0]], out, log=lambda m: None)
    with pytest.raises(Exception, match="--force"):
        build_report([inputs["runs"][0]], out, log=lambda m: None)
    (out / "stale.txt").write_text("x")
    build_report([inputs["runs"][0], inputs["runs"][1]], out, force=True, log=lambda m: None)
    assert not (out / "stale.txt").exists() and (out / "index.html").is_file()
    other = tmp_path / "not-a-report"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(Exception, match="not a report folder"):
        build_report([inputs["runs"][0]], other, force=True, log=lambda m: None)
    assert (other / "keep.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_same_inputs_give_the_same_files(inputs, tmp_path):
    """Tables, grid, curves and their CSVs are byte-identical between two builds."""
    args = [*inputs["runs"], inputs["sweep"]]
    a = build_report(args, tmp_path / "a", rows=2, log=lambda m: None)
    build_report(args, tmp_path / "b", rows=2, log=lambda m: None)
    for art in a["artefacts"]:
        for path in art["files"].values():
            assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path
    assert (tmp_path / "a" / "index.html").read_bytes() == (tmp_path / "b" / "index.html").read_bytes()
