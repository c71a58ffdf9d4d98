"""`fpdm-bench weights`: which metric weight files are present, their sha256, where missing ones go
and where they are fetched from; `fpdm-bench weights fetch` fetches them."""
from __future__ import annotations

import json

import click

from fpdm_bench.errors import BenchError


@click.group("weights", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-hash", is_flag=True, help="Skip the sha256 of each file (faster).")
@click.pass_context
def weights_cmd(ctx, as_json, no_hash):
    """Show which metric weight files are present (and their sha256), where missing ones go and where
    they are fetched from. `fpdm-bench weights fetch` fetches them."""
    if ctx.invoked_subcommand is not None:
        return
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
            if r.get("fetch_from"):
                click.echo(f"{'':22s}          fetchable from {r['fetch_from']} (fpdm-bench weights fetch {r['name']})")
        click.echo(f"{'':22s}          used by: {r['used_by']}")


@weights_cmd.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every missing weight that has a source.")
@click.option("--mirror", metavar="URL", default=None,
              help="Fetch files from URL/<file name> instead of their canonical host (env: FPDM_BENCH_MIRROR).")
@click.option("--offline", is_flag=True, help="Touch no network: only report what is missing.")
def fetch_cmd(names, fetch_all, mirror, offline):
    """Fetch the named metric weights (or --all), verify their sha256 and install them in the torch hub
    cache (a transformers folder: the Hugging Face cache)."""
    from fpdm_bench import weights as W
    from fpdm_bench.weights_fetch import fetch, source_url

    known = W.specs()
    if not names and not fetch_all:
        raise click.UsageError(f"name the weights to fetch, or --all (known: {', '.join(known)})")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"unknown weight(s) {', '.join(unknown)} (known: {', '.join(known)})",
                                 param_hint="NAMES")
    failed = []
    for name in (names or known):
        spec = known[name]
        try:
            path = W.find(spec, fetch=False)
            click.echo(f"{name:22s} present  {path}")
            continue
        except BenchError:
            pass
        if not names and not (spec.hf_repo or source_url(spec, mirror)):
            click.echo(f"{name:22s} MISSING  no source to fetch it from (put it in {W.hub_dir()})")
            continue
        try:
            click.echo(f"{name:22s} fetched  {fetch(spec, mirror=mirror, offline=offline or None)}")
        except BenchError as e:
            failed.append(name)
            click.echo(f"{name:22s} FAILED   {e}", err=True)
    if failed:
        raise BenchError(f"{len(failed)} weight(s) not fetched: {', '.join(failed)}")
