"""`fpdm-bench protocols [NAME]`: the evaluation protocols and their settings."""
from __future__ import annotations

import json

import click


@click.command("protocols")
@click.argument("name", required=False)
def protocols_cmd(name):
    """List the evaluation protocols with their settings (or show one in full)."""
    from fpdm_bench.protocols import PROTOCOLS, get_protocol

    if name:
        p = get_protocol(name)
        d = p.to_dict()
        cites = d.pop("citations")
        click.echo(json.dumps(d, indent=2))
        if cites:
            click.echo(f"\nwhere each setting comes from ({p.source}):")
            for key, where in cites.items():
                click.echo(f"  {key:15s} {where}")
        return
    for n in PROTOCOLS.names():
        p = get_protocol(n)
        size = "x".join(map(str, p.eval_size)) if p.eval_size else "native"
        aa = "+aa" if p.resize_antialias else ""
        click.echo(f"{n:15s} {p.description}")
        click.echo(f"{'':15s}   size {size}, resize {p.resize_library}/{p.resize_filter}{aa}, quantize {p.quantize}; "
                   f"set metrics vs {p.reference or 'the dataset default'} reference")
        click.echo(f"{'':15s}   metrics: {'; '.join(_metric_text(k, v) for k, v in p.metrics.items())}")
        click.echo(f"{'':15s}   source: {p.source}")


def _metric_text(key: str, settings: dict) -> str:
    extra = ", ".join(f"{k} {v}" for k, v in settings.items())
    return f"{key} ({extra})" if extra else key
