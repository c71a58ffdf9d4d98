"""`fpdm-bench score`: score folders of generated images that another program wrote.

score --dataset D --generated DIR   score a folder of generated images against D's pairs
score --real DIR --generated DIR    score two plain folders (files paired by name)

The scoring is :mod:`fpdm_bench.folders` (how files are matched to pairs is in its docstring),
called through ``fpdm_bench.api.score``; this is the command line.
"""
from __future__ import annotations

import click

from fpdm_bench.commands.options import existing_data_root, parse_size, parse_weights, valid_device
# the scoring functions, imported from here by tests and benchmarks
from fpdm_bench.folders import score_dataset, score_folders  # noqa: F401


@click.command("score")
@click.option("--dataset", default=None, help="Dataset whose pairs the generated images belong to.")
@click.option("--data-root", default=None, callback=existing_data_root, help="Dataset folder (default: data/<dataset>).")
@click.option("--split", default="test", show_default=True)
@click.option("--generated", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of generated images.")
@click.option("--real", default=None, type=click.Path(exists=True, file_okay=False),
              help="Folder of real images (instead of --dataset): files paired by name.")
@click.option("--protocol", default="standard", show_default=True, help="Evaluation protocol (see `fpdm-bench protocols`).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write results.json here.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N pairs of the dataset.")
@click.option("--size", default=None, help="Resize generated images to HxW first (mixed sizes, other resolutions).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", default=None, callback=valid_device, help="cpu or cuda[:i] (default: cuda when available).")
@click.option("--convert", is_flag=True, help="Convert grayscale/RGBA/palette images to RGB instead of refusing them.")
@click.option("--weights", "weight_paths", multiple=True, help="NAME=PATH of a weight file (see `fpdm-bench weights`).")
@click.option("--reference-folder", default=None, type=click.Path(exists=True, file_okay=False),
              help="Reference images of FID/KID (default: the protocol's rule, e.g. the train split).")
@click.option("--allow-upsampled", is_flag=True,
              help="Score even if real images are smaller than the protocol's evaluation size (recorded).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def score_cmd(dataset, data_root, split, generated, real, protocol, out, limit, size, batch_size, device, convert,
              weight_paths, reference_folder, allow_upsampled, force):
    """Score a folder of generated images (against a dataset's pairs, or a folder of real images)."""
    from fpdm_bench.api import score
    from fpdm_bench.report import format_table

    if (dataset is None) == (real is None):
        raise click.UsageError("give exactly one of --dataset or --real")
    results = score(generated, dataset, real=real, data_root=data_root, split=split, protocol=protocol, out=out,
                    limit=limit, size=parse_size(size), batch_size=batch_size, device=device, convert=convert,
                    weights=parse_weights(weight_paths), reference_folder=reference_folder,
                    allow_upsampled=allow_upsampled, force=force, log=lambda m: click.echo(m, err=True))
    click.echo(format_table([results]))
