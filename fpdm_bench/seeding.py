"""Per-sample seeds: a sample's randomness depends only on (run seed, pair id).

So a generated image does not depend on batch size, order, sharding or the number of GPUs.
"""
from __future__ import annotations

import hashlib

import torch


def sample_seed(run_seed: int, pair_id: str) -> int:
    digest = hashlib.sha256(f"{int(run_seed)}:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_generators(run_seed: int, pair_ids: list[str], device: str | torch.device = "cpu") -> list[torch.Generator]:
    gens = []
    for pid in pair_ids:
        g = torch.Generator(device=device)
        g.manual_seed(sample_seed(run_seed, pid))
        gens.append(g)
    return gens


def check_temperature(temperature, who: str) -> float:
    """The initial noise's scale as a float in [0, 1] (1 = a sample of the model; 0 with a deterministic
    sampler = its one path from the mean), else one error naming ``who``."""
    from fpdm_bench.errors import BenchError

    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise BenchError(f"{who}: temperature must be a number in [0, 1], got {temperature!r}") from None
    if not 0.0 <= t <= 1.0:  # also refuses NaN
        raise BenchError(f"{who}: temperature must be in [0, 1], got {temperature}")
    return t


def per_sample_randn(shape: tuple[int, ...], generators: list[torch.Generator], device, dtype) -> torch.Tensor:
    """[B, *shape] standard normal, row i drawn from generators[i] alone (on the generator's device)."""
    rows = [torch.randn(shape, generator=g, device=g.device, dtype=torch.float32) for g in generators]
    return torch.stack(rows).to(device=device, dtype=dtype)
