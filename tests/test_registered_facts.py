"""Registered classes are the only place their facts live.

A metric's title, column order, n-dependence, compare statistics, weight files and per-sample
preference are attributes of its class; a model's floor status, colour and grid column are
attributes of its adapter; perturbations and protocols are found through entry points. Each test
registers a test-local class (removed again afterwards) and checks that the fact reaches the table,
the weights listing, compare or the report from the class alone; the last tests check that
fpdm-bench's sources keep no list of built-in metric or floor names outside their classes/records.
"""
import json
import re
from pathlib import Path

import pytest
import torch

import fpdm_bench
from fpdm_bench import weights as W
from fpdm_bench.metrics.base import FRECHET_BOOTSTRAP, METRICS, PairedMetric, SetMetric
from fpdm_bench.models import MODELS, ModelAdapter, floor_names, model_fact
from fpdm_bench.results import Results, metric_names

PACKAGE = Path(fpdm_bench.__file__).parent


def _register(monkeypatch, registry, name, target):
    """Register ``target`` under ``name`` for one test (monkeypatch undoes it)."""
    registry.names()  # entry points first, as a real registration would see them
    monkeypatch.setitem(registry._entries, name, target)
    monkeypatch.setitem(registry._help, name, "")


# --- test-local classes ---------------------------------------------------------------------------

TOY_NET = W.WeightSpec("toy-net", "toy-net-0123abcd.pth", "toy FD (toy net)", "zz_toy_fd (a test metric)",
                       "0123abcd")


class ToyPaired(PairedMetric):
    """A third-party paired metric declaring its title, order, extra key and preferences."""

    name = "zz_toy"
    higher_is_better = False
    title, latex_title = "Toy", r"T$_\mathrm{oy}$"
    key_titles = {"zz_toy_b": ("Toy B", r"T$_B$")}
    order = 45  # between LPIPS (40) and SSIM (50)
    sample_rank = 0  # preferred over lpips in the per-sample view
    sweep_summary = True

    def per_sample(self, generated, target, batch):
        return (generated - target).abs().flatten(1).mean(1)


class ToySet(SetMetric):
    """A third-party set metric with its own feature network weight and the Fréchet bootstrap."""

    name = "zz_toy_fd"
    weights = (TOY_NET,)
    resample = FRECHET_BOOTSTRAP


class ToyFloor(ModelAdapter):
    """A third-party floor: before copy-source, with its own colour, not in the grid."""

    name = "toy-floor"
    floor = True
    order = 0
    colour = "#123456"
    in_grid = False
    repeats = "source"

    def generate(self, batch, generators):
        return batch["source"].clone()


@pytest.fixture
def toys(monkeypatch):
    _register(monkeypatch, METRICS, "zz_toy", ToyPaired)
    _register(monkeypatch, METRICS, "zz_toy_fd", ToySet)
    _register(monkeypatch, MODELS, "toy-floor", ToyFloor)


def _results(model, values: dict, n=8) -> dict:
    metrics = {}
    for key, (cls, v) in values.items():
        metrics[key] = {"value": v, "ci95": [v - 0.1, v + 0.1], "n": n, "metric": cls}
    return {"model": {"name": model}, "dataset": {"name": "synthetic", "split": "test"}, "protocol": {"name": "p"},
            "n": n, "metrics": metrics}


# --- metrics ------------------------------------------------------------------------------------


def test_metric_order_and_titles_come_from_the_class(toys):
    from fpdm_bench.reporting.tables import Row, build_table, to_latex, to_markdown

    vals = {"ssim": ("ssim", 0.5), "zz_toy_b": ("zz_toy", 2.0), "aaa": ("ssim", 1.0), "zz_toy": ("zz_toy", 1.0),
            "lpips": ("lpips", 0.2), "fid": ("fid", 20.0)}
    res = Results(_results("m", vals))
    # the class's order puts its two keys between lpips and ssim; a key no class declares goes last
    assert metric_names([res]) == ["fid", "lpips", "zz_toy", "zz_toy_b", "ssim", "aaa"]
    table = build_table([Row("m", res, False)])
    md, tex = to_markdown(table), to_latex(table)
    assert "| model | n | FID ↓ | LPIPS ↓ | Toy ↓ | Toy B ↓ | SSIM ↑ | aaa ↑ |" in md
    assert r"T$_\mathrm{oy}$ $\downarrow$ & T$_B$ $\downarrow$" in tex


def test_built_in_display_order_is_unchanged():
    keys = ["pose_detected", "zzz", "l1", "ssim_gauss", "pckh", "kid", "fid", "psnr", "pose_dist", "lpips", "mae",
            "ssim_256", "pckh_target", "fd_dinov2", "ssim", "pose", "aaa", "coverage", "cmmd", "recall", "density",
            "precision", "tlp", "flicker", "fvd", "tof"]
    res = Results({"metrics": {k: {"value": 1.0} for k in keys}})
    assert metric_names([res]) == ["fid", "fd_dinov2", "kid", "precision", "recall", "density", "coverage", "cmmd",
                                   "lpips", "ssim", "ssim_256", "ssim_gauss", "psnr", "mae", "l1", "pckh", "pckh_target",
                                   "pose_dist", "pose_detected", "fvd", "flicker", "tof", "tlp", "aaa", "pose", "zzz"]


