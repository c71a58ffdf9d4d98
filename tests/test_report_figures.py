"""Report figures robust to what they are given (issue 25, item 5): timing charts under noisy
timings (median + IQR, no text overlapping the legend, every text inside the figure), one steps
value given as a table with a note, grid headers that do not collide, per-sample text that is not
cut, and a label per run (`report --label RUN=NAME`, `grid --label`)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import ImageDraw

from conftest import make_fixture
from fpdm_bench.cli import main
from fpdm_bench.errors import BenchError
from fpdm_bench.models import MODELS
from fpdm_bench.profile import summarize
from fpdm_bench.reporting import build_report, parse_labels, timing
from fpdm_bench.reporting._common import renderer
from fpdm_bench.reporting.grid import make_grid
from fpdm_bench.runner import RunConfig, run
from helpers import NoisyCopy

if "noisy-copy" not in MODELS:
    MODELS.register("noisy-copy", NoisyCopy, "test model")


# --- inputs -------------------------------------------------------------------------------------


def _noisy(median: float) -> dict:
    """Five timed calls around ``median`` s and one 10 s outlier (another job on the machine)."""
    return summarize([median * 0.97, median * 0.99, median, median * 1.02, median * 1.04, median + 10.0])


def _profile(model: str, steps_list, bss=(1, 4)) -> dict:
    rows = []
    for steps in steps_list:
        for bs in bss:
            total = 0.02 * (steps or 1) * (1 + 0.1 * bs)
            stages = {"source encoder": {"calls_per_batch": 1, "seconds_per_batch": _noisy(0.002 * bs)},
                      "denoiser": {"calls_per_batch": steps, "seconds_per_batch": _noisy(total * 0.7)},
                      "VAE decoder": {"calls_per_batch": 1, "seconds_per_batch": _noisy(total * 0.1)}}
            rows.append({"batch_size": bs, "steps": steps, "seconds_per_batch": _noisy(total),
                         "seconds_per_image": _noisy(total / bs), "stages": stages,
                         "metric_pass": {"total": _noisy(0.003 * bs)}})
    return {"format": "fpdm-bench/profile", "version": 1, "config": {"model": model, "device": "cpu"},
            "timing": {"warmup": 1, "repeats": 6, "torch_threads": 1}, "environment": {}, "rows": rows}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one model (different seeds) and a keypoint-warp run on 32x24 fixture images."""
    base = tmp_path_factory.mktemp("figs")
    root = make_fixture(base / "fixture")
    out = {}
    for name, model, seed in (("run-a", "noisy-copy", 0), ("run-b", "noisy-copy", 1), ("kw", "keypoint-warp", 0)):
        run(RunConfig(model=model, dataset="fixture", data_root=str(root), out=str(base / name), protocol="paired",
                      progress=False, workers=0, seed=seed), log=lambda s: None)
        out[name] = base / name
    return out


@pytest.fixture
def text_boxes(monkeypatch):
    """Every text PIL draws: (text, its bbox, the (W, H) of the image it is drawn on)."""
    drawn = []
    orig = ImageDraw.ImageDraw.text

    def text(self, xy, text, fill=None, font=None, *args, **kw):
        drawn.append((text, self.textbbox(xy, text, font=font), self.im.size))
        return orig(self, xy, text, fill, font, *args, **kw)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    return drawn


def _texts(fig):
    """Every text a figure draws, with its window extent (the renderer's): titles, axis labels,
    annotations, the tick labels of the ticks in view, the legends' texts."""
    r = renderer(fig)
    texts = []
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if lo <= tick.get_loc() <= hi:
                    texts.append(tick.label1)
    for leg in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        texts += leg.get_texts()
    return [(t, t.get_window_extent(r)) for t in texts if t.get_visible() and t.get_text().strip()]


def _inside(box, fig, tol=1.0):
    W, H = fig.bbox.width, fig.bbox.height
    return box.x0 >= -tol and box.y0 >= -tol and box.x1 <= W + tol and box.y1 <= H + tol


# --- timing charts ------------------------------------------------------------------------------


