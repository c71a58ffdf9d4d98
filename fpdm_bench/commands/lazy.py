"""A click group whose commands are entry points, imported only when used."""
from __future__ import annotations

import click

from fpdm_bench.errors import BenchError
from fpdm_bench.registry import entry_point_targets


class LazyGroup(click.Group):
    """A group whose subcommands live in other modules ("module:attr"), imported when used, so the
    CLI starts fast and a missing optional piece breaks only its own command (which then says why).
    The subcommands are ``lazy`` plus the entry points of ``entry_point_group``
    (``[project.entry-points."fpdm_bench.commands"]``: fpdm-bench's own commands and any package's)."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, entry_point_group: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})
        self.entry_point_group = entry_point_group

    def _commands(self) -> dict[str, str]:
        if self.entry_point_group:
            self._lazy = {**entry_point_targets(self.entry_point_group, "command"), **self._lazy}
            self.entry_point_group = None
        return self._lazy

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._commands()))

    def get_command(self, ctx, name):
        if name not in self._commands():
            return super().get_command(ctx, name)
        import importlib

        module, _, attr = self._commands()[name].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            why = str(e)  # `e` itself is unbound once the except block ends

            @click.command(name, help=f"(unavailable: {why})")
            def unavailable():
                raise BenchError(f"command {name!r} is unavailable: {why}")
            return unavailable