def test_a_set_metrics_weight_file_is_listed_and_found(toys, tmp_path, monkeypatch):
    monkeypatch.setenv("FPDM_BENCH_WEIGHTS", str(tmp_path))
    rows = W.status(hash_files=False)
    names = [r["name"] for r in rows]
    # single files first (display order of their metrics; unordered metrics last), then folders
    assert names == ["fid-inception", "torchvision-inception", "alexnet", "vgg16", "i3d-torchscript", "toy-net", "dinov2",
                     "clip-vit-l14-336"]
    toy = rows[names.index("toy-net")]
    assert not toy["present"] and "toy-net-0123abcd.pth" in toy["missing"] and toy["used_by"] == TOY_NET.used_by
    (tmp_path / TOY_NET.filename).write_bytes(b"x")
    assert W.find("toy-net") == tmp_path / TOY_NET.filename
    assert next(r for r in W.status(hash_files=False) if r["name"] == "toy-net")["present"]


def test_shared_weights_are_declared_once():
    from fpdm_bench.metrics.fid import FID
    from fpdm_bench.metrics.kid import KID

    assert FID.weights is KID.weights  # one record, metrics/inception.py
    assert [s.name for s in FID.weights] == ["fid-inception", "torchvision-inception"]


def test_depends_on_n_and_resample_reach_tables_and_compare(toys):
    from fpdm_bench.reporting.tables import Row, significance
    from fpdm_bench.stats import verdict as V
    from fpdm_bench.stats.comparison import compare_runs

    a = _results("a", {"zz_toy_fd": ("zz_toy_fd", 10.0)}, n=8)
    b = _results("b", {"zz_toy_fd": ("zz_toy_fd", 12.0)}, n=6)
    sig = significance(Row("a", Results(a), False), Row("b", Results(b), False), "zz_toy_fd")
    assert sig["significant"] is None and "n differs" in sig["method"]
    # compare: a Fréchet-type metric of runs over different n is not ranked without features
    row = next(r for r in compare_runs(a, b).rows if r.metric == "zz_toy_fd")
    assert row.verdict == V.SKIPPED and not row.gating


def test_per_sample_preference_and_sweep_summary_come_from_the_class(toys):
    from fpdm_bench.commands.sweep import summary_metrics
    from fpdm_bench.reporting.per_sample import pick_metric
    from fpdm_bench.reporting.tables import Row

    samples = {"p1": {"lpips": 0.1, "ssim": 0.5, "zz_toy": 0.3}, "p2": {"lpips": 0.2, "ssim": 0.4, "zz_toy": 0.1}}
    rows = [Row(m, Results(_results(m, {})), False, _samples=samples) for m in ("a", "b")]
    assert pick_metric(rows) == "zz_toy"
    no_toy = {p: {k: v for k, v in s.items() if k != "zz_toy"} for p, s in samples.items()}
    assert pick_metric([Row(m, Results(_results(m, {})), False, _samples=no_toy) for m in ("a", "b")]) == "lpips"
    sweep_rows = [{"metric": k, "value": 1.0} for k in ("psnr", "zz_toy", "ssim", "ssim_gauss", "fid", "fd_dinov2")]
    assert set(summary_metrics(sweep_rows)) == {"zz_toy", "ssim", "fid"}


# --- models -------------------------------------------------------------------------------------


def test_a_floor_adapter_goes_below_the_rule_with_its_colour(toys, tmp_path):
    from fpdm_bench.reporting import build_report
    from fpdm_bench.reporting._common import model_colour

    assert floor_names()[:1] == ["toy-floor"]
    assert [n for n in floor_names() if n in ("copy-source", "oracle")] == ["copy-source", "oracle"]
    assert model_colour("toy-floor", {}) == "#123456"
    assert model_fact("toy-floor", "in_grid", True) is False
    assert model_fact("not-installed-here", "colour", "fallback") == "fallback"
    runs = []
    for model, v in (("toy-floor", 0.9), ("some-model", 0.5)):
        d = tmp_path / model
        d.mkdir()
        (d / "results.json").write_text(json.dumps(_results(model, {"mae": ("mae", v)})))
        runs.append(d)
    manifest = build_report(runs, tmp_path / "report", log=lambda m: None)
    md = next((tmp_path / "report" / "tables").glob("*.md")).read_text()
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert [ln.split(" | ")[0] for ln in lines[1:]] == ["| some-model", "| *floors*", "| toy-floor"]
    assert "**0.5000**" in md and "**0.9000**" not in md  # the floor is never ranked
    assert manifest["options"]["floors"] == ["toy-floor"]


