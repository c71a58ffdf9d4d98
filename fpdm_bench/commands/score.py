"""`fpdm-bench score`, `fpdm-bench weights`, `fpdm-bench protocols`.

score --dataset D --generated DIR   score a folder of generated images against D's pairs
score --real DIR --generated DIR    score two plain folders (files paired by name)

Generated files are matched to pairs by any of the names the repos write: ``<pair_id>.png``
(fpdm-bench; pair id = '<source stem>_2_<target stem>'), ``<pair_id>_vis.png`` (GFLA/PIDM/PoCoLD),
``<source file>_2_<target file>.png`` (FPDM), each with any image suffix.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fpdm_bench.errors import DataError


def list_images(folder: Path) -> list[Path]:
    """Image files below folder, sorted; a DataError if it is not a folder or holds none."""
    from fpdm_bench.data.base import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(folder, f"contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_image(path: Path, convert: bool = False):
    """Decode a generated/real image to float [3,H,W]. Grayscale, RGBA or palette images are an error
    (they usually mean a wrong export) unless ``convert`` (then converted to RGB, alpha dropped)."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                if not convert:
                    kind = {"L": "grayscale", "LA": "grayscale+alpha", "RGBA": "RGBA", "P": "palette",
                            "I;16": "16-bit grayscale", "CMYK": "CMYK"}.get(im.mode, im.mode)
                    raise DataError(path, f"is a {kind} image (mode {im.mode}); generated and real images must "
                                          f"be RGB. Re-export them, or pass --convert to convert to RGB")
                im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"unreadable image ({e})") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(path, f"unreadable image ({e})") from None


def check_one_size(files: list[Path], folder: Path) -> tuple[int, int]:
    """All files must share one size; else a DataError listing the sizes found."""
    sizes: dict[tuple[int, int], list[Path]] = {}
    for f in files:
        sizes.setdefault(image_size(f), []).append(f)
    if len(sizes) > 1:
        desc = ", ".join(f"{h}x{w}: {len(v)} (e.g. {v[0].name})" for (h, w), v in
                         sorted(sizes.items(), key=lambda kv: -len(kv[1])))
        raise DataError(folder, f"images of mixed sizes ({desc}); they look like outputs of different runs. "
                                f"Put one run's images in the folder, or pass --size HxW to resize all of them")
    return next(iter(sizes))


def candidate_names(rec) -> list[str]:
    s, t = Path(rec.source).name, Path(rec.target).name
    return [rec.pair_id, f"{rec.pair_id}_vis", f"{s}_2_{t}", f"{Path(s).stem}_2_{t}"]


def match_generated(pairs, files: list[Path], folder: Path) -> list[Path]:
    """The generated file of each pair (see module docstring), or a DataError naming what is missing."""
    by_stem: dict[str, Path] = {}
    for f in files:
        by_stem.setdefault(f.stem, f)
        by_stem.setdefault(f.name, f)
    out, missing = [], []
    for rec in pairs:
        hit = next((by_stem[n] for n in candidate_names(rec) if n in by_stem), None)
        if hit is None:
            missing.append(rec)
        out.append(hit)
    if missing:
        ex = missing[0]
        raise DataError(folder, f"has {len(files)} images but {len(missing)} of the {len(pairs)} pairs have no "
                                f"generated image; e.g. pair {ex.pair_id}: looked for "
                                f"{', '.join(n + '.png' for n in candidate_names(ex))}. Score a subset with --limit")
    return out


