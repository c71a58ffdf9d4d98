"""The files of a run directory, read and written in one place.

    config.json                          what is being run (written once; a rerun must match it)
    model.json                           the adapter's info()
    samples/<pair_id>.png                generated images (written atomically before their jsonl line)
    samples.jsonl                        one line per finished pair (shard k of n: samples.shard-k-of-n.jsonl)
    features/<group>.<jsonl stem>.f32    per-sample set-metric features (float32 rows, appended; the
    features/<group>.json                jsonl line names its row), so a resumed or merged run never
                                         runs a feature network twice on the same image
    samples*.lock                        who is running a shard right now (see fpdm_bench.lock)
    sequences.jsonl                      one line per video (sequence metrics only; fpdm_bench.sequences):
                                         its frames, per-video and per-frame values, written with results.json
    results.json                         config, environment, hashes, model info, metrics

A jsonl line is written only after its PNG and feature rows are on disk, so a line always points at
complete data; a torn last line (killed mid-write) is ignored and cut off on resume. A line records
the sha256 of its PNG (``png_sha256``) and of its feature rows (``features_sha256``); a resume checks
the samples it reuses (:func:`check_samples`) and generates a damaged one again, whose new line (marked
``regenerated`` with the reason) supersedes the old one. Lines of older versions, without checksums,
are only checked for their PNG being there.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fpdm_bench.errors import BenchError, DataError
from fpdm_bench.io import atomic_write_text

SEQUENCES = "sequences.jsonl"


def write_sequences(run_dir: Path, rows: list[dict]) -> None:
    """Write the per-video rows of the sequence metrics (replaced whole, atomically)."""
    atomic_write_text(Path(run_dir) / SEQUENCES, "".join(json.dumps(r) + "\n" for r in rows))


def read_sequences(run_dir: Path) -> list[dict] | None:
    """The rows of ``sequences.jsonl``; None when the run has none."""
    path = Path(run_dir) / SEQUENCES
    if not path.is_file():
        return None
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON lines ({e}); `fpdm-bench merge` the run again to rewrite it") from None


def jsonl_name(i: int, n: int) -> str:
    return "samples.jsonl" if n == 1 else f"samples.shard-{i}-of-{n}.jsonl"


def read_records(run_dir: Path, own: Path | None = None) -> dict[str, dict]:
    """All finished pairs of all shards: pair_id -> record (with ``_file``, the jsonl it came from).
    A torn last line (killed mid-write, or another shard's line being written right now) is ignored;
    in this process's own file (``own``) it is cut off, so that later appends start on a fresh line.
    A pair with several lines (a sample that failed its check on resume and was generated again) is
    the last line of its file; across files, a line marked ``regenerated`` wins."""
    records: dict[str, dict] = {}
    for path in sorted(Path(run_dir).glob("samples*.jsonl")):
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            if own is not None and path.resolve() == Path(own).resolve():
                with open(path, "r+b") as f:
                    f.truncate(len(data))
        for lineno, line in enumerate(data.decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(path, f"line {lineno} is not valid JSON; remove it to resume") from None
            rec["_file"] = path.name
            prev = records.get(rec["pair_id"])
            if prev is None or prev["_file"] == path.name or (rec.get("regenerated") and not prev.get("regenerated")):
                records[rec["pair_id"]] = rec
    return records


def sha256_hex(data) -> str:
    """sha256 of bytes, or of a float32 feature row."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data, dtype=np.float32).tobytes()
    return hashlib.sha256(data).hexdigest()


def check_samples(run_dir: Path, records: list[dict]) -> dict[str, str]:
    """The finished records (those with metrics) whose files fail their check: pair_id -> what failed,
    e.g. ``samples/X.png: checksum mismatch``. Checked: the PNG is there and readable and matches the
    line's ``png_sha256``; each feature row the line points at is there and matches ``features_sha256``.
    Lines without checksums (older versions) are only checked for their PNG being there. Reads every
    PNG once (a few seconds for DeepFashion's 8,570 samples)."""
    bad: dict[str, str] = {}
    for rec in records:
        if "metrics" not in rec:
            continue
        name = f"samples/{rec['pair_id']}.png"
        path = Path(run_dir) / name
        if not path.is_file():
            bad[rec["pair_id"]] = f"{name}: missing"
            continue
        if "png_sha256" not in rec:
            continue
        try:
            data = path.read_bytes()
        except OSError as e:
            bad[rec["pair_id"]] = f"{name}: unreadable ({e.strerror or e})"
            continue
        if sha256_hex(data) != rec["png_sha256"]:
            bad[rec["pair_id"]] = f"{name}: checksum mismatch"
    checked = [r for r in records if r["pair_id"] not in bad and r.get("features_sha256") and "metrics" in r]
    bad.update(FeatureStore(run_dir).check(checked))
    return bad


def public(record: dict) -> dict:
    """A record without the in-memory bookkeeping keys."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def check_config(run_dir: Path, identity: dict, config: dict, defaults: dict) -> None:
    """Write config.json on the first start; on a rerun, refuse to mix results of different runs.
    ``defaults``: identity values of fields that runs of older versions did not record."""
    path = run_dir / "config.json"
    if path.exists():
        try:
            old = json.loads(path.read_text()).get("identity", {})
        except json.JSONDecodeError as e:
            raise DataError(path, f"not valid JSON ({e}); delete the run folder to start over") from None
        diff = {k: (old.get(k, defaults.get(k)), v) for k, v in identity.items() if old.get(k, defaults.get(k)) != v}
        if diff:
            details = "; ".join(f"{k}: {a!r} there vs {b!r} now" for k, (a, b) in diff.items())
            raise BenchError(f"{run_dir} holds a different run ({details}). Use another --out, "
                             f"or delete that folder to start over.")
        return
    atomic_write_text(path, json.dumps({"identity": identity, "config": config}, indent=2, sort_keys=True) + "\n")


class FeatureStore:
    """Per-sample feature rows of the set metrics, one append-only float32 file per (feature group,
    jsonl file). 8 KiB per image for Inception's 2048-d pool features: 67 MiB for DeepFashion's
    8,570 test pairs, 505 MiB for PHOENIX's ~64.6k."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "features"

    def _path(self, group: str, jsonl: str) -> Path:
        return self.dir / f"{group}.{Path(jsonl).stem}.f32"

    def dims(self, group: str) -> int:
        meta = self.dir / f"{group}.json"
        try:
            return int(json.loads(meta.read_text())["dims"])
        except (OSError, ValueError, KeyError) as e:
            raise DataError(meta, f"feature metadata unreadable ({e}); delete features/ to recompute") from None

    def append(self, group: str, jsonl: str, rows: np.ndarray) -> int:
        """Append [B, d] rows; returns the index of the first one. A partial row left by a crash is
        cut off first; rows no jsonl line points at are harmless."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / f"{group}.json"
        if not meta.exists():
            atomic_write_text(meta, json.dumps({"dims": rows.shape[1], "dtype": "float32"}) + "\n")
        path = self._path(group, jsonl)
        row_bytes = rows.shape[1] * 4
        with open(path, "ab") as f:
            size = f.seek(0, os.SEEK_END)
            if size % row_bytes:
                f.truncate(size - size % row_bytes)
                size -= size % row_bytes
            f.write(rows.tobytes())
            f.flush()
            os.fsync(f.fileno())
        return size // row_bytes

    def read(self, group: str, records: list[dict]) -> np.ndarray:
        """[len(records), d] float32: the rows the records point at (``features[group]`` of each)."""
        d = self.dims(group)
        out = np.empty((len(records), d), np.float32)
        maps: dict[str, np.memmap] = {}
        for k, rec in enumerate(records):
            path = self._path(group, rec["_file"])
            if path.name not in maps:
                if not path.is_file():
                    raise DataError(path, "feature file missing; delete results.json and features/ to recompute")
                maps[path.name] = np.memmap(path, np.float32, "r").reshape(-1, d)
            row = rec["features"][group]
            if row >= len(maps[path.name]):
                raise DataError(path, f"row {row} (pair {rec['pair_id']}) is past the end of the file")
            out[k] = maps[path.name][row]
        return out

    def check(self, records: list[dict]) -> dict[str, str]:
        """pair_id -> what failed, for records whose feature rows (``features_sha256``) are missing or differ."""
        bad: dict[str, str] = {}
        maps: dict[str, np.ndarray | None] = {}
        for rec in records:
            for group, digest in rec["features_sha256"].items():
                path = self._path(group, rec["_file"])
                where = f"features/{path.name}"
                if path.name not in maps:
                    try:  # a partial last row (killed mid-append) is left out, as append() cuts it off
                        d = self.dims(group)
                        n = path.stat().st_size // (4 * d)
                        maps[path.name] = np.memmap(path, np.float32, "r", shape=(n, d)) if n else None
                    except (OSError, ValueError, DataError):
                        maps[path.name] = None
                rows, row = maps[path.name], rec.get("features", {}).get(group)
                if rows is None or row is None or row >= len(rows):
                    bad[rec["pair_id"]] = f"{where}: row {row} missing"
                elif sha256_hex(rows[row]) != digest:
                    bad[rec["pair_id"]] = f"{where}: row {row} checksum mismatch"
                if rec["pair_id"] in bad:
                    break
        return bad


def has_features(record: dict, groups) -> bool:
    return all(g in record.get("features", {}) for g in groups)
