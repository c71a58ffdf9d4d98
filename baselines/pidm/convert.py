"""``fpdm-bench pidm convert last.pt OUT``: an official checkpoint -> our folder format.

The folder (config.json + model.safetensors, the used weights only) loads without any unpickling and
records where it came from; the adapter reads both forms alike.
"""
from __future__ import annotations

from pathlib import Path

import click

from fpdm_bench_baselines.pidm.checkpoint import load_official, save_pretrained


def convert(src: str | Path, out: str | Path, weights: str = "ema") -> dict:
    from fpdm_bench.io import sha256_file
    from fpdm_bench_baselines.pidm.adapter import OFFICIAL, SAMPLING_DEFAULTS

    model, info = load_official(src, weights=weights)
    meta = {**OFFICIAL, "sampling": dict(SAMPLING_DEFAULTS), "format": "converted from an official last.pt",
            "converted_from": {"file": str(src), "sha256": sha256_file(src), "weights": weights,
                               "unused_official_keys_dropped": info["unused_official_keys"]}}
    save_pretrained(model, out, extra=meta)
    return meta


@click.command("convert")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--weights", type=click.Choice(["ema", "model"]), default="ema", show_default=True,
              help="which state dict of last.pt (the official inference uses ema)")
def convert_command(src, out, weights):
    """Convert an official PIDM last.pt (read with the restricted unpickler) into a folder with
    config.json + model.safetensors, usable as --checkpoint OUT."""
    meta = convert(src, out, weights)
    click.echo(f"{out}: {weights} weights of {src} ({meta['converted_from']['unused_official_keys_dropped']} "
               f"unused official tensors dropped)")
