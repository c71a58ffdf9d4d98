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
class RefStats:
    mu: np.ndarray
    sigma: np.ndarray
    factor: np.ndarray  # psd_factor(sigma): sigma = factor @ factor.T
    kid_features: np.ndarray
    n: int
    dropped: int
    key: str
    from_cache: bool


def reference_stats(paths: list[Path], protocol, extractor, size: tuple[int, int] | None, *,
                    cache: Path | None = None, batch_size: int = 16, log=None) -> RefStats:
    """FID/KID reference statistics of ``paths`` under ``protocol`` with ``extractor``
    (an InceptionFeatures-like module: images [B,3,H,W] in [0,1] -> [B,D])."""
    import torch

    from fpdm_bench.data.base import load_rgb
    from fpdm_bench.metrics.fid import FID, psd_factor
    from fpdm_bench.protocols.apply import prepare

    if not paths:
        raise DataError("<reference set>", "the FID reference set is empty")
    cache = Path(cache) if cache else cache_dir()
    meta = {
        "files": files_digest(paths, cache),
        "n_files": len(paths),
        "protocol": protocol.reference_fingerprint(),
        "size": list(size) if size else None,
        "extractor": getattr(extractor, "weights_sha256", None) or type(extractor).__name__,
        "kid_max": KID_REFERENCE_MAX,
        "version": 2,
    }
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
    file = cache / f"refstats-{key[:32]}.npz"
    if file.is_file():
        with np.load(file) as z:
            return RefStats(z["mu"], z["sigma"], z["factor"], z["kid_features"], int(z["n"]), int(z["dropped"]),
                            key, True)
    if log:
        log(f"reference statistics: {len(paths)} images (cached afterwards in {cache})")
    drop = protocol.fid_drop_remainder
    keep = set(np.linspace(0, len(paths) - 1, min(len(paths), KID_REFERENCE_MAX)).round().astype(int).tolist())
    fid, kid_feats, small = None, [], []  # small: all features while fewer than the dimensions
    for start in range(0, len(paths), batch_size):
        chunk = paths[start: start + batch_size]
        imgs = [load_rgb(p) for p in chunk]
        imgs = torch.cat([prepare(im[None], protocol, size, generated=False) for im in imgs])
        feats = extractor(imgs.to(next(extractor.parameters()).device)).double().cpu().numpy()
        if fid is None:
            fid = FID(dims=feats.shape[1], replicates=0, chunk=drop or 64, drop_remainder=bool(drop))
        fid.update(feats)
        kid_feats.extend(f for i, f in zip(range(start, start + len(chunk)), feats) if i in keep)
        if small is not None:
            small.extend(feats)
            small = small if len(small) <= feats.shape[1] else None
    mu, sigma = fid.stats()
    if small is not None and fid.dropped:
        small = small[: fid.n]
    stats = RefStats(mu, sigma, psd_factor(sigma, np.asarray(small) if small is not None else None), np.asarray(kid_feats, np.float32), fid.n, fid.dropped, key, False)
    buf = io.BytesIO()
    np.savez(buf, mu=stats.mu, sigma=stats.sigma, factor=stats.factor, kid_features=stats.kid_features,
             n=stats.n, dropped=stats.dropped, meta=json.dumps(meta))
    atomic_write_bytes(file, buf.getvalue())
    return stats
