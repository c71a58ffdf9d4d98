"""The Protocol record, the protocol registry and get_protocol (records.py holds the records)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from fpdm_bench.registry import Registry, UnknownName

RESIZE_LIBRARIES = ("pil", "torch", "cv2")


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
    # How images become 8-bit before scoring: "round" (PIL/PNG), "truncate" (CFLD's .to(uint8)).
    quantize: str = "round"
    generated_format: str = "png"  # "png" (lossless) or "jpeg:<quality>" (round trip before scoring)
    metrics: dict = field(default_factory=dict)
    fid_reference_split: str | None = None  # set metrics' reference: train | test; None = the dataset's
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
        if self.resize_library not in RESIZE_LIBRARIES:
            raise ValueError(f"protocol {self.name}: resize_library must be one of {RESIZE_LIBRARIES}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval_size"] = list(self.eval_size) if self.eval_size else None
        return d

    def reference_fingerprint(self) -> dict:
        """The settings that change how reference images are prepared (part of the refstats key)."""
        return {k: v for k, v in self.to_dict().items() if k in (
            "eval_size", "resize_library", "resize_filter", "resize_antialias", "quantize")}

    def with_changes(self, **changes) -> "Protocol":
        return replace(self, **changes)


# Built-in records register themselves below; a package adds a Protocol object through the
# ``fpdm_bench.protocols`` entry points (``name = "module:PROTOCOL"``).
PROTOCOLS = Registry("protocol", entry_point_group="fpdm_bench.protocols")


def register(p: Protocol) -> Protocol:
    PROTOCOLS.register(p.name, p, p.description)
    return p


def get_protocol(name: str | Protocol) -> Protocol:
    if isinstance(name, Protocol):
        return name
    return PROTOCOLS.get(name)
