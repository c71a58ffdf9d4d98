"""`fpdm-bench report INPUT… --out DIR`: paper-style tables and figures, and an index.html.

Inputs are told apart by their content: a run directory (or its results.json), a sweep folder (or
its sweep.json), a profile JSON (`fpdm-bench profile --out`), a stage-1 evaluation (its folder or
stage1_eval.json; also ``stage1=``). What is made, one module per kind:

    tables/      tables.py     Markdown + LaTeX + CSV per (dataset, protocol, perturbation); significance.csv
    figures/     grid.py       grid.png: source | target pose | ground truth | one column per model
                 per_sample.py per-sample-M-vs-B.png: the pairs where two models differ most
                 curves.py     robustness-<metric>.png/.pdf/.svg from sweeps
                 timing.py     timing-stages / timing-steps from profiles
                 stage1.py     stage1-ranking from a stage-1 evaluation
    videos/      videos.py     for datasets of video frames (PHOENIX): video-<k>-<id>.webp animations,
                               and figures/video-<k>-<id>-per-frame.* metric curves per frame
    index.html   html.py       every table and figure, relative links only, no script
    report.json                the artefacts, their files and the options used

Every figure's data is a CSV beside it. The folder is written to a temporary sibling and moved into
place at the end, so a failed report leaves the previous one as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from fpdm_bench.errors import BenchError, DataError
from fpdm_bench.reporting.tables import Row, group_key

__all__ = ["build_report", "classify", "is_floor", "parse_labels", "run_groups"]


def is_floor(model: str, floors=None) -> bool:
    """Whether runs of ``model`` go below the rule: it is in ``floors``, or with ``floors=None`` its
    registered adapter says ``floor = True`` (``fpdm_bench.models.floor_names()``; only this model's
    adapter is imported to read it, and a model not installed here is no floor)."""
    if floors is not None:
        return model in floors
    from fpdm_bench.models import model_fact

    return model_fact(model, "floor", False) is True


def classify(path) -> str:
    """'run', 'sweep', 'profile' or 'stage1' from what the path holds; a DataError otherwise."""
    from fpdm_bench.reporting import curves, timing

    p = Path(path)
    if curves.is_sweep(p):
        return "sweep"
    if p.is_dir():
        if (p / "results.json").is_file():
            return "run"
        if (p / "stage1_eval.json").is_file():
            return "stage1"
    elif p.suffix == ".json" and p.is_file():
        if timing.is_profile(p):
            return "profile"
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(p, f"not valid JSON ({e})") from None
        if isinstance(data, dict) and "metrics" in data:
            return "run"
        if isinstance(data, dict) and "queries" in data and "n_candidates" in data:
            return "stage1"
    raise DataError(p, "not a run directory / results.json, a sweep folder (sweep.json), a profile JSON "
                       "(`fpdm-bench profile --out`) or a stage-1 evaluation (stage1_eval.json)")


def run_folder(path: Path) -> Path:
    """The run folder of a run input (the folder itself, or its results.json), resolved."""
    p = Path(path)
    return (p if p.is_dir() else p.parent).resolve()


def parse_labels(specs, runs) -> dict[Path, str]:
    """``--label RUN=NAME`` values → {run folder (resolved): NAME}. RUN is a run input as given (its
    folder or its results.json) or the name of its folder; the split is at the first ``=`` whose left
    side names one of ``runs``, so a NAME may hold ``=``. A RUN that matches no run input, or more than
    one, and two labels for one run are errors."""
    runs = [Path(r) for r in runs]
    folders = [run_folder(r) for r in runs]
    out: dict[Path, str] = {}
    for spec in specs or ():
        if isinstance(spec, tuple):
            key, name = spec
            cands = [(key, name)]
        else:
            cands = [(spec[:i], spec[i + 1:]) for i, ch in enumerate(spec) if ch == "="]
        if not cands:
            raise BenchError(f"--label {spec}: give RUN=NAME (RUN: a run directory of the inputs or its folder name)")
        hit = None
        for key, name in cands:
            by_path = {f for r, f in zip(runs, folders) if key and run_folder(key) == f} if key else set()
            matches = by_path or {f for f in folders if key and f.name == key}
            if len(matches) > 1:
                raise BenchError(f"--label {spec}: {key!r} is the folder name of {len(matches)} runs; give its path")
            if matches:
                hit = (matches.pop(), name)
                break
        if hit is None:
            raise BenchError(f"--label {spec}: {cands[0][0]!r} is not one of the run inputs "
                             f"({', '.join(str(r) for r in runs) or 'none given'})")
        folder, name = hit
        name = name.strip()
        if not name:
            raise BenchError(f"--label {spec}: the label is empty")
        if folder in out and out[folder] != name:
            raise BenchError(f"--label: two labels for {folder.name} ({out[folder]!r} and {name!r})")
        out[folder] = name
    return out


def _run_row(path: Path, floors, labels: dict[Path, str] | None = None) -> Row:
    from fpdm_bench.results import Results

    res = Results.load(path)
    run_dir = path if path.is_dir() else path.parent
    given = (labels or {}).get(run_folder(path))
    if not any(run_dir.glob("samples*.jsonl")):
        run_dir = None
    return Row(label=given or res.label, results=res, floor=is_floor(res.model, floors), run_dir=run_dir,
               given_label=bool(given))


def _labels(rows: list[Row]) -> None:
    """Unique labels within a table: the label given (``--label``), else the model name (marked
    "[random weights]" where it is), plus the run folder where two runs share it. Two runs given
    the same label in one table are an error."""
    seen: dict[tuple, list[Row]] = {}
    for r in rows:
        seen.setdefault((group_key(r.results), r.label), []).append(r)
    for (_, label), same in seen.items():
        if len(same) < 2:
            continue
        if sum(r.given_label for r in same) > 1:
            raise BenchError(f"--label: {len(same)} runs of one table are labelled {label!r}; give each its own")
        for r in same:
            if r.given_label:
                continue
            where = r.run_dir or (r.results.path.parent if r.results.path else None)
            r.label = f"{label} ({where.name if where else '?'})"


def run_groups(paths, floors=None, labels: dict[Path, str] | None = None) -> list[list[Row]]:
    """The runs at ``paths`` (run directories or results.json files) as the report's tables hold
    them: one group per (dataset, split, protocol, perturbation, pairs), in the order given; each run
    named by its label (``labels``: what ``parse_labels`` returns; unique within a table) and marked
    floor or not (``floors``: see ``is_floor``)."""
    rows = [_run_row(Path(p), floors, labels) for p in paths]
    _labels(rows)
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        groups.setdefault(group_key(r.results), []).append(r)
    return list(groups.values())


def _prepare(out: Path, force: bool) -> Path:
    """A fresh temporary sibling folder of ``out``; refuses to replace a folder that is not a report."""
    if out.exists():
        if not out.is_dir():
            raise DataError(out, "exists and is not a folder")
        if any(out.iterdir()):
            if not force:
                raise DataError(out, "exists and is not empty; pass --force to replace the report there")
            if not (out / "report.json").is_file():
                raise DataError(out, "is not a report folder (no report.json); refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))


def build_report(inputs, out, *, stage1=None, pairs: list[str] | None = None, rows: int = 6,
                 baseline: str | None = None, k: int = 4, sample_metric: str | None = None,
                 cell_height: int | None = None, floors=None, title: str | None = None, force: bool = False,
                 seed: int = 0, command: str = "fpdm-bench report", labels=None, videos: int = 4,
                 video_fps: float | None = None, log=print) -> dict:
    """Write the report of ``inputs`` to ``out``; returns the manifest (report.json). ``labels``: the
    name each run goes by in tables and figures, as ``RUN=NAME`` strings (``--label``) or a
    {run: name} dict (see ``parse_labels``); runs without one go by their model name. ``floors``:
    the models shown below the tables' rule and never ranked; None: the registered floors
    (``fpdm_bench.models.floor_names()``). ``videos``: for runs on a dataset of video frames, how
    many videos get an animation and a per-frame figure (the first in dataset order; 0: none),
    played at ``video_fps`` (default ``videos.FPS``)."""
    from fpdm_bench import __version__
    from fpdm_bench.reporting import (curves, grid, html, per_sample, stage1 as stage1_mod, tables, timing,
                                      videos as videos_mod)

    out = Path(out)
    kinds: dict[str, list[Path]] = {"run": [], "sweep": [], "profile": [], "stage1": []}
    for p in inputs:
        kinds[classify(p)].append(Path(p))
    if stage1:
        kinds["stage1"].append(Path(stage1))
    if len(kinds["stage1"]) > 1:
        raise BenchError("give at most one stage-1 evaluation")
    if not any(kinds.values()):
        raise BenchError("nothing to report: give run directories, sweep folders or profile JSON files")
    if isinstance(labels, dict):
        labels = list(labels.items())
    given = parse_labels(labels, kinds["run"])
    groups = run_groups(kinds["run"], floors, given)
    run_rows = [r for g in groups for r in g]

    tmp = _prepare(out, force)
    try:
        arts = []
        colours: dict[str, str] = {}
        if groups:
            arts += tables.write_tables(groups, tmp / "tables", seed=seed, log=log)
            first = next((g for g in groups if any(r.run_dir for r in g)), None)
            if len(groups) > 1 and first:
                log("grid and per-sample view: drawn for the first group of runs with samples only "
                    f"({first[0].results.dataset}, {first[0].results.protocol})")
            if first:
                with_samples = [r for r in first if r.run_dir and (r.run_dir / "samples").is_dir()]
                if with_samples:
                    arts.append(grid.write_report_grid([r.label for r in with_samples],
                                                       [r.results for r in with_samples],
                                                       [r.run_dir for r in with_samples], tmp, pairs=pairs, rows=rows,
                                                       cell_height=cell_height))
                    log(f"grid: {len(arts[-1].meta['pairs'])} pairs x {len(arts[-1].meta['columns'])} columns")
                    arts += per_sample.write_per_sample(with_samples, baseline, tmp, k=k, metric=sample_metric,
                                                        cell_height=cell_height, log=log)
            # videos: the first group of runs on a dataset of video frames (one table's runs, same pairs)
            for g in groups if videos > 0 else ():
                with_samples = [r for r in g if r.run_dir and (r.run_dir / "samples").is_dir()]
                got = videos_mod.write_videos(with_samples, tmp, n=videos, cell_height=cell_height,
                                              fps=video_fps or videos_mod.FPS, sample_metric=sample_metric,
                                              colours=colours, log=log)
                arts += got
                if got:
                    break
        if kinds["sweep"]:
            arts += curves.write_curves(kinds["sweep"], tmp, log=log, colours=colours)
        if kinds["profile"]:
            arts += timing.write_timing(kinds["profile"], tmp, log=log, colours=colours)
        if kinds["stage1"]:
            arts += stage1_mod.write_stage1(kinds["stage1"][0], tmp, log=log)
        title = title or _default_title(run_rows)
        shown_inputs = [f"{kind}: {p}" for kind, ps in kinds.items() for p in ps]
        html.write_index(tmp, arts, title, shown_inputs, command, __version__)
        manifest = {"format": "fpdm-bench/report", "version": 1, "title": title, "command": command,
                    "fpdm_bench_version": __version__,
                    "inputs": {kind: [str(p) for p in ps] for kind, ps in kinds.items()},
                    "options": {"pairs": pairs, "rows": rows, "baseline": baseline, "k": k,
                                "sample_metric": sample_metric, "cell_height": cell_height,
                                "floors": _floor_list(floors, run_rows),
                                "seed": seed, "labels": {str(p): given[run_folder(p)] for p in kinds["run"]
                                           if run_folder(p) in given}},
                    "artefacts": [a.to_json() for a in arts]}
        if any(a.section == "videos" for a in arts):  # only then: reports without videos stay as they were
            manifest["options"].update(videos=videos, video_fps=video_fps or videos_mod.FPS)
        (tmp / "report.json").write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"report: {out}/index.html ({len(manifest['artefacts'])} tables and figures)")
    return manifest


def _floor_list(floors, rows: list[Row]) -> list[str]:
    """The floors option as report.json records it: as given, else the registered floors among the
    runs (in floor order; the full list would import every installed adapter)."""
    if floors is not None:
        return list(floors)
    from fpdm_bench.models import model_fact

    present = {r.results.model for r in rows if r.floor}
    return sorted(present, key=lambda m: (model_fact(m, "order", 0), m))


def _default_title(rows: list[Row]) -> str:
    if not rows:
        return "fpdm-bench report"
    ds = sorted({r.results.dataset for r in rows})
    return f"fpdm-bench report: {', '.join(ds)}"
