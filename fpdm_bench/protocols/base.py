"""The Protocol record, the protocol registry and get_protocol (records.py holds the records)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fpdm_bench.registry import Registry, UnknownName

RESIZE_LIBRARIES = ("pil", "torch", "cv2")
REFERENCE_RULES = (None, "train", "test", "test-targets", "train-list")


@dataclass(frozen=True)
class Protocol:
    """How images are prepared and which metrics score them.

    ``metrics`` maps each result key to its metric and settings: ``{"ssim": {"variant": "uniform51"},
    "ssim_256": {"metric": "ssim", "variant": "gauss1.2-predrange"}, "fid": {"backbone": ...}}``
    (``metric`` defaults to the key; the rest are the metric class's arguments, see
    ``fpdm_bench/metrics/``). A sequence of names is read as ``{name: {}}``. A name no registered
    metric has is an error here, when the protocol is made.
    """

    name: str
    description: str
    source: str  # the official file (repo + path) this record reproduces
    # Images are compared at eval_size (H, W); None = the dataset's native size (no resize).
    eval_size: tuple[int, int] | None = None
    resize_library: str = "pil"  # pil | torch | cv2
    resize_filter: str = "bicubic"  # bicubic | bilinear
    resize_antialias: bool = True  # PIL always antialiases; cv2 never does
    # How images become 8-bit before scoring: "round" (PIL/PNG), "truncate" (CFLD's .to(uint8)),
    # "none" (kept as floats, PIDM's cv2 path).
    quantize: str = "round"
    generated_format: str = "png"  # "png" (lossless) or "jpeg:<quality>" (round trip before scoring)
    # Real images (ground truth, reference set) where a script reads them differently from its
    # generated ones: {"library", "filter", "antialias", "quantize"}; None = as the generated side.
    real_resize: dict | None = None
    metrics: dict = field(default_factory=dict)
    # The set metrics' reference images: "train" / "test" (every image of that split), "test-targets"
    # (the unique targets of the evaluated pairs, FPDM's 'test'), "train-list" (the names in the
    # dataset's train.lst, CFLD); None = the dataset's default. A folder can be given at run time.
    reference: str | None = None
    # The official generated file name, "{pair_id}", "{source}", "{target}" (file names) filled in:
    # remainder drops remove the last images in this name's sorted order, as the scripts list files.
    generated_name: str = "{pair_id}.png"
    # Where each setting comes from: setting or metric key -> "repo path:line (what it says)".
    citations: dict = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        from fpdm_bench.metrics.base import METRICS

        metrics = self.metrics
        if not isinstance(metrics, dict):
            metrics = {m: {} for m in metrics}
        metrics = {k: dict(v or {}) for k, v in metrics.items()}
        for key, settings in metrics.items():
            try:
                METRICS.check(settings.get("metric", key))
            except KeyError as e:
                raise UnknownName(f"protocol {self.name}: metric {key!r}: {e}") from None
        object.__setattr__(self, "metrics", metrics)
        for lib in [self.resize_library, (self.real_resize or {}).get("library", "pil")] + \
                [m["view"].get("library", "pil") for m in metrics.values() if m.get("view")]:
            if lib not in RESIZE_LIBRARIES:
                raise ValueError(f"protocol {self.name}: resize library must be one of {RESIZE_LIBRARIES}, got {lib!r}")
        if self.reference not in REFERENCE_RULES:
            raise ValueError(f"protocol {self.name}: reference must be one of {REFERENCE_RULES}, got {self.reference!r}")
        # what the registry shows for a record found through an entry point (first line of __doc__)
        object.__setattr__(self, "__doc__", self.description)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval_size"] = list(self.eval_size) if self.eval_size else None
        return d

    def reference_fingerprint(self) -> dict:
        """The settings that change how reference images are prepared (part of the refstats key)."""
        return {k: v for k, v in self.to_dict().items() if k in (
            "eval_size", "resize_library", "resize_filter", "resize_antialias", "quantize", "real_resize")}

    def official_name(self, pair) -> str:
        """The file name the protocol's official script gives a pair's generated image."""
        if isinstance(pair, str):
            return self.generated_name.format(pair_id=pair, source="", target="")
        return self.generated_name.format(pair_id=pair.pair_id, source=Path(pair.source).name,
                                          target=Path(pair.target).name)

    def remainder_dropped(self, pairs, k: int) -> set[str]:
        """Pair ids of the last len % k pairs in the sorted order of their official file names: the
        images a script that lists its folder sorted and drops the partial last batch never sees.
        With fewer than k pairs the scripts shrink the batch to all of them: nothing is dropped."""
        if not k or not pairs or len(pairs) < k:
            return set()
        order = sorted(pairs, key=self.official_name)
        n = len(order) % k
        return {p if isinstance(p, str) else p.pair_id for p in order[len(order) - n:]} if n else set()

    def with_changes(self, **changes) -> "Protocol":
        return replace(self, **changes)


# Every record, fpdm-bench's own (records.py) and a third-party package's, is found through the
# ``fpdm_bench.protocols`` entry points (``name = "module:PROTOCOL"``); register() adds one from code.
PROTOCOLS = Registry("protocol", entry_point_group="fpdm_bench.protocols")


def register(p: Protocol) -> Protocol:
    """Add protocol ``p`` under its name (for records made in code; packages use the entry points)."""
    PROTOCOLS.register(p.name, p, p.description)
    return p


def get_protocol(name: str | Protocol) -> Protocol:
    if isinstance(name, Protocol):
        return name
    return PROTOCOLS.get(name)
