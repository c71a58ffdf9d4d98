"""Peak memory for ``fpdm-bench profile``: CUDA max allocated, or the process RSS sampled in a thread."""
from __future__ import annotations

import sys
import threading
from typing import Callable

import torch


RSS_INTERVAL_S = 0.005  # a wake-up every 5 ms: little GIL contention with the timed calls


# --- memory -------------------------------------------------------------------------------------


def _rss_reader() -> Callable[[], int] | None:
    try:
        import psutil

        proc = psutil.Process()
        return lambda: int(proc.memory_info().rss)
    except ImportError:
        pass
    try:
        import os

        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm") as f:
            f.read()

        def read() -> int:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page
        return read
    except (OSError, ValueError, AttributeError):
        return None


def process_maxrss_bytes() -> int | None:
    """The process-lifetime RSS high-water mark (getrusage maxrss), in bytes."""
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


class PeakRSS:
    """RSS sampled every ``interval`` s in a thread while active: ``baseline`` (at entry), ``peak``."""

    def __init__(self, interval: float = RSS_INTERVAL_S):
        self.interval = interval
        self.read = _rss_reader()
        self.baseline = self.peak = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            v = self.read()
            self.samples += 1
            if v > self.peak:
                self.peak = v

    def __enter__(self) -> "PeakRSS":
        if self.read is not None:
            self.baseline = self.peak = self.read()
            self._thread = threading.Thread(target=self._run, name="fpdm-bench-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.read())


class MemoryMeter:
    """Memory of one row (``with MemoryMeter(device) as mem:`` around the warm-up and the timed
    calls, ``mem.timed()`` just before the timed calls; ``mem.result`` afterwards).

    CUDA: ``max_memory_allocated`` over the timed calls, after ``reset_peak_memory_stats`` at
    ``timed()``; baseline = allocated then (weights, cached inputs). CPU: RSS sampled from before the
    warm-up to the end of the timed calls; baseline = RSS before the warm-up, because the allocator
    keeps what the first call took, so after a warm-up the timed calls alone would show almost no
    increase. The RSS just before the timed calls is recorded too."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.rss = None if self.cuda else PeakRSS()
        self.result: dict = {}
        self._base = 0
        self._rss_before_timed = None

    def __enter__(self) -> "MemoryMeter":
        if self.rss is not None:
            self.rss.__enter__()
        return self

    def timed(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        elif self.rss.read is not None:
            self._rss_before_timed = self.rss.read()

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.result = {"kind": "cuda_max_memory_allocated", "baseline_bytes": int(self._base),
                           "peak_bytes": int(peak), "peak_increase_bytes": int(peak - self._base),
                           "reserved_peak_bytes": int(torch.cuda.max_memory_reserved(self.device))}
            return
        self.rss.__exit__(*exc)
        if self.rss.baseline is None:
            self.result = {"kind": "unavailable (no psutil and no /proc)", "baseline_bytes": None,
                           "peak_bytes": None, "peak_increase_bytes": None}
        else:
            self.result = {"kind": "rss_sampled", "baseline_bytes": int(self.rss.baseline),
                           "peak_bytes": int(self.rss.peak), "peak_increase_bytes": int(self.rss.peak - self.rss.baseline),
                           "rss_before_timed_bytes": self._rss_before_timed, "samples": self.rss.samples,
                           "interval_s": self.rss.interval}
        self.result["process_maxrss_bytes"] = process_maxrss_bytes()