def test_stage_bars_show_the_iqr_so_an_outlier_does_not_squash_them():
    data = timing.bar_data([_profile("fpdm", [20]), _profile("pidm", [20])])
    fig = timing.build_bar_figure(data)
    ax = fig.axes[0]
    medians = {d["total_ms_per_image"] for d in data}
    # the 10 s outlier is in the CSV (total_max) but the axis stays at the bars' scale
    assert max(d["total_max"] for d in data) > 10_000
    assert ax.get_ylim()[1] < 1.5 * max(medians)
    # the whiskers span Q1..Q3 of the timed calls (profile.summarize's inclusive quartiles)
    for d in data:
        assert d["total_q1"] < d["total_ms_per_image"] < d["total_q3"] < 1.1 * d["total_ms_per_image"]
    whiskers = [seg for c in ax.containers if hasattr(c, "lines") and c.lines[2] for seg in c.lines[2][0].get_segments()]
    assert whiskers and all(max(s[:, 1]) < 1.1 * max(medians) for s in whiskers)
    # and the chart says what the whiskers are
    said = " ".join([ax.get_ylabel()] + [t.get_text() for t in fig.legends[0].get_texts()])
    assert "IQR" in said


def test_stage_chart_text_never_overlaps_the_legend_and_stays_inside():
    for profiles in ([_profile("fpdm", [20]), _profile("pidm", [20])],
                     [_profile(m, [10, 20]) for m in ("fpdm", "keypoint-warp [random weights]", "a-long-model-name")]):
        fig = timing.build_bar_figure(timing.bar_data(profiles))
        texts = _texts(fig)
        legend = (fig.legends + [fig.axes[0].get_legend()])[0]
        lbox = legend.get_window_extent(renderer(fig))
        inside_legend = set(map(id, legend.get_texts()))
        for t, box in texts:
            assert _inside(box, fig), t.get_text()
            if id(t) not in inside_legend:
                assert not box.overlaps(lbox), t.get_text()
        ticks = sorted((t.get_window_extent(renderer(fig)) for t in fig.axes[0].get_xticklabels() if t.get_text()),
                       key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 for a, b in zip(ticks, ticks[1:]))  # tick labels rotated when they would touch
        values = [box for t, box in texts if t in fig.axes[0].texts]
        assert values and not any(v.overlaps(lbox) for v in values)


def test_steps_chart_legend_outside_and_iqr():
    fig = timing.build_steps_figure(timing.step_data([_profile("fpdm", [10, 20]), _profile("pidm", [10, 20, 50])]))
    ax = fig.axes[0]
    assert "IQR" in ax.get_ylabel()
    lbox = fig.legends[0].get_window_extent(renderer(fig))
    assert not lbox.overlaps(ax.get_window_extent(renderer(fig)))
    for t, box in _texts(fig):
        assert _inside(box, fig), t.get_text()
    assert ax.get_ylim()[1] < 10_000  # the 10 s outliers are not drawn


def test_one_steps_value_is_a_table_with_a_note(tmp_path):
    for m in ("fpdm", "pidm"):
        (tmp_path / f"{m}.json").write_text(json.dumps(_profile(m, [20])))
    out = tmp_path / "rep"
    manifest = build_report([tmp_path / "fpdm.json", tmp_path / "pidm.json"], out, log=lambda s: None)
    arts = {a["name"]: a for a in manifest["artefacts"]}
    steps = arts["timing-steps"]
    assert "png" not in steps["files"] and not (out / "figures" / "timing-steps.png").exists()
    assert (out / steps["files"]["csv"]).is_file()
    assert "one sampler-steps value (20)" in steps["caption"]
    page = (out / "index.html").read_text()
    assert "is not drawn" in page and "<td>20</td>" in page  # the note and the table, on the page
    assert "png" in arts["timing-stages"]["files"]  # the stage chart is still drawn
    assert "interquartile" in arts["timing-stages"]["caption"]
    # two steps values: the chart again
    (tmp_path / "fpdm.json").write_text(json.dumps(_profile("fpdm", [10, 20])))
    manifest = build_report([tmp_path / "fpdm.json"], tmp_path / "rep2", log=lambda s: None)
    assert "png" in next(a for a in manifest["artefacts"] if a["name"] == "timing-steps")["files"]


