"""What the baselines' tiny trainers share: a resumable ``checkpoint.pt`` tied to the run's identity,
the EMA update, the loss log and ``train_info.json``. The training steps themselves stay in each
baseline's ``train.py``.
"""
from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import torch

from fpdm_bench.errors import BenchError
from fpdm_bench.io import atomic_write_text


def resume(ck: Path, identity: dict, states: dict, gen: torch.Generator) -> tuple[int, float]:
    """Load ``checkpoint.pt`` (tensors only, ``weights_only=True``) into ``states`` (name -> object
    with ``load_state_dict``) and ``gen``; returns (step, seconds so far), (0, 0.0) when absent.
    A checkpoint made by another config, seed or dataset is refused."""
    if not ck.exists():
        return 0, 0.0
    state = torch.load(ck, map_location="cpu", weights_only=True)
    if json.loads(state["identity"]) != json.loads(json.dumps(identity)):
        raise BenchError(f"{ck}: made by a different config, seed or dataset; use another --out or delete it")
    for name, obj in states.items():
        obj.load_state_dict(state[name])
    gen.set_state(state["gen"])
    return int(state["step"]), float(state["seconds"])


def save(ck: Path, identity: dict, states: dict, gen: torch.Generator, step: int, seconds: float) -> None:
    torch.save({**{name: obj.state_dict() for name, obj in states.items()}, "gen": gen.get_state(), "step": step,
                "seconds": seconds, "identity": json.dumps(identity)}, ck)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)


def check_loss(value: float, what: str, step: int) -> None:
    if not math.isfinite(value):
        raise BenchError(f"{what} training diverged at step {step} (loss {value}); lower train.lr")


def loss_summary(log_path: Path) -> dict:
    """Mean loss over the first and the last k logged steps (k = 50, or a fifth of a short log)."""
    losses = [json.loads(ln)["loss"] for ln in log_path.read_text().splitlines() if ln.strip()]
    k = max(1, min(50, len(losses) // 5))
    return {"first_loss_mean": sum(losses[:k]) / k, "final_loss_mean": sum(losses[-k:]) / k}


def write_info(out_dir: Path, *, command: str | None, seed: int, device, cfg: dict, dataset, data_sha: str,
               n_pairs: int, n_images: int, summary: dict, extra: dict | None = None) -> None:
    info = {"command": command, "seed": seed, "device": str(device), "config": cfg, "dataset": dataset.describe(),
            "data_pairs_sha256": data_sha, "n_train_pairs": n_pairs, "n_train_images": n_images,
            "versions": {"python": platform.python_version(), "torch": torch.__version__}, **(extra or {}),
            "summary": summary}
    atomic_write_text(out_dir / "train_info.json", json.dumps(info, indent=2, default=str) + "\n")


def load_config(name_or_path: str, configs: Path, what: str, overrides: list[str] = ()) -> dict:
    """A preset name (``configs/NAME.yaml``) or a YAML file, with FPDM's dotted ``key=value`` overrides."""
    import yaml

    from reference_impl.config import apply_overrides

    path = Path(name_or_path)
    if not path.suffix:
        path = configs / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(configs.glob("*.yaml")))
        raise BenchError(f"{what} config {name_or_path!r} not found (presets: {known}; or a YAML file)")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise BenchError(f"{path}: invalid YAML ({e})") from None
    cfg = apply_overrides(cfg, overrides)
    cfg["_source"] = str(path)
    return cfg
