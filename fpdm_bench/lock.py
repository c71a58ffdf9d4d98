"""One process per shard: a lock file next to the shard's jsonl.

Made for the file systems clusters share between nodes (NFS, Lustre, GPFS), where ``flock`` is
unreliable: the lock is a file created with O_CREAT|O_EXCL (atomic on those), holding the owner's
host, pid and a token; the owner touches it every ``HEARTBEAT`` seconds. A lock is stale when its
owner is on this host and that pid is gone, or when it has not been touched for ``STALE_AFTER``
seconds (an owner on another node that was killed). A stale lock is taken over by renaming it
away (only one of several takers can rename the same file) and checking that the renamed file is the
stale one that was judged; then the lock is created afresh.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from fpdm_bench.errors import BenchError

HEARTBEAT = 30.0
STALE_AFTER = 300.0


class LockHeld(BenchError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class ShardLock:
    """``with ShardLock(path, what):`` — raises LockHeld naming the holder if a live process has it."""

    def __init__(self, path: str | Path, what: str = "", stale_after: float = STALE_AFTER,
                 heartbeat: float = HEARTBEAT):
        self.path = Path(path)
        self.what = what
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self.token = uuid.uuid4().hex
        self.taken_over: dict | None = None  # the stale holder this lock replaced, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stale(self, info: dict | None) -> bool:
        pid = (info or {}).get("pid")
        if info is not None and info.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0:
            return not _pid_alive(pid)
        # unreadable (being written right now, or garbage), no pid, or another node: judge by age alone
        return self._age() > self.stale_after

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": self.what}, f)
        return True

    def acquire(self) -> "ShardLock":
        for _ in range(3):
            if self._create():
                break
            info = _read(self.path)
            if not self._stale(info):
                raise LockHeld(self._held_message(info))
            aside = self.path.with_name(f"{self.path.name}.stale-{self.token}")
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue  # someone else took it over first; try again
            moved = _read(aside)
            if info is not None and (moved or {}).get("token") != info.get("token"):
                # it was a fresh lock, not the stale one: put it back (link fails if a third process
                # has made one since, and then that one stands) and let its holder have the shard
                try:
                    os.link(aside, self.path)
                except FileExistsError:
                    pass
                aside.unlink(missing_ok=True)
                raise LockHeld(f"{self.what or self.path.parent} was just taken by another process (lock {self.path})")
            aside.unlink(missing_ok=True)
            self.taken_over = info
        else:
            raise LockHeld(f"could not take the lock {self.path}: other processes keep taking it")
        self._thread = threading.Thread(target=self._beat, daemon=True, name="fpdm-bench-lock")
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if (_read(self.path) or {}).get("token") != self.token:
                return  # taken over after a long stall: never keep another holder's lock fresh
            try:
                os.utime(self.path)
            except OSError:
                pass

    def check(self) -> None:
        """Raise LockHeld if a live process holds the lock now (a cheap look before the expensive
        set-up; :meth:`acquire` decides for good)."""
        info = _read(self.path)
        if self.path.exists() and not self._stale(info):
            raise LockHeld(self._held_message(info))

    def _held_message(self, info: dict | None) -> str:
        who = f"pid {info.get('pid')} on {info.get('host')} since {info.get('started')}" if info else "another process"
        return (f"{self.what or self.path.parent} is being run by {who} (lock {self.path}). "
                f"Wait for it, or if that process is gone, delete the lock file.")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        info = _read(self.path)
        if info is not None and info.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "ShardLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
