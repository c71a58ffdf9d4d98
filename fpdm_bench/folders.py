"""Scoring folders of images that another program wrote: against a dataset's pairs, or against a
folder of real images (files paired by name). `fpdm-bench score` and ``fpdm_bench.api.score`` call
:func:`score`, which writes the results.json of ``kind: score`` (``fpdm_bench.results.build``).

Generated files are matched to pairs by any of the names the repos write: ``<pair_id>.png``
(fpdm-bench; pair id = '<source stem>_2_<target stem>'), ``<pair_id>_vis.png`` (GFLA/PIDM/PoCoLD),
``<source file>_2_<target file>.png`` (FPDM), each with any image suffix. Generated files that match
no pair (of the dataset's split; with ``real``, no real image's name) are not scored: one note
gives their count and a few names.
"""
from __future__ import annotations

import json
from pathlib import Path

from fpdm_bench.errors import BenchError, DataError
from fpdm_bench.images import image_size, list_images, read_image


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


def note_unmatched(files: list[Path], wanted: set[str], folder: Path, what: str, log) -> list[Path]:
    """Log one note on the ``files`` whose stem (or name) is none of ``wanted``; returns them."""
    unmatched = [f for f in files if f.stem not in wanted and f.name not in wanted]
    if unmatched and log:
        shown = ", ".join(f.name for f in unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
        log(f"note: {folder}: {len(unmatched)} of its {len(files)} images match no {what} and are not scored "
            f"(e.g. {shown})")
    return unmatched


def _reader(files: dict[str, Path], size, protocol, convert: bool, generated: bool = True):
    """produce(batch) for the evaluation loop: the files of the batch's pairs, decoded (and resized
    image by image to ``size`` when given, as the protocol resizes that side: how mixed sizes are
    scored)."""
    import torch

    from fpdm_bench.protocols.apply import resize

    def produce(batch):
        imgs = [read_image(files[pid], convert=convert) for pid in batch["pair_id"]]
        if size is not None:
            imgs = [resize(im[None], tuple(size), protocol, generated)[0] for im in imgs]
        return torch.stack(imgs)
    return produce


def score_dataset(dataset, generated: Path, protocol: str = "standard", device: str = "cpu", batch_size: int = 16,
                  limit: int | None = None, convert: bool = False, size=None, log=None, **scorer_kwargs) -> dict:
    """Score a folder of generated images against a dataset's pairs; returns the results dict."""
    from fpdm_bench.data import open_for_protocol
    from fpdm_bench.data.base import collate
    from fpdm_bench.evaluate import evaluate
    from fpdm_bench.scoring import Scorer

    dataset = open_for_protocol(dataset, protocol=protocol)  # ground truth read once, at the protocol's size
    pairs = dataset.pairs[:limit] if limit else dataset.pairs
    files = list_images(generated)
    matched = match_generated(pairs, files, Path(generated))
    note_unmatched(files, {n for r in dataset.pairs for n in candidate_names(r)}, Path(generated),
                   f"pair of the {getattr(dataset, 'split', 'dataset')} split", log)
    if size is None:
        check_one_size(matched, Path(generated))
    scorer = Scorer(protocol, device=device, dataset=dataset, pairs=pairs, log=log, convert=convert, **scorer_kwargs)
    index = {r.pair_id: i for i, r in enumerate(dataset.pairs)}
    batches = (collate([dataset[index[r.pair_id]] for r in pairs[s: s + batch_size]])
               for s in range(0, len(pairs), batch_size))
    produce = _reader({r.pair_id: f for r, f in zip(pairs, matched)}, size, scorer.protocol, convert)
    records = evaluate(batches, produce, scorer, name=f"folder {Path(generated).name}", check_size=False)
    # the sequence metrics (a dataset of videos) read the folder's frames again, video by video
    metrics = scorer.compute(records, generated=lambda pid: produce({"pair_id": [pid]})[0])
    return {"mode": "dataset", "generated": str(generated), "n": len(records),
            "dataset": dataset.describe(), "protocol": scorer.describe(), "metrics": metrics, "per_sample": records,
            **({"sequences": scorer.sequence_rows} if scorer.sequence_rows else {})}


def score_folders(real: Path, generated: Path, protocol: str = "standard", device: str = "cpu", batch_size: int = 16,
                  convert: bool = False, size=None, log=None, **scorer_kwargs) -> dict:
    """Score two plain folders: files paired by name (stem); FID/KID reference = all of ``real``."""
    from fpdm_bench.evaluate import evaluate
    from fpdm_bench.scoring import Scorer

    real_files, gen_files = list_images(real), list_images(generated)
    real_by = {p.stem: p for p in real_files}
    gen_by = {p.stem: p for p in gen_files}
    missing = sorted(set(real_by) - set(gen_by))
    if missing:
        raise DataError(generated, f"has {len(gen_files)} images but {len(missing)} of the {len(real_files)} real "
                                   f"images have no generated image of the same name (e.g. {missing[0]})")
    names = sorted(real_by)
    note_unmatched(gen_files, set(real_by), Path(generated), f"real image's name in {real}", log)
    if size is None:
        rs = check_one_size(real_files, Path(real))
        gs = check_one_size([gen_by[n] for n in names], Path(generated))
        if rs != gs:
            raise DataError(generated, f"images are {gs[0]}x{gs[1]} but the real images are {rs[0]}x{rs[1]}; "
                                       f"pass --size HxW to compare them at one size")
        size = rs
    scorer = Scorer(protocol, device=device, reference_paths=real_files, size=tuple(size), pairs=names, log=log,
                    convert=convert, **scorer_kwargs)
    if scorer.protocol.eval_size:  # the ground truth must not be upsampled to the protocol's size
        from fpdm_bench.protocols.apply import check_resolution

        scorer.real_images["ground_truth"] = check_resolution(real_files, scorer.protocol,
                                                              scorer_kwargs.get("allow_upsampled", False),
                                                              "ground-truth")
    read_real = _reader(real_by, size, scorer.protocol, convert, generated=False)
    batches = ({"pair_id": chunk, "target": read_real({"pair_id": chunk})}
               for chunk in (names[s: s + batch_size] for s in range(0, len(names), batch_size)))
    records = evaluate(batches, _reader(gen_by, size, scorer.protocol, convert), scorer,
                       name=f"folder {Path(generated).name}")
    metrics = scorer.compute(records)
    return {"mode": "folders", "real": str(real), "generated": str(generated), "n": len(records),
            "dataset": {"name": f"folder:{Path(real).name}"}, "protocol": scorer.describe(), "metrics": metrics,
            "per_sample": records}


def score(generated, dataset: str | None = None, *, real=None, data_root=None, split: str = "test",
          protocol: str = "standard", out=None, limit: int | None = None, size=None, batch_size: int = 16,
          device: str = "cpu", convert: bool = False, weights: dict | None = None, reference_folder=None,
          allow_upsampled: bool = False, force: bool = False, log=None) -> dict:
    """Score the images in ``generated`` against ``dataset``'s pairs, or against the folder ``real``
    (exactly one of the two); returns the results.json dict (``kind: score``, its ``config`` the
    settings given here) and writes it to ``out`` when given (an existing file only with ``force``).
    ``size``: [H, W] the generated images are resized to first; ``weights``: {metric: weight file}."""
    if (dataset is None) == (real is None):
        raise BenchError("give exactly one of a dataset or a folder of real images")
    if out and Path(out).exists() and not force:  # checked before the work, and nothing is overwritten
        raise DataError(out, "exists; choose another --out or pass --force to overwrite it")
    from fpdm_bench.io import atomic_write_text
    from fpdm_bench.results import build as build_results

    weights = dict(weights or {})
    size = list(size) if size is not None else None
    kw = dict(protocol=protocol, device=device, batch_size=batch_size, convert=convert, size=size, log=log,
              weights=weights, reference_folder=reference_folder, allow_upsampled=allow_upsampled)
    if dataset:
        from fpdm_bench.data import open_for_protocol

        ds = open_for_protocol(dataset, data_root, split, protocol, convert=convert)
        scored = score_dataset(ds, Path(generated), limit=limit, **kw)
    else:
        scored = score_folders(Path(real), Path(generated), **kw)
    def path(p):  # paths as the config stores them
        return None if p is None else str(p)

    config = {"dataset": dataset, "data_root": path(data_root), "split": split, "generated": path(generated),
              "real": path(real), "protocol": protocol, "limit": limit, "size": size, "batch_size": batch_size,
              "device": device, "convert": convert, "weights": weights, "reference_folder": path(reference_folder),
              "allow_upsampled": allow_upsampled}
    results = build_results("score", config=config, device=device, model={"name": model_name(Path(generated))},
                            **{k: scored.pop(k) for k in ("dataset", "protocol", "metrics", "n")}, **scored)
    if out:
        atomic_write_text(out, json.dumps(results, indent=2, sort_keys=True) + "\n")
        if log:
            log(f"results: {out}")
    return results


def model_name(folder: Path) -> str:
    """A table label for a folder: run directories keep their images in samples/, so use the run's name."""
    folder = folder.resolve()
    return folder.parent.name if folder.name == "samples" else folder.name


