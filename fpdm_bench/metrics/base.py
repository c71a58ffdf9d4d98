"""The metric contract, and the registry every metric is found through.

A metric is one class in one file. It declares

- ``name``: its registry name (what a protocol writes), ``higher_is_better`` and ``kind``:
  ``paired`` (each generated image against its target; one value per sample, kept in dataset order
  so every mean gets a bootstrap CI) or ``set`` (the distribution of generated images against a
  reference set of real images, through a feature network);
- ``weights``: the weight files it needs (names in :mod:`fpdm_bench.weights`);
- ``outputs``: for a metric that reports several numbers (pose fidelity), each one's direction;

and implements ``update`` (a batch), ``merge`` (another process's or shard's state) and
``compute`` → ``{key: {"value", "ci95", "n", ...}}``. Settings come from the protocol
(``{"ssim_256": {"metric": "ssim", "variant": "gauss1.2-predrange"}}``): the protocol key names the
result, ``metric`` the class (default: the key), the other entries are the constructor's arguments.

Metrics are registered through the ``fpdm_bench.metrics`` entry-point group (``name =
"module:Class"``), so a third-party package adds one without editing fpdm-bench; see
``pyproject.toml`` for the built-in ones.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from fpdm_bench.metrics.bootstrap import mean_ci95
from fpdm_bench.registry import Registry

METRICS = Registry("metric", entry_point_group="fpdm_bench.metrics")


class MetricUnavailable(Exception):
    """Raised by ``setup`` when a metric cannot run here (missing package, missing weights): the
    result then reports the reason instead of a value. The message names what is missing."""


class MetricContext:
    """What a metric's ``setup`` may use: the device, explicit weight paths and stand-in networks.

    ``networks`` maps a network name (``fid-inception``, ``lpips-alex``, ``dinov2``, ...) to a module
    used instead of building it (tests use small stand-ins); ``weights`` maps weight names to files.
    Built networks are cached per context, so FID and KID share one Inception.
    """

    def __init__(self, device="cpu", weights: dict | None = None, networks: dict | None = None):
        self.device = torch.device(device)
        self.weights = dict(weights or {})
        self._networks = dict(networks or {})

    def network(self, name: str, build):
        """The module for network ``name``: a given stand-in, else ``build(device)``."""
        if name not in self._networks:
            self._networks[name] = build(self.device)
        return self._networks[name]


class Metric:
    name: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = True
    kind: ClassVar[str] = "paired"
    weights: ClassVar[tuple[str, ...]] = ()
    #: result keys beyond ``key`` and their direction (metrics that report several numbers)
    outputs: ClassVar[dict[str, bool]] = {}
    drop_remainder: int = 0  # k > 0: the last N % k images (in the protocol's file order) are left out
    view: dict | None = None  # the protocol's extra resize for this metric (see protocols.apply.apply_view)

    def __init__(self, key: str | None = None):
        self.key = key or self.name

    @classmethod
    def direction(cls, output: str | None = None) -> bool:
        """higher_is_better of the metric, or of one of its ``outputs``."""
        return cls.outputs.get(output, cls.higher_is_better) if output else cls.higher_is_better

    def setup(self, ctx: MetricContext) -> None:
        """Load networks/weights (raise MetricUnavailable or WeightsMissing when they are missing)."""

    def settings(self) -> dict:
        """The settings that determine the numbers (for results.json)."""
        return {}

    def describe(self) -> dict:
        return {"metric": self.name, "kind": self.kind, "higher_is_better": self.higher_is_better,
                **self.settings()}

    def merge(self, other: "Metric") -> None:
        raise NotImplementedError

    def compute(self, *args) -> dict[str, dict]:
        raise NotImplementedError


class PairedMetric(Metric):
    """One value per sample. State: the values in dataset order (merge = concatenation, in order).

    Subclasses implement ``per_sample`` (a tensor [B] of values, or one dict per sample for metrics
    with several ``outputs``). ``frame`` says which images they get: ``eval`` = generated and
    target prepared by the protocol at its evaluation size; ``batch`` = the generated image as the
    model returned it, in the frame of the batch's keypoints (pose fidelity).
    ``drop_remainder`` = k > 0 averages over the first len - len % k samples (scripts that drop the
    last partial batch; see :func:`remainder`).
    """

    kind = "paired"
    frame: ClassVar[str] = "eval"
    hidden_outputs: ClassVar[tuple[str, ...]] = ()  # kept in results.json, left out of tables

    def __init__(self, key: str | None = None, drop_remainder: int = 0):
        super().__init__(key)
        self.drop_remainder = int(drop_remainder)
        self.values: dict[str, list[float]] = {}

    def settings(self) -> dict:
        return {"drop_remainder": self.drop_remainder} if self.drop_remainder else {}

    def keys(self) -> list[str]:
        return list(self.outputs) or [self.key]

    def per_sample(self, generated: torch.Tensor, target: torch.Tensor, batch: dict):
        raise NotImplementedError

    def update(self, generated: torch.Tensor, target: torch.Tensor | None, batch: dict) -> list[dict[str, float]]:
        """Score a batch; returns one {key: value} dict per sample (what samples.jsonl keeps)."""
        if target is not None and generated.shape != target.shape:
            raise ValueError(f"{self.key}: generated {tuple(generated.shape)} and target "
                             f"{tuple(target.shape)} differ in shape")
        vals = self.per_sample(generated, target, batch)
        if isinstance(vals, torch.Tensor):
            rows = [{self.key: float(v)} for v in vals.tolist()]
        else:
            rows = [{k: float(r[k]) for k in self.keys()} for r in vals]
        for r in rows:
            for k, v in r.items():
                self.values.setdefault(k, []).append(v)
        return rows

    def load(self, rows: list[dict]) -> None:
        """Replace the state by the per-sample values of finished samples (dataset order): how a
        resumed or sharded run scores what earlier processes wrote to samples.jsonl."""
        self.values = {k: [r[k] for r in rows if k in r] for k in self.keys()}

    def merge(self, other: "PairedMetric") -> None:
        for k, v in other.values.items():
            self.values.setdefault(k, []).extend(v)

    def compute(self) -> dict[str, dict]:
        out = {}
        for k in self.keys():
            vals = self.values.get(k, [])
            if not vals:
                continue
            dropped = remainder(len(vals), self.drop_remainder)
            out[k] = {**summarize(vals[: len(vals) - dropped]), "metric": self.name}
            if dropped:
                out[k]["dropped"] = dropped
            if k in self.hidden_outputs:
                out[k]["display"] = False
        return out


class SetMetric(Metric):
    """A distribution metric over features of the generated images against a reference set.

    ``backbone`` names the feature network (and its weight, see fpdm_bench.weights); ``setup``
    builds it once per scorer through ``build_network`` (Inception by default), so metrics on the
    same backbone share one network. The scorer runs each network once per image, feeds
    ``update(features, ids)``, computes the reference set's statistics with the same network and
    calls ``compute(reference)`` with a :class:`fpdm_bench.refstats.RefStats`.
    ``reference_drops()`` lists the remainder sizes whose reference moments it needs.
    """

    kind = "set"
    higher_is_better = False

    def __init__(self, key: str | None = None, backbone: str = "fid-inception"):
        super().__init__(key)
        self.backbone = backbone
        self.extractor = None

    @property
    def network_name(self) -> str:
        return self.backbone

    def build_network(self, path, device):
        from fpdm_bench.metrics import inception

        return inception.build(self.backbone, path, device)

    def setup(self, ctx: MetricContext) -> None:
        self.extractor = ctx.network(self.backbone, lambda device: self.build_network(ctx.weights.get(self.backbone),
                                                                                      device))

    def update(self, features: np.ndarray, ids: list[str]) -> None:
        raise NotImplementedError

    def reference_drops(self) -> tuple[int, ...]:
        return ()


def remainder(n: int, k: int) -> int:
    """How many of n items a script that works in batches of k drops: n % k, except that with fewer
    than k items the scripts shrink the batch to all of them and drop nothing."""
    return n % k if k and n >= k else 0


def summarize(values) -> dict:
    """{"value": mean, "ci95": [lo, hi] | None, "n": count} of per-sample values."""
    mean, ci = mean_ci95(values)
    return {"value": mean, "ci95": ci, "n": len(values)}


def metric_direction(key: str, entry: dict | None = None) -> bool | None:
    """higher_is_better of a result key (``entry``: its results.json entry, which names the metric
    class under ``metric``), from the registry; None when no registered metric reports that key."""
    name = (entry or {}).get("metric") or key
    if name in METRICS:
        return METRICS.get(name).direction(key if key != name else None)
    for other in METRICS.names():
        cls = METRICS.get(other)
        if key in cls.outputs:
            return cls.outputs[key]
    return None
