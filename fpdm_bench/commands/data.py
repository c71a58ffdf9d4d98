"""`fpdm-bench data`: make the embedded synthetic datasets."""
from __future__ import annotations

import json
from pathlib import Path

import click

from fpdm_bench.commands.options import parse_size
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
