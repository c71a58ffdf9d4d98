"""`fpdm-bench weights fetch <release> --out DIR`: an official checkpoint downloaded, verified and
converted in one step (the records are in ``releases.py``, declared by the model packages).

1. Each file of the release is downloaded into ``$FPDM_BENCH_CACHE/releases/<name>/files/`` (default
   ``~/.cache/fpdm-bench``) by ``weights_fetch.download``: through ``<file>.part``, resumed with a
   Range request after an interruption, every network wait bounded by ``timeout``. Sources: a mirror
   (``--mirror URL`` or ``$FPDM_BENCH_MIRROR``: ``URL/<release>/<file>``), else the file's own URL,
   else Google Drive through ``gdown`` (optional, imported only then). A file already there is not
   downloaded again, so a second fetch (into another folder, or offline) reuses it.
2. The Hugging Face parts come from the hub through huggingface_hub (its cache; ``HF_ENDPOINT``
   selects a hub mirror), or with a mirror from ``URL/<release>/<part>/<path>`` through the same
   downloader, or from a local folder (``--part NAME=DIR``).
3. Verification: a file whose sha256 the release states is checked against it; none of the official
   releases states one, so for those the converter's strict load is the check (it refuses a file
   that is truncated, damaged or not the expected checkpoint), and the sha256 and size of what was
   downloaded are recorded in ``DIR/provenance.json`` for anyone to compare.
4. The converter writes into a hidden folder beside ``DIR``, which is renamed onto ``DIR`` only when
   it succeeded: ``DIR`` is never overwritten (an existing non-empty one is refused before anything is
   downloaded) and never half written. A file that fails verification is deleted from the download
   folder, so fetching again downloads it anew.

Offline (``--offline``, ``HF_HUB_OFFLINE=1`` or ``FPDM_BENCH_OFFLINE=1``) nothing touches the
network: files already downloaded (or put in the download folder by hand) are converted, anything
missing is named with where to put it.
"""
from __future__ import annotations

import datetime
import importlib.util
import inspect
import json
import os
import shutil
from pathlib import Path

from fpdm_bench import __version__
from fpdm_bench.errors import BenchError
from fpdm_bench.io import atomic_write_text, sha256_file
from fpdm_bench.releases import Release, ReleaseFile
from fpdm_bench.weights_fetch import FetchFailed, download, first_line, hf_snapshot, is_offline, locked

PROVENANCE = "provenance.json"
VERIFIED_BY = ("no published sha256: verified by the converter's strict load (a truncated, damaged or "
               "wrong file is refused); the downloaded file's sha256 and size are recorded here")


def staging_dir(name: str) -> Path:
    from fpdm_bench.refstats import cache_dir

    return cache_dir() / "releases" / name


def fetchability(rel: Release) -> str:
    """How `weights fetch` would get the release here (for the listing; touches no network)."""
    if rel.needs_gdown() and importlib.util.find_spec("gdown") is None:
        return "needs gdown (pip install gdown) or --mirror"
    return "fetchable"


