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
