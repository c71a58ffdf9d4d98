"""Atomic file writes (a crash mid-write never leaves a half-written results file), hashes, CSV."""
from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from pathlib import Path


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give results the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def checkpoint_sha256(path: str | Path) -> str:
    """One hash for a checkpoint: the file's sha256, or for a folder sha256 over (relative path,
    sha256) of its safetensors files (resume state under a ``checkpoint`` folder left out)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    # resume state under a checkpoint/ folder is not the model
    return files_sha256(path, [f for f in path.rglob("*.safetensors") if "checkpoint" not in f.relative_to(path).parts[:-1]])


def files_sha256(root: str | Path, files) -> str:
    """sha256 over the sorted lines '<path relative to root>\t<file sha256>' of ``files``."""
    root = Path(root)
    h = hashlib.sha256()
    for f in sorted(Path(f) for f in files):
        h.update(f"{f.relative_to(root).as_posix()}\t{sha256_file(f)}\n".encode())
    return h.hexdigest()


def csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows (dicts) as CSV text; floats as repr (every digit, so a reader gets the value back
    exactly), None as empty."""
    columns = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r.get(c), float) else r.get(c)
                    for c in columns])
    return buf.getvalue()


def write_csv(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> str:
    """Write rows (dicts) as CSV (``csv_text``), atomically. Returns the file name."""
    path = Path(path)
    atomic_write_text(path, csv_text(rows, columns))
    return path.name


def read_csv(path: str | Path) -> list[dict]:
    """The rows of a CSV written by ``write_csv`` (all values as strings; '' for None)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
