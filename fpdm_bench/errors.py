"""Errors with one clear message naming the file and the problem."""
from __future__ import annotations

from pathlib import Path


class BenchError(Exception):
    """Base class: the CLI prints these as a one-line error, without a traceback."""


class DataError(BenchError):
    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # so it crosses process boundaries (DataLoader workers) intact
        return type(self), (self.path, self.problem)


class WeightsMissing(BenchError):
    def __init__(self, what: str, filename: str, where: str):
        self.what, self.filename, self.where = what, filename, where
        super().__init__(f"{what} unavailable: {filename} missing (put it at {where})")

    def __reduce__(self):
        return type(self), (self.what, self.filename, self.where)


def require_device(device: str) -> None:
    """Refuse a device this machine does not have, in one line, before a model or tensor meets it
    (torch's own errors come from deep inside the first CUDA call, as a traceback)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise BenchError(f"--device {device!r}: not a device; use cpu or cuda[:i]") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BenchError(f"CUDA is not available (torch {torch.__version__}, no usable GPU); "
                             f"use --device cpu or install a CUDA build of torch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BenchError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
