"""`fpdm-bench weights`: which metric weight files are present, their sha256, where missing ones go
and where they are fetched from, and the official checkpoint releases; `fpdm-bench weights fetch`
fetches a metric weight, or a release into a new folder (``release_fetch.py``)."""
from __future__ import annotations

import difflib
import json

import click

from fpdm_bench.errors import BenchError


@click.group("weights", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-hash", is_flag=True, help="Skip the sha256 of each file (faster).")
@click.pass_context
def weights_cmd(ctx, as_json, no_hash):
    """Show which metric weight files are present (and their sha256), where missing ones go and where
    they are fetched from, then the official checkpoint releases. `fpdm-bench weights fetch` fetches
    them."""
    if ctx.invoked_subcommand is not None:
        return
    from fpdm_bench import weights as W

    rows = W.status(hash_files=not no_hash)
    releases = _release_rows({r["name"] for r in rows})
    if as_json:
        click.echo(json.dumps([{"kind": "weight", **r} for r in rows] + releases, indent=2))
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
    if releases:
        click.echo("official checkpoints (fpdm-bench weights fetch NAME --out DIR: download, verify, convert):")
    for r in releases:
        model = f" -> --model {r['model']}" if r.get("model") else ""
        click.echo(f"{r['name']:22s} release  {r['summary']}{model}; {r['fetch']}")


def _release_rows(weight_names: set[str]) -> list[dict]:
    """One row per registered release (its record read, nothing fetched)."""
    from fpdm_bench import releases as R
    from fpdm_bench.release_fetch import fetchability

    rows = []
    for name in _release_names(weight_names):
        try:
            rel = R.get(name)
        except Exception as e:  # noqa: BLE001  (a broken plug-in spoils its own row, not the listing)
            rows.append({"kind": "release", "name": name, "fetch": f"unavailable ({type(e).__name__}: {e})",
                         "summary": ""})
            continue
        rows.append({"kind": "release", "name": name, "model": rel.model, "fetch": fetchability(rel),
                     "summary": rel.summary, "where": rel.where,
                     "files": [{"name": f.name, "source": f.source(), "sha256": f.sha256} for f in rel.files],
                     "parts": [{"name": p.name, "repo": p.repo, "files": list(p.files)} for p in rel.parts]})
    return rows


def _release_names(weight_names: set[str]) -> list[str]:
    from fpdm_bench.releases import RELEASES

    names = RELEASES.names()
    clash = sorted(weight_names & set(names))
    if clash:
        raise BenchError(f"{', '.join(clash)}: both a metric weight and a release; `weights fetch` could not "
                         f"tell them apart: rename one of them")
    return names


@weights_cmd.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every missing metric weight that has a source.")
@click.option("--mirror", metavar="URL", default=None,
              help="Fetch files from URL/<file name> instead of their canonical host; a release's from "
                   "URL/<release>/<file> and URL/<release>/<part>/<path> (env: FPDM_BENCH_MIRROR).")
@click.option("--offline", is_flag=True, help="Touch no network: only report what is missing (a release: "
              "convert what was downloaded before).")
@click.option("--out", "out", metavar="DIR", default=None,
              help="A release: the new folder for the converted checkpoint (an existing non-empty one is refused).")
@click.option("--part", "parts", metavar="NAME=DIR|REPO", multiple=True,
              help="A release: take Hugging Face part NAME from a local folder, or from another Hub repo.")
def fetch_cmd(names, fetch_all, mirror, offline, out, parts):
    """Fetch the named metric weights (or --all), verify their sha256 and install them in the torch hub
    cache (a transformers folder: the Hugging Face cache); or fetch one official checkpoint release
    (`fpdm-bench weights` lists them) into a new folder that `fpdm-bench run --model M --checkpoint DIR`
    takes.

    \b
    A release is downloaded (Google Drive through gdown, if installed: pip install gdown; or a
    --mirror), the Stable Diffusion / CLIP / DINOv2 parts its model needs come from their Hugging
    Face repos, and the model's own converter writes DIR. No official release publishes a sha256, so
    none is checked: the verification is the converter's strict load, which refuses a truncated,
    damaged or wrong file, and DIR/provenance.json records each downloaded file's source, sha256 and
    size. Downloads are kept in $FPDM_BENCH_CACHE/releases/NAME (default ~/.cache/fpdm-bench) and
    reused; an interrupted one resumes. Example:

    \b
      fpdm-bench weights fetch pidm --out checkpoints/pidm
    """
    from fpdm_bench import weights as W
    from fpdm_bench.weights_fetch import fetch, fetch_source

    known = W.specs()
    releases = _release_names(set(known))
    if not names and not fetch_all:
        raise click.UsageError(f"name the weights to fetch, or --all (known: {', '.join(known)}; "
                               f"releases: {', '.join(releases)})")
    unknown = [n for n in names if n not in known and n not in releases]
    if unknown:
        hints = [f"{n!r} (did you mean {' or '.join(repr(c) for c in close)}?)" if close else repr(n)
                 for n in unknown for close in [difflib.get_close_matches(n, [*known, *releases], n=2, cutoff=0.5)]]
        raise click.BadParameter(f"unknown weight or release {', '.join(hints)}; known weights: {', '.join(known)}; "
                                 f"releases: {', '.join(releases)}", param_hint="NAMES")
    if any(n in releases for n in names):
        _fetch_release(names, fetch_all, mirror, offline, out, parts)
        return
    if out or parts:
        raise click.UsageError("--out and --part are for a release (see `fpdm-bench weights`)")
    failed = []
    for name in (names or known):
        spec = known[name]
        try:
            path = W.find(spec, fetch=False)
            click.echo(f"{name:22s} present  {path}")
            continue
        except BenchError:
            pass
        if not names and not fetch_source(spec, mirror):
            click.echo(f"{name:22s} MISSING  no source to fetch it from (put it in {W.hub_dir()})")
            continue
        try:
            click.echo(f"{name:22s} fetched  {fetch(spec, mirror=mirror, offline=offline or None)}")
        except BenchError as e:
            failed.append(name)
            click.echo(f"{name:22s} FAILED   {e}", err=True)
    if failed:
        raise BenchError(f"{len(failed)} weight(s) not fetched: {', '.join(failed)}")


def _fetch_release(names, fetch_all, mirror, offline, out, parts) -> None:
    from fpdm_bench import releases as R
    from fpdm_bench.release_fetch import fetch_release

    if len(names) > 1 or fetch_all:
        raise click.UsageError("a release is fetched alone: fpdm-bench weights fetch NAME --out DIR")
    if not out:
        raise click.UsageError(f"--out DIR is required for release {names[0]} (a new folder for the converted checkpoint)")
    part_dirs = {}
    for item in parts:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"{item!r}: expected NAME=DIR or NAME=REPO", param_hint="--part")
        part_dirs[key] = value
    fetch_release(R.get(names[0]), out, mirror=mirror, offline=offline or None, part_dirs=part_dirs, log=click.echo)
