"""Fetching a metric's weight file from its canonical source (``WeightSpec.url``) or a mirror.

A file goes where torchvision would put it (``weights.hub_dir()``), and is installed only once its
sha256 is verified: the bytes stream into ``<file>.part`` next to the target, the digest must start
with the prefix embedded in the file name (torch hub's rule for these files), and only then is the
part renamed onto the target (atomic). An interrupted transfer leaves the part, and the next fetch
continues it with an HTTP Range request. Every network step is bounded by ``timeout`` (connect and
each read), so a server that is gone or stalls fails in bounded time with one line naming the URL.

A transformers-layout folder (``WeightSpec.hf_repo``, DINOv2) is fetched with huggingface_hub into
its own cache (its mirror setting is ``HF_ENDPOINT``).

Offline (``HF_HUB_OFFLINE=1``, ``FPDM_BENCH_OFFLINE=1`` or ``offline=True``) nothing touches the
network and a missing weight stays :class:`~fpdm_bench.errors.WeightsMissing`.

:func:`download` is the one HTTP downloader of the project: the metric weights here and the official
checkpoints of ``release_fetch.py`` both use it (with or without an expected sha256).
"""
from __future__ import annotations

import fcntl
import os
import urllib.error
import urllib.request
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from fpdm_bench.errors import BenchError, WeightsMissing
from fpdm_bench.io import sha256_file

CHUNK = 1 << 20
HF_FILES = ["config.json", "model.safetensors"]  # all a transformers-layout folder needs here


class FetchFailed(BenchError):
    """A weight could not be fetched (network, checksum); nothing was installed. ``status``: the HTTP
    status when the server answered with an error (404: the file is not there)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")  # huggingface_hub's reading


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    return _true(os.environ.get("HF_HUB_OFFLINE")) or _true(os.environ.get("FPDM_BENCH_OFFLINE"))


def source_url(spec, mirror: str | None = None) -> str | None:
    """Where ``spec``'s file is fetched from: ``<mirror>/<file name>`` when a mirror is given (or
    ``$FPDM_BENCH_MIRROR``), else its canonical ``url``; None for a spec with no url."""
    mirror = mirror or os.environ.get("FPDM_BENCH_MIRROR")
    if spec.hf_repo or not (spec.url or mirror):
        return None
    return f"{mirror.rstrip('/')}/{spec.filename}" if mirror else spec.url


def fetch_source(spec, mirror: str | None = None) -> str | None:
    """Where :func:`fetch` would get ``spec`` from, in words (the Hugging Face repo, or the URL); None
    when nowhere: the one answer to "is it fetchable?"."""
    if spec.hf_repo:
        return f"the Hugging Face hub ({spec.hf_repo})"
    return source_url(spec, mirror)


# whether a fetch draws progress bars when its caller does not say: a metric fetches its weight deep
# inside scoring, so `run --no-progress` says it once, around the run (progress_bars)
_BARS = ContextVar("fpdm_bench_fetch_bars", default=True)


@contextmanager
def progress_bars(on: bool):
    """Fetches inside this block draw progress bars only if ``on`` (unless a call says otherwise)."""
    token = _BARS.set(bool(on))
    try:
        yield
    finally:
        _BARS.reset(token)


def fetch(spec, mirror: str | None = None, offline: bool | None = None, timeout: float = 20,
          progress: bool | None = None) -> Path:
    """Fetch ``spec``'s weight and return its path (an installed file already there is returned as is).
    Raises WeightsMissing when offline or when the spec names no source, FetchFailed otherwise.
    ``progress`` None: as the enclosing :func:`progress_bars` says (default on)."""
    from fpdm_bench import weights as W

    if is_offline(offline):
        raise WeightsMissing(spec.what, spec.filename, f"{W.hub_dir() / spec.filename}; offline, not fetched")
    if spec.hf_repo:
        return _fetch_hf(spec, timeout)
    url = source_url(spec, mirror)
    if url is None:
        raise WeightsMissing(spec.what, spec.filename, f"{W.hub_dir() / spec.filename}; no source to fetch it from")
    target = W.hub_dir() / spec.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target):
        if not target.is_file():
            _download(spec, url, target, timeout, progress)
    return target


@contextmanager
def locked(target: Path):
    """Hold ``<target>.lock``: one fetcher per file (several ranks or runs starting at once share the
    part); the others wait and then find the file installed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _download(spec, url: str, target: Path, timeout: float, progress: bool | None) -> None:
    download(url, target, label=spec.filename, sha256=spec.sha256_prefix, timeout=timeout, progress=progress)


