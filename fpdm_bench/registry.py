"""Name -> object registries with lazy imports, package entry points and did-you-mean errors.

Entries are "module:attr" strings (or objects), imported on first ``get``. A registry with an
``entry_point_group`` also holds every entry point of that group in the installed packages
(``[project.entry-points."fpdm_bench.models"] name = "module:attr"``), read on first use: that is
how fpdm-bench finds its own models, datasets, metrics, protocols, perturbations and commands, and how a third-party
package adds one without editing fpdm-bench.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable


def entry_point_targets(group: str, kind: str) -> dict[str, str]:
    """{name: "module:attr"} of every installed entry point of ``group``, the one place entry points
    are read (registries and the CLI's command group). Two packages giving one name two targets is
    refused: whichever loaded first would win silently."""
    from importlib.metadata import entry_points

    seen: dict[str, str] = {}
    for ep in entry_points(group=group):
        if ep.name in seen and seen[ep.name] != ep.value:
            raise ValueError(f"{kind} {ep.name!r} is registered twice in entry-point group {group}: "
                             f"{seen[ep.name]} and {ep.value}; uninstall one of the packages")
        seen[ep.name] = ep.value
    return seen


class UnknownName(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.group = entry_point_group
        self._entries: dict[str, Any] = {}
        self._help: dict[str, str] = {}
        self._loaded = entry_point_group is None

    def _load_entry_points(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        # entry points are read before the first register(), which then reports a clashing name
        for name, value in entry_point_targets(self.group, self.kind).items():
            self._entries[name] = value
            self._help[name] = ""

    def register(self, name: str, target: Any = None, help: str = "") -> Callable | None:
        """Register ``target`` (an object or a "module:attr" string) under ``name``.

        Used bare as a decorator (``@registry.register("name")``) when ``target`` is omitted.
        """
        if target is None:
            def deco(obj):
                self._add(name, obj, help)
                return obj
            return deco
        self._add(name, target, help)
        return None

    def _add(self, name: str, target: Any, help: str) -> None:
        self._load_entry_points()
        if name in self._entries and self._entries[name] is not target:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target
        self._help[name] = help or ""

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def help(self, name: str) -> str:
        self._check(name)
        if not self._help[name]:
            doc = (getattr(self.get(name), "__doc__", None) or "").strip()
            self._help[name] = doc.splitlines()[0] if doc else ""
        return self._help[name]

    def check(self, name: str) -> None:
        """Raise UnknownName (with did-you-mean) unless name is registered."""
        self._check(name)

    def _check(self, name: str) -> None:
        self._load_entry_points()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownName(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())}")

    def get(self, name: str) -> Any:
        self._check(name)
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries
