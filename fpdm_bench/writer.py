"""A background writer: PNG encoding, feature rows and jsonl lines leave the model's thread.

Jobs run one at a time in the order they were submitted, so a batch's jsonl lines still follow its
PNGs and feature rows. The queue is bounded (a few batches), so a slow disk slows the run down
instead of filling memory. An error in a job is raised in the submitting thread at the next
``submit`` or at ``close``; ``close`` always finishes the jobs already queued first, so what was
generated before a crash in the model is kept for the resume.
"""
from __future__ import annotations

import queue
import threading


class BackgroundWriter:
    def __init__(self, max_pending: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, daemon=True, name="fpdm-bench-writer")
        self._thread.start()
        self.busy_seconds = 0.0  # time spent in jobs (for the run's timing record)

    def _work(self) -> None:
        import time

        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is None:  # after a failure, later jobs are dropped (their lines must not follow)
                t0 = time.perf_counter()
                try:
                    job()
                except BaseException as e:  # handed to the main thread
                    self._error = e
                self.busy_seconds += time.perf_counter() - t0

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, job) -> None:
        self._raise()
        self._queue.put(job)

    def close(self) -> None:
        """Finish the queued jobs, stop the thread, raise a job's error if there was one. Idempotent."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # keep what was queued, but the first error is the one the caller sees
            try:
                self.close()
            except BaseException:
                pass
