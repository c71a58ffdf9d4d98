"""Named evaluation protocols: every setting a PGPIS number depends on, as a declarative record.

``get_protocol(name)`` returns a :class:`Protocol`; ``PROTOCOLS`` lists them (did-you-mean on typos).
The records, each citing the official file it reproduces, are in :mod:`.records`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from fpdm_bench.registry import Registry

RESIZE_LIBRARIES = ("pil", "torch", "cv2")


@dataclass(frozen=True)
class Protocol:
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
    metrics: tuple[str, ...] = ("fid", "kid", "lpips", "ssim", "psnr", "mae")
    ssim_variants: dict = field(default_factory=lambda: {"ssim": "uniform51"})  # metric name -> variant
    fid_backbone: str = "fid-inception"  # fid-inception | torchvision-inception
    fid_reference_split: str | None = None  # train | test; None = the dataset's fid_reference_split
    fid_drop_remainder: int = 0  # >0: features are used in batches of this size, the remainder dropped
    lpips_net: str = "alex"
    lpips_drop_remainder: int = 0  # >0: LPIPS mean over the first len - len % k pairs (dataset order)
    mae_variant: str = "mean_abs"  # mean_abs | gfla_normalised (see metrics/mae.py)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    fid_replicates: int = 10  # Poisson-bootstrap replicates for FID's CI (0 = no CI)
    notes: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval_size"] = list(self.eval_size) if self.eval_size else None
        d["metrics"] = list(self.metrics)
        return d

    def reference_fingerprint(self) -> dict:
        """The settings that change reference-set features (the refstats cache key uses these)."""
        return {k: v for k, v in self.to_dict().items() if k in (
            "eval_size", "resize_library", "resize_filter", "resize_antialias", "quantize", "fid_backbone",
            "fid_drop_remainder")}

    def with_changes(self, **changes) -> "Protocol":
        return replace(self, **changes)


PROTOCOLS = Registry("protocol")


def register(p: Protocol) -> Protocol:
    PROTOCOLS.register(p.name, p, p.description)
    return p


def get_protocol(name: str | Protocol) -> Protocol:
    if isinstance(name, Protocol):
        return name
    return PROTOCOLS.get(name)


from fpdm_bench.protocols import records  # noqa: E402,F401  (registers the records)
