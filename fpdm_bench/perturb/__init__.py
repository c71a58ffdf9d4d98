"""Input perturbations for robustness sweeps.

A perturbation changes one dataset sample between the dataset and the model adapter; no adapter
knows about it. ``pose.*`` perturbations change the target pose the model is asked to render (the
target image, the ground truth, never changes); ``source.*`` ones change the source image (and its
keypoints where the geometry changes). Each has severities 1..5 (``Perturbation.levels``) and
severity 0, the identity. Table: docs/perturbations.md.

    from fpdm_bench.perturb import apply_perturbation, parse_perturbation
    name, severity = parse_perturbation("pose.jitter:3")
    sample = apply_perturbation(dataset[i], name, severity, seed=run_seed,
                                keypoint_format=dataset.keypoint_format)

The result depends only on (seed, pair id, perturbation, severity), never on batch or order.

Perturbations are found through the ``fpdm_bench.perturbations`` entry-point group (``name =
"module:INSTANCE"``, a :class:`Perturbation` instance; fpdm-bench's own in pyproject.toml), so a
third-party package adds one without editing fpdm-bench; ``PERTURBATIONS.register(name, instance)``
adds one from code.
"""
from __future__ import annotations

from fpdm_bench.perturb.base import Perturbation, PerturbationError, check_severity, perturbation_rng
from fpdm_bench.registry import Registry

PERTURBATIONS = Registry("perturbation", entry_point_group="fpdm_bench.perturbations")


def get_perturbation(name: str) -> Perturbation:
    """The registered perturbation; an unknown name raises UnknownName with a did-you-mean hint."""
    return PERTURBATIONS.get(name)


def apply_perturbation(sample: dict, name: str, severity: int, seed: int,
                       keypoint_format: str | None = None) -> dict:
    """Perturb one sample; returns a new dict (severity 0: an unchanged copy).

    ``keypoint_format`` is the dataset's ("coco18" or "wholebody133"); None picks it from the
    number of keypoints (18 or 133).
    """
    return get_perturbation(name)(sample, severity, seed, keypoint_format)


def parse_perturbation(spec: str) -> tuple[str, int]:
    """'pose.jitter:3' -> ('pose.jitter', 3), checking the name and the severity (0..5)."""
    name, sep, sev = spec.strip().rpartition(":")
    if not sep or not name:
        raise PerturbationError(f"perturbation {spec!r}: expected NAME:SEVERITY, e.g. 'pose.jitter:3'")
    PERTURBATIONS.check(name)
    try:
        severity = int(sev)
    except ValueError:
        raise PerturbationError(f"perturbation {spec!r}: severity {sev!r} is not an integer 0..5") from None
    check_severity(severity)
    return name, severity


def describe_perturbations() -> list[dict]:
    """``describe()`` of every registered perturbation, by name."""
    return [get_perturbation(n).describe() for n in PERTURBATIONS.names()]


__all__ = ["PERTURBATIONS", "Perturbation", "apply_perturbation", "describe_perturbations", "get_perturbation",
           "parse_perturbation", "perturbation_rng"]
