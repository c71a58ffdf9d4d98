"""Per-stage timing hooks and device helpers for ``fpdm-bench profile``."""
from __future__ import annotations

import time
from typing import Any

import torch

from fpdm_bench.errors import BenchError


# --- device helpers -----------------------------------------------------------------------------


def is_cuda(device) -> bool:
    return torch.device(device).type == "cuda"


def sync(device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(torch.device(device))


# --- stage timing -------------------------------------------------------------------------------


class StageTimer:
    """Times a model's stages while active (``with timer:``): forward pre/post hooks on module
    stages, a temporary wrapper on ``(object, method_name)`` stages. Everything is removed on exit,
    also after an error. ``reset()`` before each timed call; ``snapshot()`` after it gives
    {stage: {"calls", "seconds", "nested_calls"}} and ``covered`` (seconds inside any stage, nested
    time counted once)."""

    def __init__(self, stages: dict[str, Any], device="cpu"):
        self.stages = dict(stages)
        self.device = torch.device(device)
        for name, stage in self.stages.items():
            if isinstance(stage, torch.nn.Module):
                continue
            if not (isinstance(stage, tuple) and len(stage) == 2 and isinstance(stage[1], str)
                    and callable(getattr(stage[0], stage[1], None))):
                raise BenchError(f"stage {name!r}: expected an nn.Module or an (object, method name) pair, "
                                 f"got {stage!r}")
        self._handles: list = []
        self._patched: list[tuple[Any, str, bool, Any]] = []  # (object, name, had own attribute, own value)
        self._stacks: dict[str, list[float]] = {}
        self.reset()

    # accounting
    def reset(self) -> None:
        self.calls = {n: 0 for n in self.stages}
        self.seconds = {n: 0.0 for n in self.stages}
        self.nested = {n: 0 for n in self.stages}
        self.covered = 0.0
        self._depth = 0
        self._outer_start = 0.0
        self._stacks = {n: [] for n in self.stages}

    def snapshot(self) -> dict:
        return {n: {"calls": self.calls[n], "seconds": self.seconds[n], "nested_calls": self.nested[n]}
                for n in self.stages}

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _enter(self, name: str) -> None:
        t = self._now()
        if self._depth == 0:
            self._outer_start = t
        else:
            self.nested[name] += 1
        self._depth += 1
        self._stacks[name].append(t)

    def _exit(self, name: str) -> None:
        if not self._stacks[name]:
            return
        t = self._now()
        self.seconds[name] += t - self._stacks[name].pop()
        self.calls[name] += 1
        self._depth -= 1
        if self._depth == 0:
            self.covered += t - self._outer_start

    # installation
    def __enter__(self) -> "StageTimer":
        try:
            for name, stage in self.stages.items():
                if isinstance(stage, torch.nn.Module):
                    self._hook_module(name, stage)
                else:
                    self._wrap_method(name, *stage)
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def _hook_module(self, name: str, module: torch.nn.Module) -> None:
        def pre(mod, args):
            self._enter(name)

        def post(mod, args, output):
            self._exit(name)

        self._handles.append(module.register_forward_pre_hook(pre))
        try:
            self._handles.append(module.register_forward_hook(post, always_call=True))
        except TypeError:  # torch < 2.0 has no always_call
            self._handles.append(module.register_forward_hook(post))

    def _wrap_method(self, name: str, obj, method: str) -> None:
        own = vars(obj) if hasattr(obj, "__dict__") else {}
        had_own, own_value = method in own, own.get(method)  # read before the wrapper replaces it
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            self._enter(name)
            try:
                return original(*args, **kwargs)
            finally:
                self._exit(name)

        timed.__wrapped__ = original
        try:
            setattr(obj, method, timed)
        except (AttributeError, TypeError) as e:
            raise BenchError(f"stage {name!r}: cannot wrap {type(obj).__name__}.{method} ({e})") from None
        self._patched.append((obj, method, had_own, own_value))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        for obj, method, had_own, value in reversed(self._patched):
            if had_own:
                setattr(obj, method, value)
            else:
                try:
                    delattr(obj, method)
                except AttributeError:
                    pass
        self._patched = []


