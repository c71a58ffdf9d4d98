"""The Results type: one results.json (of ``run``, ``merge`` or ``score``), as report and compare read it.

A metric's direction and its place among the columns come from the metric registry (each metric
entry names its class under ``metric``; see ``Metric.order``), never from a list kept here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fpdm_bench.errors import DataError


@dataclass
class Results:
    data: dict
    path: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> "Results":
        """A run directory or a results.json file."""
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        if not path.is_file():
            raise DataError(path, "no results.json here (has the run finished? see `fpdm-bench merge`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(path, f"not valid JSON ({e})") from None
        check_shape(data, path)
        return cls(data, path)

    @classmethod
    def of(cls, obj) -> "Results":
        if isinstance(obj, Results):
            return obj
        if isinstance(obj, dict):
            return cls(obj)
        return cls.load(obj)

    @property
    def metrics(self) -> dict[str, dict]:
        return self.data.get("metrics", {})

    @property
    def model(self) -> str:
        return str(self.data.get("model", {}).get("name") or self.data.get("config", {}).get("model", "?"))

    @property
    def random_weights(self) -> bool:
        """A run of a published configuration with random weights (``--model-arg init=random``): it
        scored nothing, and tables mark it."""
        from fpdm_bench.models.random_init import is_random

        return bool(self.data.get("random_weights")) or is_random(self.data.get("model"))

    @property
    def label(self) -> str:
        """The model name as tables show it (marked when the weights are random)."""
        from fpdm_bench.models.random_init import label

        return label(self.model, self.random_weights)

    @property
    def dataset(self) -> str:
        return str(self.data.get("dataset", {}).get("name", "?"))

    @property
    def protocol(self) -> str:
        p = self.data.get("protocol", {})
        return str(p.get("name", "?")) if isinstance(p, dict) else str(p)

    @property
    def perturbation(self) -> str | None:
        """'name:severity' of the run's input perturbation; None for a clean run."""
        p = self.data.get("perturbation")
        return f"{p['name']}:{p['severity']}" if p else None

    @property
    def pairs_sha256(self) -> str | None:
        d = self.data.get("dataset", {})
        return d.get("pairs_sha256_run") or d.get("pairs_sha256")

    @property
    def n(self):
        return self.data.get("n", "?")

    def shown(self) -> list[str]:
        """Metric keys a table shows (entries marked ``display: false`` are counts kept for the record)."""
        return [k for k, e in self.metrics.items() if not (isinstance(e, dict) and e.get("display") is False)]

    def higher_is_better(self, key: str) -> bool | None:
        """The direction of a metric key, from the metric registry; None if no metric reports it."""
        from fpdm_bench.metrics.base import metric_direction

        entry = self.metrics.get(key)
        return metric_direction(key, entry if isinstance(entry, dict) else None)

    def value(self, key: str):
        e = self.metrics.get(key) or {}
        return e.get("value")


def check_shape(data, path) -> None:
    """The minimal shape every reader relies on (a "metrics" object of numeric values), so a foreign
    or damaged file is one line naming the key, not a traceback or a "?" deep inside compare."""
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise DataError(path, 'not the results.json of a finished run (no "metrics" object); '
                              "rerun the run's command or `fpdm-bench merge` it to write one")
    for key, e in data["metrics"].items():
        if not isinstance(e, dict):
            raise DataError(path, f"malformed results.json: metrics.{key} is {e!r}, not an object")
        v = e.get("value")
        if not (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))):
            raise DataError(path, f"malformed results.json: metrics.{key}.value is {v!r}, not a number")


def metric_names(results: list[Results]) -> list[str]:
    """The union of the shown metric keys of several results, in display order: the keys the
    registered metric classes declare, by their ``order`` (``fpdm_bench.metrics.base.display_key``),
    then any other key alphabetically."""
    from fpdm_bench.metrics.base import display_key

    entries: dict[str, dict | None] = {}
    for r in results:
        for k in r.shown():
            e = r.metrics.get(k)
            entries.setdefault(k, e if isinstance(e, dict) else None)
    return sorted(entries, key=lambda k: display_key(k, entries[k]))


def direction(results: list[Results], key: str) -> bool | None:
    """higher_is_better of ``key`` as the first result that has it says (registry lookup)."""
    for r in results:
        if key in r.metrics:
            return r.higher_is_better(key)
    return None


#: Version of the results.json layout that :func:`build` writes; bump it when a key changes meaning.
SCHEMA_VERSION = 1


def build(kind: str, *, config: dict, device, dataset: dict, model: dict, protocol: dict, metrics: dict, n: int,
          **extra) -> dict:
    """The one place a results.json is made (``run``/``merge``: ``kind="run"``, ``score``: ``"score"``):
    the schema version, the version of fpdm-bench, the command line, the config that ran, the
    environment and git commit, and what was scored. ``extra``: the kind's own keys (a run's timing
    and skipped pairs, score's per-sample values). The layout is in
    docs/results-schema.md."""
    import sys

    from fpdm_bench import __version__
    from fpdm_bench.env import environment, git_commit

    return {"schema_version": SCHEMA_VERSION, "kind": kind, "fpdm_bench_version": __version__,
            "command": " ".join(sys.argv), "config": config, "environment": environment(device),
            "git_commit": git_commit(), "dataset": dataset, "model": model, "protocol": protocol, "n": n,
            "metrics": metrics, **extra}