def fetch_release(rel: Release, out: str | Path, mirror: str | None = None, offline: bool | None = None,
                  part_dirs: dict[str, str] | None = None, timeout: float = 20, progress: bool = True,
                  log=print) -> dict:
    """Download, verify and convert ``rel`` into the new folder ``out``; return its provenance."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BenchError(f"{out}: exists and is not empty; choose a new folder (nothing is overwritten)")
    unknown = sorted(set(part_dirs or {}) - {p.name for p in rel.parts})
    if unknown:
        raise BenchError(f"--part {', '.join(unknown)}: release {rel.name} has no such part "
                         f"(its parts: {', '.join(p.name for p in rel.parts) or 'none'})")
    offline = is_offline(offline)
    mirror = (mirror or os.environ.get("FPDM_BENCH_MIRROR") or "").rstrip("/") or None
    stage = staging_dir(rel.name)
    files = _files(rel, stage / "files", mirror, offline, timeout, progress, log)
    parts = {p.name: _part(rel, p, stage / "parts", mirror, offline, (part_dirs or {}).get(p.name), timeout, progress)
             for p in rel.parts}
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        facts = rel.convert({n: f["path"] for n, f in files.items()}, {n: p["path"] for n, p in parts.items()}, tmp)
    except BenchError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        # with no published hash, a file that does not load is the only sign of a bad download
        for sub in ("files", "parts"):
            shutil.rmtree(stage / sub, ignore_errors=True)
        what = ", ".join(f"{n} (sha256 {f['sha256'][:12]}..., {f['size']} bytes)" for n, f in files.items()) or "the parts"
        raise BenchError(f"{rel.name}: {what} did not pass verification ({str(e).splitlines()[0]}); nothing "
                         f"written to {out}; the downloads were removed, so fetching again downloads them anew") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run = rel.run.format(out=out)
    record = {"release": rel.name, "model": rel.model, "where": rel.where, "fpdm_bench": __version__,
              "fetched_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "converter": rel.converter, "verification": VERIFIED_BY,
              "files": [{k: v for k, v in f.items() if k != "path"} for f in files.values()],
              "parts": [{k: v for k, v in p.items() if k != "path"} for p in parts.values()],
              "converted": facts, "notes": list(rel.notes), "next": run}
    atomic_write_text(tmp / PROVENANCE, json.dumps(record, indent=2, default=str) + "\n")
    try:
        os.replace(tmp, out)  # atomic; replaces an empty folder, never a non-empty one
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BenchError(f"{out}: could not be written ({e.strerror}); nothing written there") from None
    log(f"{rel.name}: converted into {out} ({PROVENANCE} records the sources and sha256s)")
    for note in rel.notes:
        log(f"note: {note}")
    log(f"next: {run}")
    return record


# --- the release's own files ---------------------------------------------------------------------

def _files(rel: Release, folder: Path, mirror, offline: bool, timeout: float, progress: bool, log) -> dict:
    got, missing = {}, []
    for f in rel.files:
        target = folder / f.name
        source_note = target.with_name(target.name + ".source")
        if not target.is_file():
            if offline:
                if f.required:
                    missing.append(f)
                continue
            source = _download_file(rel, f, target, mirror, timeout, progress)
            if source is None:  # an optional file its source does not have
                continue
            source_note.write_text(source)
        digest, size = sha256_file(target), target.stat().st_size
        if f.size is not None and size != f.size:
            raise BenchError(f"{rel.name}/{f.name}: {size} bytes, the release states {f.size}; remove {target} "
                             f"and fetch again")
        if f.sha256 and not digest.startswith(f.sha256):
            target.unlink()
            raise BenchError(f"{rel.name}/{f.name}: sha256 {digest}, the release states {f.sha256}; removed")
        source = source_note.read_text() if source_note.is_file() else f"put in {folder} by hand"
        log(f"{rel.name}: {f.name} from {source} (sha256 {digest}, {size} bytes)")
        got[f.name] = {"name": f.name, "path": target, "source": source, "sha256": digest, "size": size,
                       "expected_sha256": f.sha256, "expected_size": f.size}
    if missing:
        raise BenchError(f"{rel.name}: offline, and {', '.join(f.name for f in missing)} not downloaded yet: fetch "
                         f"without --offline, or put {'them' if len(missing) > 1 else 'it'} in {folder} (from "
                         f"{'; '.join(f.source() for f in missing)})")
    return got


def _download_file(rel: Release, f: ReleaseFile, target: Path, mirror, timeout, progress) -> str | None:
    """Fetch one file to ``target``; return its source, or None for an optional file that is not there."""
    url = f"{mirror}/{rel.name}/{f.name}" if mirror else f.url
    with locked(target):  # another fetch of the same release waits, then finds the file there
        if target.is_file():
            return url or f.source()
        if url is None:
            return _gdown(rel, f, target, timeout, progress)
        try:
            download(url, target, label=f"{rel.name}/{f.name}", sha256=f.sha256, timeout=timeout, progress=progress)
        except FetchFailed as e:
            if e.status == 404 and not f.required:
                return None
            raise
    return url


def _gdown(rel: Release, f: ReleaseFile, target: Path, timeout: float, progress: bool) -> str | None:
    label = f"{rel.name}/{f.name}"
    if not (f.drive_id or f.drive_folder):
        raise BenchError(f"{label}: no public source; put it in {target.parent} by hand")
    try:
        import gdown
    except ImportError:
        raise BenchError(f"{label} is on Google Drive ({f.source()}): install gdown (pip install gdown, or "
                         f"pip install 'fpdm-bench[fetch]'), or serve it from a mirror (--mirror URL, as "
                         f"URL/{rel.name}/{f.name})") from None
    by_hand = f"download it in a browser from {f.source()} and put it at {target}, then fetch again"
    kwargs = {"quiet": not progress}
    if "timeout" in inspect.signature(gdown.download).parameters:  # gdown >= 5.2 bounds its waits
        kwargs["timeout"] = timeout
    file_id = f.drive_id or _drive_folder_file(gdown, rel, f, target.parent, kwargs, by_hand)
    if file_id is None:
        return None
    part = target.with_name(target.name + ".gdown")
    try:
        got = gdown.download(id=file_id, output=str(part), resume=True, **kwargs)
    except Exception as e:  # noqa: BLE001  (gdown raises many kinds: quota, permission, network)
        raise FetchFailed(f"{label}: gdown could not fetch Drive file {file_id}: {first_line(e)}; {by_hand}") from None
    if not got or not part.is_file():
        raise FetchFailed(f"{label}: gdown fetched nothing for Drive file {file_id}; {by_hand}")
    os.replace(part, target)
    return f"https://drive.google.com/file/d/{file_id} (gdown {getattr(gdown, '__version__', '?')})"


def _drive_folder_file(gdown, rel: Release, f: ReleaseFile, folder: Path, kwargs: dict, by_hand: str) -> str | None:
    """The Drive id of ``f.name`` inside the Drive folder ``f.drive_folder`` (listed, not downloaded)."""
    label = f"{rel.name}/{f.name}"
    if "skip_download" not in inspect.signature(gdown.download_folder).parameters:
        raise BenchError(f"{label}: this gdown cannot list a Drive folder; pip install -U gdown, or {by_hand}")
    try:
        entries = gdown.download_folder(id=f.drive_folder, output=str(folder / "drive"), skip_download=True, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise FetchFailed(f"{label}: gdown could not list Drive folder {f.drive_folder}: {first_line(e)}; {by_hand}") from None
    found = [e for e in entries or [] if Path(e.path).name == f.name]
    if len(found) > 1:
        raise BenchError(f"{label}: Drive folder {f.drive_folder} holds {len(found)} files of that name "
                         f"({', '.join(e.path for e in found)}); {by_hand}")
    if not found:
        if f.required:
            raise BenchError(f"{label}: not in Drive folder {f.drive_folder}; {by_hand}")
        return None
    return found[0].id


# --- the Hugging Face parts ----------------------------------------------------------------------

def _part(rel: Release, part, folder: Path, mirror, offline: bool, local: str | None, timeout: float,
          progress: bool) -> dict:
    label = f"{rel.name}/{part.name}"
    repo, revision = part.repo, None
    if local and (local.startswith(("/", ".", "~")) or Path(local).exists()):  # a folder, not a repo id
        path, source, repo = Path(local).expanduser(), f"local folder {local}", None
        if not path.is_dir():
            raise BenchError(f"--part {part.name}={local}: not a folder")
    elif mirror:
        repo = local or part.repo
        path, source = folder / part.name, f"{mirror}/{rel.name}/{part.name}/"
        for rel_path in part.files:
            target = path / rel_path
            if target.is_file() or offline:
                continue
            with locked(target):
                if not target.is_file():
                    download(f"{source}{rel_path}", target, label=f"{label}/{rel_path}", timeout=timeout, progress=progress)
    else:
        repo = local or part.repo
        path = hf_snapshot(label, repo, part.files, offline, timeout)
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        source, revision = f"{endpoint}/{repo}", path.name if path.parent.name == "snapshots" else None
    absent = [p for p in part.files if not (path / p).is_file()]
    if absent:
        hint = " (offline: nothing was fetched)" if offline else ""
        raise BenchError(f"{label}: {path} lacks {', '.join(absent)}{hint}; the part is {part.repo}: {', '.join(part.files)}")
    return {"name": part.name, "path": path, "repo": repo, "official_repo": part.official_repo, "source": source,
            "revision": revision,
            "files": [{"path": p, "sha256": sha256_file(path / p), "size": (path / p).stat().st_size} for p in part.files]}