def download(url: str, target: Path, *, label: str, sha256: str | None = None, timeout: float = 20,
             progress: bool | None = None) -> str:
    """Stream ``url`` into ``<target>.part`` (continuing a part left by an interrupted transfer with
    a Range request), check its sha256 against ``sha256`` (a full digest or a prefix; None: no known
    digest, nothing to check), then rename it onto ``target``; return the digest. ``label`` names the
    file in every error (one line, FetchFailed). The caller holds :func:`locked` on ``target``."""
    from tqdm import tqdm

    part = target.with_name(target.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if resp.status != 206:  # the server ignored Range (or there was no part): start afresh
                start = 0
            total = resp.headers.get("Content-Length")
            total = int(total) + start if total else None
            with open(part, "ab" if start else "wb") as f, \
                    tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=label,
                         disable=not _bars(progress), leave=False) as bar:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            # http.client's read(n) returns b"" when the connection drops early (no IncompleteRead)
            if total is not None and part.stat().st_size < total:
                raise ConnectionError(f"transfer cut short at {part.stat().st_size} of {total} bytes")
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # the part is already whole (or not this file): verify it below
            pass
        else:
            raise FetchFailed(f"{label}: cannot fetch {url}: HTTP {e.code} {e.reason}", status=e.code) from None
    except (OSError, ValueError) as e:  # URLError, refused, timeout, reset, IncompleteRead, bad URL
        kept = f" ({part.stat().st_size} bytes kept in {part.name}; fetching again resumes)" if part.is_file() else ""
        raise FetchFailed(f"{label}: cannot fetch {url}: {e}{kept}") from None
    digest = sha256_file(part)
    if sha256 and not digest.startswith(sha256):
        part.unlink()
        raise FetchFailed(f"{label}: sha256 mismatch from {url}: expected {sha256}..., got {digest}; nothing installed")
    os.replace(part, target)
    return digest


def _fetch_hf(spec, timeout: float) -> Path:
    return hf_snapshot(spec.filename, spec.hf_repo, HF_FILES, offline=False, timeout=timeout)


def hf_snapshot(label: str, repo: str, files, offline: bool, timeout: float) -> Path:
    """``files`` of Hugging Face repo ``repo`` through huggingface_hub (its cache; ``offline``: the
    cache only); FetchFailed naming ``label`` and the repo otherwise."""
    try:
        from huggingface_hub import snapshot_download

        # its etag and read timeouts bound the wait; HF_ENDPOINT selects a mirror
        with _hf_bars(_bars(None)):
            return Path(snapshot_download(repo, allow_patterns=list(files), local_files_only=offline,
                                          etag_timeout=timeout))
    except Exception as e:  # noqa: BLE001  (huggingface_hub raises many kinds; all mean "not fetched")
        why = "offline, and it is not in the Hugging Face cache" if offline else first_line(e)
        raise FetchFailed(f"{label}: cannot fetch Hugging Face repo {repo}: {why}") from None


def _bars(progress: bool | None) -> bool:
    return _BARS.get() if progress is None else bool(progress)


@contextmanager
def _hf_bars(on: bool):
    """huggingface_hub's own bars off inside the block when ``on`` is false (its setting restored after)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_off = are_progress_bars_disabled()
    if not on:
        disable_progress_bars()
    try:
        yield
    finally:
        if not on and not was_off:
            enable_progress_bars()


def first_line(e: BaseException) -> str:
    """An exception's message, first line only (its type's name when it has none)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__
