"""`fpdm-bench weights`: which metric weight files are present, their sha256, where missing ones go."""
from __future__ import annotations

import json

import click


@click.command("weights")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-hash", is_flag=True, help="Skip the sha256 of each file (faster).")
def weights_cmd(as_json, no_hash):
    """Show which metric weight files are present (and their sha256) and where missing ones go."""
    from fpdm_bench import weights as W

    rows = W.status(hash_files=not no_hash)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        if r["present"]:
            ok = {True: " (matches its name)", False: " (DOES NOT match the hash in its name)", None: ""}[r["sha256_ok"]]
            click.echo(f"{r['name']:22s} present  {r['path']}\n{'':22s}          sha256 {r['sha256'] or '-'}{ok}")
        else:
            click.echo(f"{r['name']:22s} MISSING  {r['missing']}")
        click.echo(f"{'':22s}          used by: {r['used_by']}")
