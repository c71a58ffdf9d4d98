"""The metric contract, and the registry every metric is found through.

A metric is one class in one file. Everything fpdm-bench knows about it is declared on that class
(no other file lists metric names), so a third-party package adds one through an entry point and
its tables, figures, comparisons and weight files work like the built-ins'. It declares

- ``name``: its registry name (what a protocol writes), ``higher_is_better`` and ``kind``:
  ``paired`` (each generated image against its target; one value per sample, kept in dataset order
  so every mean gets a bootstrap CI), ``set`` (the distribution of generated images against a
  reference set of real images, through a feature network) or ``sequence`` (the frames of one video
  against its ground-truth frames, in frame order: one value per video, averaged with a CI over
  videos; datasets that declare no videos leave it out);
- ``weights``: the weight files it needs, as :class:`fpdm_bench.weights.WeightSpec` records (metrics
  sharing a network refer to one record: FID and KID use ``metrics.inception.INCEPTION_WEIGHTS``);
  ``fpdm-bench weights`` lists the weights of every registered metric;
- ``outputs``: for a metric that reports several numbers (pose fidelity), each one's direction;

how reports show it:

- ``title`` / ``latex_title``: the column title of its own key in tables and figures (None: the
  key itself; LaTeX: the title, escaped);
- ``key_titles``: ``{result key: (title, LaTeX title)}`` of the other result keys it reports: its
  ``outputs`` and protocol keys that name it (``ssim_256`` is a protocol key of ``ssim``);
- ``order``: the position of its columns among the metrics (tables, compare, sweep tables,
  figures): lower first; within a class, its own key (or its ``outputs``) first, then the keys of
  ``key_titles``, in their order. None: after every ordered metric, alphabetically by key (as is any
  key no class declares);
- ``sample_rank``: its own key's preference as the per-sample view's default metric (lower first;
  None: picked only when no ranked metric is there, alphabetically);
- ``sweep_summary``: its own key is a column of the summary ``fpdm-bench sweep`` prints;

and how statistics treat it:

- ``depends_on_n``: its value changes with the number of images scored (set metrics: FID/KID are
  biased by 1/n), so values over different n are never ranked against each other;
- ``resample``: how ``fpdm-bench compare`` (and the tables' significance marks) gets the CI of the
  difference of two runs: ``"paired"`` (:data:`PAIRED_BOOTSTRAP`: a paired bootstrap of the
  per-sample differences), ``"frechet"`` (:data:`FRECHET_BOOTSTRAP`: a joint bootstrap of the stored
  features with a Fréchet distance per replicate, plus FID∞), ``"kid"`` (:data:`KID_BOOTSTRAP`: a
  joint bootstrap of the stored features with the KID estimator), ``"prdc"`` (:data:`PRDC_BOOTSTRAP`:
  a joint bootstrap of the stored features with the k-NN balls fixed), ``"sequence"``
  (:data:`SEQUENCE_BOOTSTRAP`: a paired bootstrap of the per-video differences kept in
  ``sequences.jsonl``), None (the two results.json CIs);

and implements ``update`` (a batch), ``merge`` (another process's or shard's state) and
``compute`` → ``{key: {"value", "ci95", "n", ...}}``. Settings come from the protocol
(``{"ssim_256": {"metric": "ssim", "variant": "gauss1.2-predrange"}}``): the protocol key names the
result, ``metric`` the class (default: the key), the other entries are the constructor's arguments.
A subclass registered under another name inherits these facts: it declares its own ``title`` and
``order`` (FD-DINOv2 subclasses FID).

Metrics are registered through the ``fpdm_bench.metrics`` entry-point group (``name =
"module:Class"``), so a third-party package adds one without editing fpdm-bench; see
``pyproject.toml`` for the built-in ones. :func:`metric_for_key`, :func:`display_key` and
:func:`key_title` read the facts above for a result key.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from fpdm_bench.metrics.bootstrap import mean_ci95
from fpdm_bench.registry import Registry

if TYPE_CHECKING:
    from fpdm_bench.weights import WeightSpec

METRICS = Registry("metric", entry_point_group="fpdm_bench.metrics")

#: values of ``Metric.resample`` (how compare gets the CI of a difference; see the module doc)
PAIRED_BOOTSTRAP = "paired"
FRECHET_BOOTSTRAP = "frechet"
KID_BOOTSTRAP = "kid"
PRDC_BOOTSTRAP = "prdc"
SEQUENCE_BOOTSTRAP = "sequence"


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
    #: the weight files it needs (fpdm_bench.weights.WeightSpec records)
    weights: ClassVar[tuple[WeightSpec, ...]] = ()
    #: result keys beyond ``key`` and their direction (metrics that report several numbers)
    outputs: ClassVar[dict[str, bool]] = {}
    #: column title of its own key (None: the key); LaTeX form (None: the title, escaped)
    title: ClassVar[str | None] = None
    latex_title: ClassVar[str | None] = None
    #: {result key: (title, LaTeX title)} of its other result keys (outputs, protocol keys naming it)
    key_titles: ClassVar[dict[str, tuple[str, str]]] = {}
    #: position of its columns among the metrics, lower first (None: after them, alphabetically)
    order: ClassVar[float | None] = None
    #: its own key's preference as the per-sample view's default metric, lower first (None: not preferred)
    sample_rank: ClassVar[int | None] = None
    #: its own key is a column of the summary `fpdm-bench sweep` prints
    sweep_summary: ClassVar[bool] = False
    #: the value depends on the number of images (never ranked across different n)
    depends_on_n: ClassVar[bool] = False
    #: how compare resamples a difference: PAIRED_BOOTSTRAP, FRECHET_BOOTSTRAP, KID_BOOTSTRAP, PRDC_BOOTSTRAP, … or None
    resample: ClassVar[str | None] = None
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
    resample = PAIRED_BOOTSTRAP
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
    depends_on_n = True

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


class SequenceMetric(Metric):
    """One value per video: its generated frames against its ground-truth frames, in frame order.

    The scorer (:mod:`fpdm_bench.sequences`) calls ``update(video, runs)`` once per video, in
    dataset order, with the video's runs of consecutive frames (a pair the run did not score splits
    a video in two): ``runs`` is a list of (generated, target) tensors [F, 3, H, W] in [0, 1], prepared
    as the paired metrics' images. Subclasses implement ``transitions(generated, target)``: one value
    per consecutive pair of frames (t-1, t) of a run, [F-1]. A video's value is the mean of its
    transitions (a video without one has no value and is not counted); ``compute`` averages the
    videos' values with a bootstrap 95 % CI over videos (``n`` = videos), so a long video weighs as
    much as a short one, and ``compare`` bootstraps the per-video differences (``sequences.jsonl``).
    """

    kind = "sequence"
    resample = SEQUENCE_BOOTSTRAP

    def __init__(self, key: str | None = None):
        super().__init__(key)
        self.values: dict[str, float] = {}  # video -> value, in the order the videos were added

    def transitions(self, generated: torch.Tensor, target: torch.Tensor):
        raise NotImplementedError

    def update(self, video: str, runs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
        """Score one video: ``{"value": mean of its transitions or None, "per_frame": one entry per
        frame, in order: the transition from the frame before, None where there is none (the first
        frame of each run)}``."""
        per_run = [np.asarray(self.transitions(g, t), np.float64).reshape(-1) if len(g) > 1 else np.zeros(0)
                   for g, t in runs]
        per_frame = [v for r in per_run for v in (None, *map(float, r))]
        flat = np.concatenate(per_run) if per_run else np.zeros(0)
        if flat.size == 0:
            return {"value": None, "per_frame": per_frame}
        self.values[video] = math.fsum(flat.tolist()) / flat.size
        return {"value": self.values[video], "per_frame": per_frame}

    def merge(self, other: "SequenceMetric") -> None:
        self.values.update(other.values)

    def compute(self) -> dict[str, dict]:
        """{key: {value, ci95, n (videos), metric, unit}}; {} when no video had two consecutive frames."""
        if not self.values:
            return {}
        return {self.key: {**summarize(list(self.values.values())), "metric": self.name, "unit": "videos"}}


def remainder(n: int, k: int) -> int:
    """How many of n items a script that works in batches of k drops: n % k, except that with fewer
    than k items the scripts shrink the batch to all of them and drop nothing."""
    return n % k if k and n >= k else 0


def summarize(values) -> dict:
    """{"value": mean, "ci95": [lo, hi] | None, "n": count} of per-sample values."""
    mean, ci = mean_ci95(values)
    return {"value": mean, "ci95": ci, "n": len(values)}


def metric_class(key: str, entry: dict | None = None):
    """The registered class that computed result ``key``: the one its results.json ``entry`` names
    under ``metric``, else the class named ``key``; None when neither is registered here."""
    name = (entry or {}).get("metric") or key
    return METRICS.get(name) if name in METRICS else None


def metric_direction(key: str, entry: dict | None = None) -> bool | None:
    """higher_is_better of a result key (``entry``: its results.json entry, which names the metric
    class under ``metric``), from the registry; None when no registered metric reports that key."""
    name = (entry or {}).get("metric") or key
    if name in METRICS:
        return METRICS.get(name).direction(key if key != name else None)
    for cls in registered():
        if key in cls.outputs:
            return cls.outputs[key]
    return None


# --- the facts of a result key, from the registered classes -------------------------------------


def registered() -> list[type[Metric]]:
    """Every registered metric class (a third-party entry point that cannot be imported is left out
    here; it is reported where a protocol uses it)."""
    out = []
    for name in METRICS.names():
        try:
            out.append(METRICS.get(name))
        except Exception:  # noqa: BLE001
            continue
    return out


def declared_keys(cls) -> list[str]:
    """The result keys a metric class declares, in display order: its ``outputs`` (else its name),
    then the keys of its ``key_titles``."""
    return list(dict.fromkeys([*(list(cls.outputs) or [cls.name]), *cls.key_titles]))


def metric_for_key(key: str, entry: dict | None = None):
    """The registered class that declares result key ``key`` (see :func:`declared_keys`): the class
    its results.json ``entry`` names, else the class named ``key``, else one declaring it in its own
    body, else one inheriting it; None when no class declares it."""
    name = (entry or {}).get("metric")
    for n in dict.fromkeys(x for x in (name, key) if x):
        if n in METRICS:
            try:
                cls = METRICS.get(n)
            except Exception:  # noqa: BLE001
                continue
            if key in declared_keys(cls):
                return cls
    classes = [c for c in registered() if key in declared_keys(c)]
    own = [c for c in classes if key in vars(c).get("outputs", {}) or key in vars(c).get("key_titles", {})]
    return (own or classes or [None])[0]


def display_key(key: str, entry: dict | None = None) -> tuple:
    """Sort key of result ``key`` in display order: the ordered classes' keys by (``order``, class,
    position among its declared keys), then every other key alphabetically."""
    cls = metric_for_key(key, entry)
    if cls is None or cls.order is None:
        return (1, 0.0, "", 0, key)
    return (0, float(cls.order), cls.name, declared_keys(cls).index(key), key)


def display_sorted(classes) -> list:
    """Metric classes in display order (``order``, then name; unordered ones last, by name)."""
    return sorted(classes, key=lambda c: (c.order is None, float(c.order or 0), c.name))


def key_title(key: str, entry: dict | None = None) -> tuple[str, str | None]:
    """(title, LaTeX title or None) of result ``key``: from ``key_titles`` or the class's
    ``title``/``latex_title``; (key, None) when no class gives it one (LaTeX None: escape the title)."""
    cls = metric_for_key(key, entry)
    if cls is None:
        return key, None
    if key in cls.key_titles:
        plain, latex = cls.key_titles[key]
        return plain, latex
    if key == cls.name and cls.title:
        return cls.title, cls.latex_title
    return key, None