# --- grid headers -------------------------------------------------------------------------------


def _header_boxes(drawn, header_height):
    return [b for _, b, _ in drawn if b[1] < header_height]


@pytest.mark.parametrize("width,font_size", [(64, 11), (24, 9), (128, 24), (40, 16)])
def test_grid_headers_do_not_collide(text_boxes, width, font_size):
    titles = ["source", "target pose", "ground truth", "keypoint-warp", "fpdm [random weights]", "noisy-copy (run-a)"]
    img = np.full((96, width, 3), 128, np.uint8)
    g = make_grid([(t, [img]) for t in titles], (96, width), header=16, font_size=font_size)
    header = g.height - 96
    boxes = _header_boxes(text_boxes, header)
    assert len(boxes) >= len(titles)
    for x0, y0, x1, y1 in boxes:
        c = int((x0 + x1) / 2 // width)
        # inside its own column with a clear gap (≥ 3 px) to the next, and inside the header
        assert c * width + 3 <= x0 and x1 <= (c + 1) * width - 3, (x0, x1, width)
        assert 0 <= y0 and y1 <= header
    # lines of one title do not overlap each other
    for a in boxes:
        for b in boxes:
            if a is not b:
                assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_report_grid_headers_fit_their_columns(runs, tmp_path, text_boxes):
    manifest = build_report([runs["run-a"], runs["run-b"], runs["kw"]], tmp_path / "rep", rows=2, k=1,
                            log=lambda s: None)
    grid = next(a for a in manifest["artefacts"] if a["section"] == "grid")
    h, w = grid["meta"]["cell"]
    assert grid["png_size"] == [w * len(grid["meta"]["columns"]), grid["meta"]["header"] + 2 * h]
    size = tuple(grid["png_size"])
    boxes = [b for _, b, s in text_boxes if s == size and b[1] < grid["meta"]["header"]]
    assert boxes
    for x0, y0, x1, y1 in boxes:
        c = int((x0 + x1) / 2 // w)
        assert c * w <= x0 and x1 <= (c + 1) * w and y1 <= grid["meta"]["header"]


# --- per-sample ---------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [None, ["run-a=a rather long baseline name", "run-b=another long model label"]])
def test_per_sample_text_is_inside_the_figure(runs, tmp_path, text_boxes, labels):
    kw = {"labels": labels} if labels else {}
    manifest = build_report([runs["run-a"], runs["run-b"]], tmp_path / "rep", rows=2, k=2, log=lambda s: None, **kw)
    per = [a for a in manifest["artefacts"] if a["section"] == "per_sample"]
    assert per
    assert any((labels[0].split("=")[1] if labels else "noisy-copy (run-a)") in t for t, _, _ in text_boxes)
    for text, (x0, y0, x1, y1), (W, H) in text_boxes:
        assert 0 <= x0 and 0 <= y0 and x1 <= W and y1 <= H, (text, (x0, y0, x1, y1), (W, H))


# --- labels -------------------------------------------------------------------------------------


def test_report_label_option_names_runs_everywhere(runs, tmp_path):
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", str(runs["run-a"]), str(runs["run-b"]), str(runs["kw"]), "--out",
                                    str(out), "--rows", "2", "--k", "1", "--label", "run-a=FPDM (ours)",
                                    "--label", f"{runs['run-b']}=PIDM re-run", "--baseline", "PIDM re-run"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    manifest = json.loads((out / "report.json").read_text())
    md = (out / manifest["artefacts"][0]["files"]["md"]).read_text()
    assert "| FPDM (ours) |" in md and "| PIDM re-run |" in md and "| keypoint-warp |" in md
    grid = next(a for a in manifest["artefacts"] if a["section"] == "grid")
    assert grid["meta"]["columns"][3:] == ["FPDM (ours)", "PIDM re-run", "keypoint-warp"]
    per = next(a for a in manifest["artefacts"] if a["section"] == "per_sample")
    assert per["meta"]["baseline"] == "PIDM re-run" and per["meta"]["model"] == "FPDM (ours)"
    assert "--label" in manifest["command"]
    assert set(manifest["options"]["labels"].values()) == {"FPDM (ours)", "PIDM re-run"}


def test_without_labels_two_runs_of_one_model_get_their_folder(runs, tmp_path):
    manifest = build_report([runs["run-a"], runs["run-b"]], tmp_path / "rep", rows=2, k=1, log=lambda s: None)
    grid = next(a for a in manifest["artefacts"] if a["section"] == "grid")
    assert grid["meta"]["columns"][3:] == ["noisy-copy (run-a)", "noisy-copy (run-b)"]


def test_random_weights_mark_kept_without_a_label(tmp_path):
    def results(name, model):
        d = tmp_path / name
        d.mkdir()
        (d / "results.json").write_text(json.dumps({
            "model": {"name": model}, "random_weights": True, "dataset": {"name": "d", "split": "test"},
            "protocol": {"name": "p"}, "n": 4, "metrics": {"ssim": {"metric": "ssim", "value": 0.5, "n": 4}}}))
        return d

    a, b = results("a", "fpdm"), results("b", "pidm")
    manifest = build_report([a, b], tmp_path / "rep", labels=["b=PIDM init"], log=lambda s: None)
    md = (tmp_path / "rep" / manifest["artefacts"][0]["files"]["md"]).read_text()
    assert "| fpdm [random weights] |" in md and "| PIDM init |" in md


def test_label_refusals(runs, tmp_path):
    ins = [runs["run-a"], runs["run-b"]]
    with pytest.raises(BenchError, match="not one of the run inputs"):
        parse_labels(["nope=x"], ins)
    with pytest.raises(BenchError, match="RUN=NAME"):
        parse_labels(["run-a"], ins)
    with pytest.raises(BenchError, match="empty"):
        parse_labels(["run-a="], ins)
    with pytest.raises(BenchError, match="two labels"):
        parse_labels(["run-a=x", "run-a=y"], ins)
    assert parse_labels(["run-a=x=y"], ins) == {runs["run-a"].resolve(): "x=y"}  # a NAME may hold "="
    assert parse_labels([f"{runs['run-a']}/results.json=r"], ins) == {runs["run-a"].resolve(): "r"}
    with pytest.raises(BenchError, match="give each its own"):
        build_report(ins, tmp_path / "rep", labels=["run-a=same", "run-b=same"], log=lambda s: None)
    res = CliRunner().invoke(main, ["report", str(runs["run-a"]), "--label", "run-a=x"])
    assert res.exit_code != 0 and "--out" in str(res.exception)  # a report-folder option
    help_text = CliRunner().invoke(main, ["report", "--help"]).output
    assert "--label RUN=NAME" in help_text


def test_grid_command_labels_and_distinct_titles(runs, tmp_path, monkeypatch):
    import fpdm_bench.commands.grid as grid_cmd

    seen = []
    real = grid_cmd.make_grid
    monkeypatch.setattr(grid_cmd, "make_grid", lambda columns, *a, **k: seen.append([c[0] for c in columns])
                        or real(columns, *a, **k))
    res = CliRunner().invoke(main, ["grid", str(runs["run-a"]), str(runs["run-b"]), "--out", str(tmp_path / "g.png"),
                                    "--rows", "2"])
    assert res.exit_code == 0, res.output
    assert seen[-1][2:] == ["noisy-copy (run-a)", "noisy-copy (run-b)"]
    res = CliRunner().invoke(main, ["grid", str(runs["run-a"]), str(runs["run-b"]), "--out", str(tmp_path / "g2.png"),
                                    "--rows", "2", "--label", "run-b=seed 1"])
    assert res.exit_code == 0, res.output
    assert seen[-1][2:] == ["noisy-copy", "seed 1"]