def score_dataset(dataset, generated: Path, protocol: str = "standard", device: str = "cpu", batch_size: int = 16,
                  limit: int | None = None, convert: bool = False, size=None, log=None, **scorer_kwargs) -> dict:
    """Score a folder of generated images against a dataset's pairs; returns the results dict."""
    import torch

    from fpdm_bench.data.base import collate
    from fpdm_bench.scoring import Scorer

    pairs = dataset.pairs[:limit] if limit else dataset.pairs
    files = list_images(generated)
    matched = match_generated(pairs, files, Path(generated))
    if size is None:
        check_one_size(matched, Path(generated))
    scorer = Scorer(protocol, device=device, dataset=dataset, log=log, **scorer_kwargs)
    index = {r.pair_id: i for i, r in enumerate(dataset.pairs)}
    records = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start: start + batch_size]
        batch = collate([dataset[index[r.pair_id]] for r in chunk])
        gen = [read_image(p, convert) for p in matched[start: start + batch_size]]
        if size is not None:  # image by image: --size is how mixed sizes are scored
            from fpdm_bench.protocols.apply import resize

            gen = [resize(g[None], tuple(size), scorer.protocol)[0] for g in gen]
        gen = torch.stack(gen)
        for pid, m in zip(batch["pair_id"], scorer.paired(gen, batch)):
            records.append({"pair_id": pid, "metrics": m})
        scorer.update_set(gen, ids=list(batch["pair_id"]))
    metrics = scorer.finalize(records)
    return {"mode": "dataset", "generated": str(generated), "n": len(records),
            "dataset": dataset.describe(), "protocol": scorer.describe(), "metrics": metrics,
            "per_sample": records}


def score_folders(real: Path, generated: Path, protocol: str = "standard", device: str = "cpu", batch_size: int = 16,
                  convert: bool = False, size=None, log=None, **scorer_kwargs) -> dict:
    """Score two plain folders: files paired by name (stem); FID/KID reference = all of ``real``."""
    import torch

    from fpdm_bench.scoring import Scorer

    real_files, gen_files = list_images(real), list_images(generated)
    real_by = {p.stem: p for p in real_files}
    gen_by = {p.stem: p for p in gen_files}
    missing = sorted(set(real_by) - set(gen_by))
    if missing:
        raise DataError(generated, f"has {len(gen_files)} images but {len(missing)} of the {len(real_files)} real "
                                   f"images have no generated image of the same name (e.g. {missing[0]})")
    names = sorted(real_by)
    if size is None:
        rs = check_one_size(real_files, Path(real))
        gs = check_one_size([gen_by[n] for n in names], Path(generated))
        if rs != gs:
            raise DataError(generated, f"images are {gs[0]}x{gs[1]} but the real images are {rs[0]}x{rs[1]}; "
                                       f"pass --size HxW to compare them at one size")
        size = rs
    scorer = Scorer(protocol, device=device, reference_paths=real_files, size=tuple(size), log=log, **scorer_kwargs)
    records = []
    for start in range(0, len(names), batch_size):
        chunk = names[start: start + batch_size]
        from fpdm_bench.protocols.apply import resize

        gen, tgt = ([resize(read_image(f[n], convert)[None], tuple(size), scorer.protocol)[0] for n in chunk]
                    for f in (gen_by, real_by))
        gen, tgt = torch.stack(gen), torch.stack(tgt)
        for n, m in zip(chunk, scorer.paired(gen, {"target": tgt})):
            records.append({"pair_id": n, "metrics": m})
        scorer.update_set(gen, ids=chunk)
    metrics = scorer.finalize(records)
    return {"mode": "folders", "real": str(real), "generated": str(generated), "n": len(records),
            "dataset": {"name": f"folder:{Path(real).name}"}, "protocol": scorer.describe(), "metrics": metrics,
            "per_sample": records}


def _weights_opt(values) -> dict:
    out = {}
    for v in values or ():
        name, sep, path = v.partition("=")
        if not sep:
            raise click.BadParameter(f"--weights takes NAME=PATH (got {v!r})")
        out[name] = path
    return out


