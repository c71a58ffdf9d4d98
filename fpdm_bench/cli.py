"""The `fpdm-bench` command line.

Every option of `run` can also come from a YAML file (`--config run.yaml`, keys = option names with
underscores); flags given on the command line win. The config that ran is saved in results.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fpdm_bench import __version__
from fpdm_bench.commands.lazy import LazyGroup
from fpdm_bench.commands.options import (existing_data_root, load_config, parse_key_values, parse_size, parse_weights,
                                         valid_device)
from fpdm_bench.errors import BenchError
from fpdm_bench.registry import UnknownName


# fpdm-bench's own commands that live in other modules; packages add theirs (the reference FPDM's
# train / eval / fpdm groups, a baseline's tools) through the fpdm_bench.commands entry points.
COMMANDS = {"score": "fpdm_bench.commands.score:score_cmd", "weights": "fpdm_bench.commands.weights:weights_cmd",
            "protocols": "fpdm_bench.commands.protocols:protocols_cmd",
            "compare": "fpdm_bench.commands.compare:compare_cmd", "grid": "fpdm_bench.commands.grid:grid_cmd",
            "sweep": "fpdm_bench.commands.sweep:sweep_cmd",
            "profile": "fpdm_bench.commands.profile:profile_cmd"}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             lazy=COMMANDS, entry_point_group="fpdm_bench.commands")
@click.version_option(__version__, prog_name="fpdm-bench")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error (a bug) instead of one line.")
def main(debug):
    """fpdm-bench: run and score pose-guided person image synthesis models on the same pairs.

    \b
    Quick start (embedded synthetic data, made on first use, offline):
      fpdm-bench run --model keypoint-warp --dataset synthetic --out runs/kw
      fpdm-bench report runs/kw

    \b
    Exit status: 0 done; 1 compare found a regression, or an unexpected error (a bug: one line,
    the traceback with --debug); 2 a bad option, input or file, disk full, no CUDA, ... (one line
    "error: ..."); 130 interrupted. An interrupted or failed run resumes when rerun.
    """
    _STATE["debug"] = debug


_STATE = {"debug": False}  # set by main(); entry() reads it once the command has failed


# --- listing -----------------------------------------------------------------------------------


@main.command("models")
def models_cmd():
    """List the registered models (adapters)."""
    from fpdm_bench.models import MODELS

    for name in MODELS.names():
        click.echo(f"{name:16s} {MODELS.help(name)}")


@main.command("perturbations")
def perturbations_cmd():
    """List the input perturbations of --perturb and `sweep`, with their severity levels 1-5."""
    from fpdm_bench.perturb import PERTURBATIONS

    for name in PERTURBATIONS.names():
        click.echo(f"{name:18s} {PERTURBATIONS.help(name)}")


@main.command("datasets")
def datasets_cmd():
    """List the registered datasets and where each is looked for."""
    from fpdm_bench.data import DATASETS, default_root

    for name in DATASETS.names():
        click.echo(f"{name:18s} {DATASETS.help(name)}  [default root: {default_root(name)}]")


# --- data ----------------------------------------------------------------------------------------


@main.group("data")
def data_grp():
    """Make or inspect datasets."""


@data_grp.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the dataset to.")
@click.option("--kind", type=click.Choice(["deepfashion", "phoenix"]), default="deepfashion", show_default=True,
              help="DeepFashion layout (full-body people) or PHOENIX-2014T layout (upper-body signers).")
@click.option("--seed", default=0, show_default=True, help="Same seed gives byte-identical files.")
@click.option("--size", default=None, help="Image size HxW (default 256x176; PHOENIX 260x210).")
@click.option("--train-identities", type=click.IntRange(min=1), default=None, help="Train identities (PHOENIX: train videos).")
@click.option("--test-identities", type=click.IntRange(min=1), default=None, help="Test identities (PHOENIX: test videos).")
@click.option("--poses", type=click.IntRange(min=2), default=None, help="Poses per identity (PHOENIX: frames per video).")
def data_synth(out, kind, seed, size, train_identities, test_identities, poses):
    """Generate the embedded synthetic dataset (deterministic from --seed)."""
    from fpdm_bench.data import synth

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BenchError(f"{out} is not empty: refusing to overwrite; choose another --out or delete it")
    kwargs = {"seed": seed}
    if size:
        kwargs["size"] = tuple(parse_size(size))
    if kind == "deepfashion":
        for k, v in (("train_identities", train_identities), ("test_identities", test_identities), ("poses", poses)):
            if v is not None:
                kwargs[k] = v
        summary = synth.synthesize_deepfashion(out, **kwargs)
    else:
        for k, v in (("train_videos", train_identities), ("test_videos", test_identities), ("frames", poses)):
            if v is not None:
                kwargs[k] = v
        summary = synth.synthesize_phoenix(out, **kwargs)
    click.echo(json.dumps(summary, indent=2, default=str))


# --- run -----------------------------------------------------------------------------------------


@main.command("run")
@click.option("--config", type=click.Path(dir_okay=False, exists=True), callback=load_config, is_eager=True,
              expose_value=False, help="YAML file of option values (flags given here override it).")
@click.option("--model", required=True, help="Model name (see `fpdm-bench models`).")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset name (see `fpdm-bench datasets`).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Run directory. Rerunning the same command resumes there.")
@click.option("--data-root", default=None, callback=existing_data_root,
              help="Dataset folder, which must exist (default: data/<dataset>, made on first use for the synthetic sets).")
@click.option("--split", default="test", show_default=True)
@click.option("--size", default=None,
              help="Load images at HxW (default: the protocol's evaluation size, else the dataset's native size).")
@click.option("--checkpoint", default=None, help="Model checkpoint (folder or file); model default if omitted.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampling steps (diffusion models).")
@click.option("--guidance", type=float, default=None, help="Guidance scale (diffusion models).")
@click.option("--scheduler", default=None, help="Sampler, e.g. ddpm, ddim, dpmpp (diffusion models).")
@click.option("--model-arg", "model_arg", multiple=True, metavar="KEY=VALUE",
              help="Any other argument of the model's from_pretrained (repeatable; VALUE read as YAML), e.g. temperature=1 or residual_threshold=0 for fpdm, weights=model or canvas=[256,256] for pidm, layout=pidm for images.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N pairs (before sharding).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Run seed; each pair's generator is seeded from sha256(seed, pair id).")
@click.option("--device", default=None, callback=valid_device, help="cpu or cuda[:i] (default: cuda when available).")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True)
@click.option("--shard", default="0/1", show_default=True,
              help="i/n: this process takes pairs i, i+n, ...; the last shard to finish writes results.json.")
@click.option("--protocol", default="standard", show_default=True, help="Evaluation protocol (see `fpdm-bench protocols`).")
@click.option("--skip-bad", is_flag=True, help="Skip (and count) pairs with bad images instead of stopping.")
@click.option("--convert", is_flag=True, help="Read grayscale/RGBA/palette dataset images as RGB instead of refusing them.")
@click.option("--reference-folder", default=None, type=click.Path(exists=True, file_okay=False),
              help="Reference images of FID/KID (default: the protocol's rule, e.g. the train split).")
@click.option("--allow-upsampled", is_flag=True,
              help="Score even if real images are smaller than the protocol's evaluation size (recorded).")
@click.option("--weights", "weight_paths", multiple=True, metavar="NAME=PATH",
              help="A metric weight file (see `fpdm-bench weights`); repeatable.")
@click.option("--perturb", default=None, metavar="NAME:SEVERITY",
              help="Perturb every pair's inputs, e.g. pose.jitter:3 (severity 0-5; see `fpdm-bench perturbations`). "
                   "Deterministic per (seed, pair); part of the run's identity.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DataLoader workers decoding the next batches while the model runs (0: in the main process).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run_cmd(model, dataset, out, data_root, split, size, checkpoint, steps, guidance, scheduler, model_arg, limit,
            batch_size, seed, device, dtype, shard, protocol, skip_bad, convert, reference_folder, allow_upsampled,
            weight_paths, perturb, workers, no_progress):
    """Generate and score MODEL on DATASET's pairs; writes OUT/samples, samples.jsonl, results.json.

    \b
    Rerunning the same command resumes an interrupted run, and reads the results of a finished one
    without running anything. One process per shard: a second launch on the same run directory is
    refused. Under torchrun (or accelerate launch) each rank runs a strided share of the pairs and
    rank 0 writes results.json:
      torchrun --nproc_per_node 8 $(which fpdm-bench) run --model fpdm --dataset deepfashion --out runs/df
    """
    import torch

    from fpdm_bench.report import format_table
    from fpdm_bench.runner import RunConfig, run

    model_args = {**parse_key_values(model_arg, "--model-arg"),
                  **{k: v for k, v in (("steps", steps), ("guidance", guidance), ("scheduler", scheduler)) if v is not None}}
    cfg = RunConfig(model=model, dataset=dataset, out=out, data_root=data_root, split=split, size=parse_size(size),
                    checkpoint=checkpoint, model_args=model_args, limit=limit, batch_size=batch_size, seed=seed,
                    device=device or ("cuda" if torch.cuda.is_available() else "cpu"), dtype=dtype, shard=shard,
                    protocol=protocol, skip_bad=skip_bad, convert=convert, reference_folder=reference_folder,
                    allow_upsampled=allow_upsampled, weights=parse_weights(weight_paths), perturb=perturb,
                    workers=workers, progress=not no_progress)
    results = run(cfg, log=lambda m: click.echo(m, err=True))
    if results is not None:
        click.echo(format_table([results]))
        click.echo(f"results: {Path(out) / 'results.json'}", err=True)


@main.command("merge")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def merge_cmd(run_dir):
    """Write RUN_DIR/results.json from the finished shards of a sharded run."""
    from fpdm_bench.report import format_table
    from fpdm_bench.runner import merge

    results = merge(run_dir, log=lambda m: click.echo(m, err=True))
    if results is None:
        sys.exit(1)
    click.echo(format_table([results]))


@main.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "csv"]), default="text", show_default=True,
              help="Format of the printed table (without --out).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Write the full report to this folder (tables, figures, index.html) instead of printing a table.")
@click.option("--stage1", "stage1", default=None, type=click.Path(exists=True),
              help="A stage-1 evaluation (`fpdm-bench eval stage1 --out DIR`: DIR or its stage1_eval.json) to draw "
                   "the similarity-ranking figure from.")
@click.option("--rows", type=click.IntRange(min=1), default=6, show_default=True, help="Grid rows: pairs evenly spaced over the runs' pairs.")
@click.option("--pairs", default=None, help="Grid rows: comma-separated pair ids instead of --rows.")
@click.option("--baseline", default=None,
              help="Model (or run label) the per-sample view compares every other model with "
                   "(default: the first model that is not a floor).")
@click.option("--k", "top_k", type=click.IntRange(min=1), default=4, show_default=True,
              help="Per-sample view: how many best and worst pairs to show.")
@click.option("--sample-metric", default=None,
              help="Per-sample view: the paired metric (default: the first of lpips, ssim, mae, psnr that every run has).")
@click.option("--cell-height", type=click.IntRange(min=16), default=None,
              help="Downscale grid and per-sample images to this height in px (default: the samples' own size).")
@click.option("--floors", default=",".join(("copy-source", "oracle", "keypoint-warp")), show_default=True,
              help="Models shown below the rule of the tables and never ranked.")
@click.option("--title", default=None, help="Title of index.html.")
@click.option("--label", "labels", multiple=True, metavar="RUN=NAME",
              help="Name a run in tables and figures (repeatable), e.g. --label runs/fpdm-a=\"FPDM (ours)\". RUN: "
                   "a run directory as given (or its results.json, or its folder name). Default: the model name "
                   "(\"[random weights]\" where so), plus the folder where two runs of one table share it.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the significance bootstrap.")
@click.option("--force", is_flag=True, help="Replace an existing report folder at --out.")
def report_cmd(runs, fmt, out, stage1, rows, pairs, baseline, top_k, sample_metric, cell_height, floors, title, seed,
               force, labels):
    """Print a metric table of RUNS, or with --out write a report folder.

    \b
    Without --out: a table of one or more run directories (or results.json files), as text,
    Markdown or CSV.

    \b
    With --out DIR, the inputs may also be sweep folders (`fpdm-bench sweep`) and profile JSON files
    (`fpdm-bench profile --out`), told apart by their content; DIR gets:
      tables/     Markdown + LaTeX (booktabs) + CSV: best model per column in bold, arrows from the
                  metric registry, 95 % CIs, protocol and dataset under the table, floors below a
                  rule, * = the lead of the best model over the second is significant (paired
                  bootstrap of the per-sample differences; FID/KID from the results.json CIs)
      figures/    grid (source | target pose | ground truth | models), the per-sample view (pairs
                  where two models differ most), robustness curves, timing charts, the stage-1
                  ranking; PNG at 300 dpi, PDF + SVG for vector figures, the data as CSV
      index.html  everything on one static page (relative links, no script)
    Example:
      fpdm-bench report runs/synthetic/* runs/sweep-synthetic runs/profile-fpdm.json --out reports/mine
    """
    import shlex

    from fpdm_bench.report import format_table, load_results

    if out is None:
        extra = {"--stage1": stage1, "--pairs": pairs, "--baseline": baseline, "--sample-metric": sample_metric,
                 "--cell-height": cell_height, "--title": title, "--label": labels or None}
        given = [k for k, v in extra.items() if v is not None] + (["--force"] if force else [])
        if given:
            raise BenchError(f"{given[0]} is an option of the report folder: add --out DIR")
        from fpdm_bench.reporting import classify

        for r in runs:
            kind = classify(r)
            if kind != "run":
                raise BenchError(f"{r} is a {kind} input: it goes into a report folder (add --out DIR); "
                                 "without --out, report prints the table of run directories")
        click.echo(format_table([load_results(r) for r in runs], fmt=fmt))
        return
    from fpdm_bench.reporting import build_report

    opts = [("--stage1", stage1), ("--pairs", pairs), ("--rows", rows if rows != 6 else None),
            ("--baseline", baseline), ("--k", top_k if top_k != 4 else None), ("--sample-metric", sample_metric),
            ("--cell-height", cell_height), ("--title", title), ("--seed", seed or None)] + [("--label", v) for v in labels]
    command = " ".join(["fpdm-bench report", *map(shlex.quote, runs), "--out", shlex.quote(out)]
                       + [f"{k} {shlex.quote(str(v))}" for k, v in opts if v is not None])
    build_report(runs, out, stage1=stage1, pairs=[p.strip() for p in pairs.split(",") if p.strip()] if pairs else None,
                 rows=rows, baseline=baseline, k=top_k, sample_metric=sample_metric, cell_height=cell_height,
                 floors=tuple(f.strip() for f in floors.split(",") if f.strip()), title=title, force=force, seed=seed,
                 command=command, labels=list(labels), log=lambda m: click.echo(m, err=True))


def _file_of(e: BaseException) -> str | None:
    """The file an I/O or decoding error is about: its own filename, else the innermost ``path`` (or
    ``file``/``filename``) of the frames it came through, since a failed write() or decode() names none."""
    name = getattr(e, "filename", None)
    if name:
        return str(name)
    tb, found = e.__traceback__, None
    while tb is not None:
        for var in ("path", "filename", "file"):
            v = tb.tb_frame.f_locals.get(var)
            if isinstance(v, (str, Path)) and str(v):
                found = str(v)
                break
        tb = tb.tb_next
    return found


def expected_error(e: BaseException) -> str | None:
    """The one-line message of a failure the user can fix (disk full, permissions, encodings, no
    CUDA); None for anything else, which is a bug and keeps its traceback under --debug."""
    import errno

    if isinstance(e, (BenchError, UnknownName)):
        return str(e)
    if isinstance(e, OSError):
        where = _file_of(e)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"disk full: no space left writing {where or 'a file'}; free space and rerun the same command "
                    "(a run folder resumes where it stopped)")
        if isinstance(e, PermissionError):
            return f"permission denied: {where or e}; check the folder's permissions or choose another path"
        return f"{e.strerror or e}: {where}" if where else f"I/O error: {e}"
    if isinstance(e, UnicodeDecodeError):
        return f"{_file_of(e) or 'a file or file name'}: not UTF-8 text ({e}); save it as UTF-8"
    if isinstance(e, UnicodeEncodeError):
        return f"cannot write {e.object[e.start:e.end]!r} as {e.encoding}; use a UTF-8 locale (PYTHONIOENCODING=utf-8)"
    torch = sys.modules.get("torch")
    if (isinstance(e, (RuntimeError, AssertionError)) and "cuda" in str(e).lower() and torch is not None
            and not torch.cuda.is_available()):
        return "CUDA is not available (" + str(e).splitlines()[0][:120] + "); use --device cpu"
    return None


def entry(args=None):
    """Console entry, the one error boundary: a failure the user can fix is one line "error: ..."
    and exit 2; anything else (a bug) is one line and exit 1, with the traceback under --debug."""
    _STATE["debug"] = False
    try:
        main(args=args, prog_name="fpdm-bench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted (a run folder resumes when the same command is rerun)", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:
        msg = expected_error(e)
        if msg is not None:
            click.echo(f"error: {msg}", err=True)
            sys.exit(2)
        if _STATE["debug"]:
            raise
        first = (str(e).splitlines() or [""])[0][:300]
        click.echo(f"internal error: {type(e).__name__}: {first} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    entry()
