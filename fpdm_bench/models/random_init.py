"""Random-weight builds of published configurations: ``--model-arg init=random``.

Every model that has a published configuration can be built at that size with random weights, so a
user can check shapes, memory and latency (``fpdm-bench profile``, a short ``run``) before fetching
gigabytes of weights. One mechanism serves every model: :func:`fpdm_bench.models.load_model` takes
``init=random`` (and ``init_seed=N``) off the model arguments and calls the adapter's
``from_random``. A random-weight adapter says so in ``info()["init"]``; the runner then scores no
metric (a random model's FID is no model's quality) and marks results.json, tables, reports and
``compare`` refuses it.

The towers' architectures come from the small JSON configs in ``architectures/`` (the public
``config.json`` files of the published models, never weights): :func:`architecture` reads one.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

ARCHITECTURES = Path(__file__).parent / "architectures"
INITS = ("pretrained", "random")
#: what results.json, tables and reports say about a random-weight run
RANDOM_NOTE = ("random weights (--model-arg init=random): a published configuration built without its weights, "
               "for shapes, memory and time; no metric is scored")


def architecture(name: str) -> dict:
    """The shipped architecture config ``architectures/<name>.json`` (keys starting with ``_`` dropped:
    they are the file's provenance, not arguments)."""
    from fpdm_bench.errors import BenchError

    path = ARCHITECTURES / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ARCHITECTURES.glob("*.json")))
        raise BenchError(f"no architecture config {name!r} in {ARCHITECTURES} (known: {known})")
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


@contextlib.contextmanager
def seeded(seed: int):
    """Build modules under ``torch.manual_seed(seed)`` without touching the caller's RNG state, so the
    same seed gives the same weights in any process."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def parse_init(kwargs: dict) -> tuple[str, int]:
    """Take ``init`` and ``init_seed`` off the model arguments: ('pretrained' | 'random', seed)."""
    from fpdm_bench.errors import BenchError

    init = str(kwargs.pop("init", "pretrained"))
    seed = kwargs.pop("init_seed", 0)
    if init not in INITS:
        raise BenchError(f"--model-arg init={init!r}: expected one of {', '.join(INITS)}")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise BenchError(f"--model-arg init_seed={seed!r}: expected an integer") from None
    if init == "pretrained" and seed:
        raise BenchError("--model-arg init_seed only applies with init=random")
    return init, seed


def label(name: str, random: bool) -> str:
    """A model name as tables, reports and profiles show it: marked when its weights are random."""
    return f"{name} [random weights]" if random else name


def is_random(model_info: dict | None) -> bool:
    """Whether an adapter's info() (or results.json's ``model``) is a random-weight build."""
    return isinstance(model_info, dict) and model_info.get("init") == "random"


def count_parameters(*modules: torch.nn.Module) -> int:
    """Parameters of the modules, shared tensors counted once."""
    seen = {}
    for m in modules:
        for p in m.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def random_info(seed: int | None, published_steps: int | None, configuration: str = "published") -> dict:
    """What a random-weight adapter adds to its ``info()`` (nothing when ``seed`` is None, i.e. for
    trained weights): the marks the runner, tables and ``compare`` read, and the published step count
    ``tools/bench_published.py`` extrapolates to."""
    if seed is None:
        return {}
    return {"init": "random", "init_seed": int(seed), "configuration": configuration,
            "published_steps": published_steps}
