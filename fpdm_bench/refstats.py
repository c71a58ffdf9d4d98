"""Reference-set statistics (FID mean/covariance, KID features), cached on disk.

Key: sha256 of (the reference files' content hashes in order, the protocol's feature-relevant
settings, the feature network's weights sha256, the KID subset cap). A second run over the same
dataset and protocol loads the cache instead of running Inception over the reference set; changing,
adding or removing a reference file changes the key.

File hashing: content sha256 per file, memoised in ``filehashes.json`` by (absolute path, size,
mtime_ns). An unchanged stat reuses the stored hash; any change of size or mtime re-hashes the bytes
(a file rewritten with identical size *and* mtime would be missed, as with make).

Cache folder: ``$FPDM_BENCH_CACHE`` or ``~/.cache/fpdm-bench``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpdm_bench.errors import DataError
from fpdm_bench.io import atomic_write_bytes, atomic_write_text, sha256_file

KID_REFERENCE_MAX = 10000  # reference features kept for KID (evenly spaced over the set)


def cache_dir() -> Path:
    return Path(os.environ.get("FPDM_BENCH_CACHE") or Path.home() / ".cache" / "fpdm-bench")


def files_digest(paths: list[Path], cache: Path) -> str:
    """sha256 over the files' content hashes (in the given order), with the stat-keyed memo."""
    index_path = cache / "filehashes.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError):
        index = {}
    h = hashlib.sha256()
    changed = False
    for p in paths:
        p = Path(p)
        try:
            st = p.stat()
        except OSError:
            raise DataError(p, "reference image not found") from None
        key = str(p.resolve())
        memo = index.get(key)
        if memo and memo[0] == st.st_size and memo[1] == st.st_mtime_ns:
            digest = memo[2]
        else:
            digest = sha256_file(p)
            index[key] = [st.st_size, st.st_mtime_ns, digest]
            changed = True
        h.update(f"{p.name}\t{digest}\n".encode())
    if changed:
        atomic_write_text(index_path, json.dumps(index))
    return h.hexdigest()


@dataclass
class Moments:
    """Reference mean/covariance for a Fréchet distance, over the images a remainder drop keeps."""

    mu: np.ndarray
    sigma: np.ndarray
    factor: np.ndarray  # psd_factor(sigma): sigma = factor @ factor.T
    n: int
    dropped: int


@dataclass
class RefStats:
    """One feature network's statistics of a reference set: ``moments[drop]`` for each remainder
    size a Fréchet metric asked for (0 = nothing dropped), and KID's reference features."""

    moments: dict[int, Moments]
    kid_features: np.ndarray
    n_files: int | None  # None when read back by cache key alone (stats.rundata)
    key: str
    from_cache: bool


def cached_file(key: str, cache: str | Path | None = None) -> Path:
    """Where the reference statistics of cache ``key`` (results.json ``reference_used.cache_key``) live."""
    return (Path(cache) if cache else cache_dir()) / f"refstats-{key[:32]}.npz"


def load_cached(key: str, drops=(0,), cache: str | Path | None = None, n_files: int | None = None) -> RefStats:
    """The cached reference statistics of ``key`` with the moments of each remainder drop in ``drops``
    (a KeyError names a drop the file has no moments for; FileNotFoundError if it is not cached)."""
    with np.load(cached_file(key, cache)) as z:
        missing = [d for d in drops if f"mu_{d}" not in z]
        if missing:
            raise KeyError(f"{cached_file(key, cache)} has no moments for a remainder drop of {missing[0]}")
        moments = {d: Moments(z[f"mu_{d}"], z[f"sigma_{d}"], z[f"factor_{d}"], int(z[f"n_{d}"]), int(z[f"dropped_{d}"]))
                   for d in drops}
        return RefStats(moments, z["kid_features"], n_files, key, True)


def reference_stats(paths: list[Path], protocol, extractor, size: tuple[int, int] | None, *,
                    drops=(0,), view: dict | None = None, cache: Path | None = None, batch_size: int = 16,
                    log=None, convert: bool = False) -> RefStats:
    """Reference statistics of ``paths`` under ``protocol`` with ``extractor`` (images [B,3,H,W] in
    [0,1] -> [B,D] features): one pass over the images, cached on disk. With a remainder drop the
    images are taken in file-name order (the scripts list their folder) and the last len % k left
    out. ``view``: the metric's extra resize (protocols.apply.apply_view)."""
    import torch

    from fpdm_bench.images import read_image
    from fpdm_bench.metrics.fid import FrechetState, psd_factor
    from fpdm_bench.protocols.apply import apply_view, prepare

    if not paths:
        raise DataError("<reference set>", "the FID reference set is empty")
    drops = tuple(sorted({int(d) for d in drops} or {0}))
    if any(drops):
        paths = sorted(paths, key=lambda p: Path(p).name)
    cache = Path(cache) if cache else cache_dir()
    meta = {
        "files": files_digest(paths, cache),
        "n_files": len(paths),
        "protocol": protocol.reference_fingerprint(),
        "size": list(size) if size else None,
        "extractor": getattr(extractor, "weights_sha256", None) or type(extractor).__name__,
        "drops": list(drops),
        "view": view,
        "convert": convert,
        "kid_max": KID_REFERENCE_MAX,
        "version": 3,
    }
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
    file = cached_file(key, cache)
    if file.is_file():
        return load_cached(key, drops, cache, n_files=len(paths))
    if log:
        log(f"reference statistics: {len(paths)} images (cached afterwards in {cache})")
    keep = set(np.linspace(0, len(paths) - 1, min(len(paths), KID_REFERENCE_MAX)).round().astype(int).tolist())
    states: dict[int, FrechetState] = {}
    kid_feats, small = [], []  # small: all features while fewer than the dimensions
    for start in range(0, len(paths), batch_size):
        chunk = paths[start: start + batch_size]
        imgs = torch.cat([prepare(read_image(p, convert=convert)[None], protocol, size, generated=False) for p in chunk])
        imgs = apply_view(imgs, view)
        feats = extractor(imgs.to(next(extractor.parameters()).device)).double().cpu().numpy()
        for d in drops:
            if d not in states:
                states[d] = FrechetState(dims=feats.shape[1], replicates=0, chunk=d or 64, drop_remainder=bool(d))
            states[d].update(feats)
        kid_feats.extend(f for i, f in zip(range(start, start + len(chunk)), feats) if i in keep)
        if small is not None:
            small.extend(feats)
            small = small if len(small) <= feats.shape[1] else None
    moments = {}
    for d, st in states.items():
        mu, sigma = st.stats()
        feats_used = np.asarray(small[: st.n]) if small is not None else None
        moments[d] = Moments(mu, sigma, psd_factor(sigma, feats_used), st.n, st.dropped)
    stats = RefStats(moments, np.asarray(kid_feats, np.float32), len(paths), key, False)
    arrays = {"kid_features": stats.kid_features, "meta": json.dumps(meta)}
    for d, m in moments.items():
        arrays.update({f"mu_{d}": m.mu, f"sigma_{d}": m.sigma, f"factor_{d}": m.factor, f"n_{d}": m.n,
                       f"dropped_{d}": m.dropped})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(file, buf.getvalue())
    return stats
