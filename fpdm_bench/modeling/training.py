"""What the trainers share: configs with dotted ``key=value`` overrides (every trainer, FPDM's too),
and for the baselines' tiny trainers the opening (``open_run``), a resumable ``checkpoint.pt`` tied to
the run's identity, the optimiser step with EMA, the loss log and ``train_info.json`` (``Loop``,
``write_info``). The training steps themselves stay in each model's ``train.py``; the click command
around a trainer is ``fpdm_bench_baselines.training.make_train_command`` (the CLI is a higher layer).
"""
from __future__ import annotations

import copy
import json
import math
import platform
from pathlib import Path
from typing import NamedTuple

import torch
import yaml

from fpdm_bench.errors import BenchError
from fpdm_bench.io import atomic_write_text


# --- configs ------------------------------------------------------------------------------------

def set_dotted(cfg: dict, key: str, value) -> None:
    """cfg['a']['b'] = value for key 'a.b'; missing intermediate dicts are created."""
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            raise BenchError(f"override {key!r}: {part!r} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def get_dotted(cfg: dict, key: str, default=None):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def apply_overrides(cfg: dict, overrides: list[str] | tuple[str, ...] | None) -> dict:
    """Return a copy of cfg with each 'dotted.key=value' applied (value parsed as YAML)."""
    out = copy.deepcopy(cfg)
    for item in overrides or ():
        if "=" not in item:
            raise BenchError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        set_dotted(out, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    return out


def merge(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on top: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else copy.deepcopy(v)
    return out


def load_config(name_or_path: str, configs: Path, what: str, overrides: list[str] = (), _seen: tuple = ()) -> dict:
    """A preset name (``configs/NAME.yaml``) or a YAML file, with dotted ``key=value`` overrides.

    A file with ``base: NAME`` (a preset, or a file relative to it) holds only what differs from that
    config (``merge``), so a variant recipe restates nothing of the one it varies."""
    path = Path(name_or_path)
    if not path.suffix:
        path = configs / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(configs.glob("*.yaml")))
        raise BenchError(f"{what} config {name_or_path!r} not found (presets: {known}; or a YAML file)")
    if path.resolve() in _seen:
        raise BenchError(f"{path}: its base chain comes back to itself")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise BenchError(f"{path}: invalid YAML ({e})") from None
    base = cfg.pop("base", None)
    if base is not None:
        ref = str(base) if not Path(str(base)).suffix else str(path.parent / str(base))
        parent = load_config(ref, configs, what, (), (*_seen, path.resolve()))
        cfg = merge({k: v for k, v in parent.items() if k != "_source"}, cfg)
    cfg = apply_overrides(cfg, overrides)
    cfg["_source"] = str(path)
    return cfg


# --- a run: its opening, resume state, loop and record ------------------------------------------

class Opening(NamedTuple):
    """What every baseline trainer starts from (``open_run``)."""

    out_dir: Path
    tc: dict  # the config's ``train`` section
    total: int  # steps to reach (``--max-steps`` or ``train.max_steps``)
    device: torch.device
    names: list[str]  # the split's images, sorted
    pairs: torch.Tensor  # [N, 2] indices into ``names``
    data_sha: str  # sha256 of the pairs


def open_run(cfg: dict, dataset, out_dir: str | Path, max_steps: int | None, device) -> Opening:
    """The opening every baseline trainer shares: the output folder (created), the ``train`` section,
    the step count, the device and the split's pairs (``pair_index``)::

        out_dir, tc, total, device, names, pairs, data_sha = training.open_run(cfg, dataset, out_dir, max_steps, device)
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tc = cfg["train"]
    total = int(max_steps or tc["max_steps"])
    return Opening(out_dir, tc, total, torch.device(device), *pair_index(dataset))


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


def save_dtype(tc: dict):
    """``train.save_dtype`` as a torch dtype (None = keep float32)."""
    return {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(str(tc.get("save_dtype")))


class Loop:
    """A trainer's bookkeeping around its own forward pass: resume from ``checkpoint.pt`` (refusing one
    made by another config, seed or dataset), the optimiser step (clipping, LR schedule, EMA), the loss
    log, periodic checkpoints, the progress bar and the summary's common fields::

        loop = Loop("cfld", out_dir, identity, tc, total, model, ema, opt, sched, gen)
        with loop:
            while loop.running:
                loss = ...  # one batch, drawn from gen
                loop.update(loss)
        summary = loop.finish()
    """

    def __init__(self, what: str, out_dir: Path, identity: dict, tc: dict, total: int, model, ema, opt, sched,
                 gen: torch.Generator, clip_params=None, progress: bool = True):
        self.what, self.out_dir, self.identity, self.tc, self.total = what, Path(out_dir), identity, tc, int(total)
        self.model, self.ema, self.gen, self.progress = model, ema, gen, progress
        self.opt, self.sched = opt, sched
        self.clip_params = list(clip_params) if clip_params is not None else list(model.parameters())
        self.ck = self.out_dir / "checkpoint.pt"
        self.states = {"model": model, "ema": ema, "opt": opt, "sched": sched}
        self.step, self.seconds_before = resume(self.ck, identity, self.states, gen)
        if self.step >= self.total:
            raise BenchError(f"{self.ck}: already at step {self.step} >= max_steps {self.total}")
        self.seconds = self.seconds_before

    @property
    def running(self) -> bool:
        return self.step < self.total

    def __enter__(self) -> "Loop":
        import time

        from tqdm import tqdm

        self._log = (self.out_dir / "train_log.jsonl").open("a")
        self._bar = tqdm(total=self.total, initial=self.step, disable=not self.progress, desc=f"{self.what} train")
        self._t0 = time.perf_counter()
        return self

    def elapsed(self) -> float:
        import time

        return self.seconds_before + time.perf_counter() - self._t0

    def update(self, loss: torch.Tensor) -> None:
        tc = self.tc
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.clip_params, float(tc.get("grad_clip", 1.0)))
        self.opt.step()
        self.sched.step()
        ema_update(self.ema, self.model, float(tc["ema_decay"]))
        self.step += 1
        value = loss.item()
        check_loss(value, self.what, self.step)
        elapsed = self.elapsed()
        self._log.write(json.dumps({"step": self.step, "loss": round(value, 6), "time_s": round(elapsed, 2)}) + "\n")
        if self.step % int(tc.get("log_every", 10)) == 0:
            self._log.flush()
        if self.step % int(tc.get("checkpoint_every", 250)) == 0 or self.step == self.total:
            self._log.flush()
            save(self.ck, self.identity, self.states, self.gen, self.step, elapsed)
        self._bar.set_postfix(loss=f"{value:.4f}")
        self._bar.update(1)

    def __exit__(self, *exc) -> None:
        self.seconds = self.elapsed()
        self._log.close()
        self._bar.close()

    def finish(self) -> dict:
        """After the weights are saved: drop ``checkpoint.pt`` unless ``keep_checkpoint``; the summary's
        common fields."""
        if not self.tc.get("keep_checkpoint", True):
            self.ck.unlink(missing_ok=True)
        return {"steps": self.step, "batch_size": int(self.tc["batch_size"]),
                **loss_summary(self.out_dir / "train_log.jsonl"), "seconds": round(self.seconds, 1),
                "seconds_per_step": round(self.seconds / max(1, self.step), 3),
                "parameters": sum(p.numel() for p in self.model.parameters())}


def pair_index(dataset) -> tuple[list[str], torch.Tensor, str]:
    """The split's images (sorted names), its pairs as [N, 2] indices into them, and the pairs' sha256."""
    from fpdm_bench.data.base import pairs_sha256

    names = sorted({r.source for r in dataset.pairs} | {r.target for r in dataset.pairs})
    index = {n: i for i, n in enumerate(names)}
    pairs = torch.tensor([[index[r.source], index[r.target]] for r in dataset.pairs])
    return names, pairs, pairs_sha256(dataset.pairs)


def fit_latent_space(vae_cfg: dict, images: torch.Tensor, units_per_pixel: float = 2.0):
    """The tiny recipe's patch-PCA autoencoder fitted on ``images`` [N,3,H,W] in [-1,1], its latent
    scale set to 1 / std of the training latents (as SD's 0.18215 was chosen), and those scaled
    latents. Returns (vae, latents, summary fields). ``units_per_pixel``: how many input units one
    pixel unit is, for the reconstruction MAE (2 for images as 2x - 1; a warp prior's residuals:
    its ``residual_scale``)."""
    from fpdm_bench.modeling.patch_pca import PatchPCAAutoencoder

    vae = PatchPCAAutoencoder(**vae_cfg)
    fit = vae.fit(images)
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mean
    vae.config.scaling_factor = float(1.0 / latents.std())
    latents = latents * vae.config.scaling_factor
    recon = vae.decode(latents / vae.config.scaling_factor).sample
    return vae, latents, {"vae_explained_variance": round(fit["explained_variance"], 5),
                          "vae_recon_mae": round(float(((recon - images).abs() / units_per_pixel).mean()), 5),
                          "vae_scaling_factor": vae.config.scaling_factor}


# train settings that do not change the weights a run produces (so a resume may change them)
NOT_SHAPING = ("max_steps", "checkpoint_every", "log_every", "save_dtype", "keep_checkpoint")


def shaping(tc: dict) -> dict:
    """The ``train`` settings that shape the weights: the part of a run's identity a resume must match."""
    return {k: v for k, v in tc.items() if k not in NOT_SHAPING}


def warmup_schedule(opt, tc: dict):
    """Linear learning-rate warm-up over ``train.warmup_steps`` (0 = none), then constant."""
    warmup = int(tc.get("warmup_steps", 0))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