@click.command("score")
@click.option("--dataset", default=None, help="Dataset whose pairs the generated images belong to.")
@click.option("--data-root", default=None, help="Dataset folder (default: data/<dataset>).")
@click.option("--split", default="test", show_default=True)
@click.option("--generated", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of generated images.")
@click.option("--real", default=None, type=click.Path(exists=True, file_okay=False),
              help="Folder of real images (instead of --dataset): files paired by name.")
@click.option("--protocol", default="standard", show_default=True, help="Evaluation protocol (see `fpdm-bench protocols`).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write results.json here.")
@click.option("--limit", type=int, default=None, help="Only the first N pairs of the dataset.")
@click.option("--size", default=None, help="Resize generated images to HxW first (mixed sizes, other resolutions).")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--device", default=None, help="cpu or cuda[:i] (default: cuda when available).")
@click.option("--convert", is_flag=True, help="Convert grayscale/RGBA/palette images to RGB instead of refusing them.")
@click.option("--weights", "weight_paths", multiple=True, help="NAME=PATH of a weight file (see `fpdm-bench weights`).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def score_cmd(dataset, data_root, split, generated, real, protocol, out, limit, size, batch_size, device, convert,
              weight_paths, force):
    """Score a folder of generated images (against a dataset's pairs, or a folder of real images)."""
    from fpdm_bench.env import environment, git_commit
    from fpdm_bench.io import atomic_write_text
    from fpdm_bench.report import format_table

    import torch

    from fpdm_bench.cli import _size

    if (dataset is None) == (real is None):
        raise click.UsageError("give exactly one of --dataset or --real")
    if out and Path(out).exists() and not force:  # checked before the work, and nothing is overwritten
        raise DataError(out, "exists; choose another --out or pass --force to overwrite it")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    kw = dict(protocol=protocol, device=device, batch_size=batch_size, convert=convert, size=_size(size), log=log,
              weights=_weights_opt(weight_paths))
    if dataset:
        from fpdm_bench.data import open_dataset

        ds = open_dataset(dataset, data_root, split)
        results = score_dataset(ds, Path(generated), limit=limit, **kw)
    else:
        results = score_folders(Path(real), Path(generated), **kw)
    results.update({"command": " ".join(sys.argv), "environment": environment(device), "git_commit": git_commit(),
                    "model": {"name": _model_name(Path(generated))}})
    if out:
        atomic_write_text(out, json.dumps(results, indent=2, sort_keys=True) + "\n")
        log(f"results: {out}")
    click.echo(format_table([results]))


def _model_name(folder: Path) -> str:
    """A table label for a folder: run directories keep their images in samples/, so use the run's name."""
    folder = folder.resolve()
    return folder.parent.name if folder.name == "samples" else folder.name


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


@click.command("protocols")
@click.argument("name", required=False)
def protocols_cmd(name):
    """List the evaluation protocols with their settings (or show one in full)."""
    from fpdm_bench.protocols import PROTOCOLS, get_protocol

    if name:
        click.echo(json.dumps(get_protocol(name).to_dict(), indent=2))
        return
    for n in PROTOCOLS.names():
        p = get_protocol(n)
        size = "x".join(map(str, p.eval_size)) if p.eval_size else "native"
        aa = "+aa" if p.resize_antialias else ""
        click.echo(f"{n:10s} {p.description}")
        click.echo(f"{'':10s}   size {size}, resize {p.resize_library}/{p.resize_filter}{aa}, quantize {p.quantize}; "
                   f"FID {p.fid_backbone} vs {p.fid_reference_split or 'dataset default'} split"
                   f"{f', drop remainder of {p.fid_drop_remainder}' if p.fid_drop_remainder else ''}; "
                   f"SSIM {p.ssim_variants}; LPIPS {p.lpips_net if 'lpips' in p.metrics else '-'}"
                   f"{f' (drop remainder of {p.lpips_drop_remainder})' if p.lpips_drop_remainder else ''}; "
                   f"MAE {p.mae_variant if 'mae' in p.metrics else '-'}")
        click.echo(f"{'':10s}   source: {p.source}")
