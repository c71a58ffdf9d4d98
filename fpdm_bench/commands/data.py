"""`fpdm-bench data`: make the embedded synthetic datasets (`synth`) and check a dataset folder (`check`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from fpdm_bench.commands.options import existing_data_root, parse_size
from fpdm_bench.errors import BenchError


@click.group("data")
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


@data_grp.command("check")
@click.option("--dataset", default="synthetic", show_default=True,
              help="Registered dataset (`fpdm-bench datasets`): synthetic, synthetic-phoenix, deepfashion, "
                   "deepfashion-fpdm, phoenix, or a plug-in's.")
@click.option("--data-root", default=None, callback=existing_data_root,
              help="Dataset folder (default: data/<dataset>; an embedded synthetic set is made there on first use).")
@click.option("--split", default="test", show_default=True, help="Split to check (test or train).")
@click.option("--decode", is_flag=True,
              help="Decode every image fully (slower; a progress bar on a terminal). By default only the headers "
                   "and the files' end markers are read.")
@click.option("--convert", is_flag=True, help="Non-RGB images are no problem (as `run --convert` converts them).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object instead of text.")
def data_check(dataset, data_root, split, decode, convert, as_json):
    """Check a dataset folder before any model loads: what a run would use, and every problem.

    \b
    Prints the pair count and pairs_sha256 (the value results.json records), the distinct images,
    where the keypoints come from, a histogram of image sizes (read from the headers), whether the
    pairs are the standard split, and then one line per problem, naming the file (and line): a pair
    naming a missing image, a malformed or duplicate row, a missing keypoint file, an unreadable,
    truncated or non-RGB image, an image of another size than the layout's. Nothing is written.

    \b
    Exit status: 0 no problem; 2 problems found (or the folder cannot be opened at all).
    """
    from fpdm_bench.data.check import check_dataset

    report = check_dataset(dataset, data_root, split, decode=decode, convert=convert, progress=True)
    click.echo(report.to_json() if as_json else "\n".join(report.lines()))
    if not report.ok:
        raise BenchError(f"{len(report.problems)} problem(s) in {report.root} ({dataset}, {split} split)")