def test_built_in_floors_and_colours_are_class_attributes():
    CopySource, Oracle = MODELS.get("copy-source"), MODELS.get("oracle")
    assert (CopySource.floor, CopySource.order, CopySource.colour, CopySource.in_grid) == (True, 1, "#7f7f7f", False)
    assert (Oracle.floor, Oracle.order, Oracle.colour, Oracle.in_grid) == (True, 2, "#bcbd22", False)


# --- entry points -------------------------------------------------------------------------------


@pytest.mark.parametrize("module, group", [("fpdm_bench.perturb", "fpdm_bench.perturbations"),
                                           ("fpdm_bench.protocols", "fpdm_bench.protocols")])
def test_perturbations_and_protocols_come_from_entry_points(module, group):
    """In a fresh process (other tests register protocols by hand in this one), importing the module
    registers nothing by hand: its registry holds exactly its entry points' objects."""
    import json
    import subprocess
    import sys

    script = f"""
import importlib, json
from fpdm_bench.registry import Registry
mod = importlib.import_module({module!r})
registry = mod.PERTURBATIONS if {group!r}.endswith("perturbations") else mod.PROTOCOLS
fresh = Registry("x", entry_point_group={group!r})
print(json.dumps({{"group": registry.group, "names": registry.names(), "fresh": fresh.names(),
                  "same": all(fresh.get(n) is registry.get(n) for n in fresh.names())}}))
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.splitlines()[-1])
    assert got["group"] == group and got["names"] == got["fresh"] and len(got["fresh"]) >= 8 and got["same"]


def test_a_third_party_perturbation_registers_like_the_built_ins(monkeypatch):
    from fpdm_bench.perturb import PERTURBATIONS, Perturbation, apply_perturbation

    class Dim(Perturbation):
        """Toy perturbation: darkens the source."""

        name = "source.toy-dim"
        applies_to = "source"
        levels = (0.9, 0.8, 0.7, 0.6, 0.5)
        unit = "factor"

        def apply(self, sample, value, rng, keypoint_format):
            return dict(sample, source=sample["source"] * value)

    _register(monkeypatch, PERTURBATIONS, "source.toy-dim", Dim())
    sample = {"pair_id": "p0", "source": torch.ones(3, 2, 2), "target_kp": torch.zeros(18, 2)}
    out = apply_perturbation(sample, "source.toy-dim", 2, seed=0)
    assert float(out["source"].max()) == pytest.approx(0.8)


# --- no side tables -----------------------------------------------------------------------------

BUILT_IN_METRIC = (r"""["'](?:fid|kid|fd_dinov2|lpips|ssim|ssim_256|ssim_gauss|psnr|mae|l1|pckh|pckh_target|pose_dist"""
                   r"""|pose_detected|pose|prdc|precision|recall|density|coverage|cmmd|fvd|flicker|tof|tlp)["']""")
FLOOR = r"""["'](?:copy-source|oracle|keypoint-warp)["']"""
MODEL = r"""["'](?:copy-source|oracle|keypoint-warp|fpdm|pidm|cfld|pocold)["']"""


def _lines():
    for path in sorted(PACKAGE.rglob("*.py")):
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            yield path.relative_to(PACKAGE.parent), no, line


def test_no_list_of_built_in_metric_names_outside_their_classes_and_records():
    listed = re.compile(rf"{BUILT_IN_METRIC}\s*,\s*{BUILT_IN_METRIC}")  # items of a tuple/list/set: "fid", "kid"
    titled = re.compile(rf"{BUILT_IN_METRIC}\s*:\s*\(\s*[\"']")  # a title map: "fid": ("FID", ...)
    bad = [f"{p}:{no}: {line.strip()}" for p, no, line in _lines()
           if (listed.search(line) and p.as_posix() != "fpdm_bench/protocols/records.py")
           or (titled.search(line) and p.parent.as_posix() != "fpdm_bench/metrics")]
    assert not bad, "metric names listed outside their classes:\n" + "\n".join(bad)


def test_no_list_of_floor_names_or_model_colours():
    two_floors = re.compile(rf"{FLOOR}.*{FLOOR}")
    colour = re.compile(rf"{MODEL}\s*:\s*[\"']#")
    bad = [f"{p}:{no}: {line.strip()}" for p, no, line in _lines()
           if two_floors.search(line) or colour.search(line) or ("copy-source" in line and "oracle" in line)]
    assert not bad, "floor names or model colours listed outside their adapters:\n" + "\n".join(bad)


def test_weight_files_and_compare_statistics_are_not_kept_outside_the_metric_classes():
    bad = [f"{p}:{no}: {line.strip()}" for p, no, line in _lines()
           if ("WeightSpec(" in line and p.parent.as_posix() != "fpdm_bench/metrics" and "class WeightSpec" not in line)
           or (p.parts[1] in ("stats", "reporting", "results.py", "weights.py")
               and re.search(r"metrics\.(fid|kid|fd_dinov2|lpips|ssim|psnr|mae|l1|pose|prdc|cmmd|fvd|flicker|tof|tlp) import", line))]
    assert not bad, "metric facts kept outside the metric classes:\n" + "\n".join(bad)
