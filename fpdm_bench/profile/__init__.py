"""What a model costs: latency, throughput, per-stage time, NFE and memory per (batch size, steps).

``profile(ProfileConfig(...))`` returns a JSON-able report; ``format_table(report)`` prints it.
``fpdm-bench profile`` (fpdm_bench.commands.profile) is the command line.

How it measures, per (steps, batch size):

- the model is loaded once per steps value (``steps`` is passed to the adapter only if its
  ``from_pretrained`` takes one; a model without steps is profiled once, steps reported as null);
- the batch is the dataset's first ``batch_size`` pairs (loaded at the protocol's evaluation size,
  as ``fpdm-bench run`` loads them); each call gets fresh per-pair generators (made outside the
  timed region), ``model.generate`` runs under ``torch.inference_mode``;
- ``warmup`` untimed calls, then ``repeats`` timed calls (``time.perf_counter``; on CUDA the device
  is synchronised before and after each call). Reported: median and spread (min, max, IQR, sd) of
  the seconds per batch, per image and images per second;
- per stage (``ModelAdapter.stages()``): timing hooks are installed for the timed calls only and
  removed afterwards (forward pre/post hooks on a module, a temporary wrapper for an
  ``(object, method)`` stage; on CUDA each hook synchronises, which can add a little to the total).
  Per stage: calls per batch, seconds per batch, seconds per call; ``other`` = total minus the time
  spent inside any stage (sampler arithmetic, resizing, glue); one denoising step = the denoiser's
  time / the sampler's iterations (``ModelAdapter.sampler_steps()``);
- memory: on CUDA ``torch.cuda.max_memory_allocated`` over the timed calls after
  ``reset_peak_memory_stats`` (tensors allocated by PyTorch; the caching allocator may reserve more),
  with the allocation before them (weights, cached inputs) as the baseline; on CPU the process's
  resident set size (RSS) sampled every 5 ms in a thread from before the warm-up to the end of the
  timed calls: the peak and its increase over the RSS before the warm-up (the allocator keeps what the
  first call took, so the timed calls alone would show almost nothing; short spikes between samples
  can be missed). The process-lifetime RSS high-water mark (``getrusage`` maxrss: includes loading
  and every earlier row) is reported too, labelled as such;
- the metric pass on the last generated batch, timed like the calls (``warmup`` untimed, then
  ``repeats``): 8-bit quantisation as the runner does it, the protocol Scorer's ``update`` (its
  paired metrics: SSIM, PSNR, MAE, LPIPS, ...), the set metrics' feature extraction (FID/KID
  Inception, FD-DINOv2) of those images and feeding the features to FID/KID. The end-of-run
  FID/KID computation against the reference statistics is not per batch and is not timed.
  Metrics whose weights are missing are listed as unavailable.
"""
from __future__ import annotations

import inspect
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from fpdm_bench.errors import BenchError
from fpdm_bench.profile.memory import RSS_INTERVAL_S, MemoryMeter
from fpdm_bench.profile.stages import StageTimer, is_cuda, sync

FORMAT = "fpdm-bench/profile"
DENOISER_NAMES = ("denoiser", "unet")
VAE_DECODE_NAMES = ("vae_decode",)


# --- configuration ------------------------------------------------------------------------------


@dataclass
class ProfileConfig:
    model: str
    dataset: str = "synthetic"
    data_root: str | None = None
    split: str = "test"
    checkpoint: str | None = None
    model_args: dict = field(default_factory=dict)
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4, 16])
    #: sampler steps to profile; None = the model's default (one value)
    steps: list[int] | None = None
    dtype: str = "float32"
    device: str = "cpu"
    repeats: int = 5
    warmup: int = 1
    #: protocol: the batches are loaded at its evaluation size, and its metrics are timed (metric_pass)
    protocol: str | None = "standard"
    seed: int = 0
    #: False: no metric pass (the protocol still sets the size the batches are loaded at)
    metric_pass: bool = True


def parse_int_list(text, option: str) -> list[int]:
    """'1,4,16' -> [1, 4, 16] (positive integers, duplicates dropped, order kept); a BenchError
    naming the option otherwise."""
    if isinstance(text, (list, tuple)):
        items = [str(v) for v in text]
    else:
        items = [v.strip() for v in str(text).split(",")]
    out: list[int] = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            value = None
        if value is None or value < 1:
            raise BenchError(f"{option}: expected comma-separated positive integers such as 1,4,16 (got {text!r}; "
                             f"{item!r} is not one)")
        if value not in out:
            out.append(value)
    if not out:
        raise BenchError(f"{option}: expected comma-separated positive integers such as 1,4,16 (got {text!r})")
    return out


def takes_steps(cls) -> bool:
    """Whether the adapter class's from_pretrained (or, for the base one, its constructor) takes
    ``steps`` (the check ``load_model`` makes for any argument)."""
    from fpdm_bench.models import ModelAdapter

    target = cls.__init__ if cls.from_pretrained.__func__ is ModelAdapter.from_pretrained.__func__ else cls.from_pretrained
    params = inspect.signature(target).parameters
    return "steps" in params


# --- statistics ---------------------------------------------------------------------------------


def summarize(values) -> dict:
    """median, mean, min, max, IQR (inclusive quartiles), sd (sample; 0 for one value), n and the
    values (the mean is there for costs that come in bursts, e.g. FID folding its sums every 64 images)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"median": None, "mean": None, "min": None, "max": None, "iqr": None, "sd": None, "n": 0, "values": []}
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
        sd = statistics.stdev(vals)
    else:
        q1 = q3 = vals[0]
        sd = 0.0
    return {"median": statistics.median(vals), "mean": statistics.fmean(vals), "min": min(vals), "max": max(vals),
            "iqr": q3 - q1, "sd": sd, "n": len(vals), "values": vals}


# --- the metric pass ----------------------------------------------------------------------------


def metric_pass(scorer, images: torch.Tensor, batch: dict, device) -> dict[str, float]:
    """One timed metric pass over generated images, in seconds: ``quantize`` (8-bit round trip),
    ``paired`` (Scorer.update without the set metrics), ``features`` (the set metrics' feature
    networks), ``set_update`` (feeding those features to FID/KID: FID folds its sums every 64
    images), ``total``."""
    from fpdm_bench.images import from_uint8, to_uint8

    sync(device)
    t0 = time.perf_counter()
    quantised = from_uint8(to_uint8(images))
    t1 = time.perf_counter()
    scorer.update(quantised, batch, set_metrics=False)
    sync(device)
    t2 = time.perf_counter()
    t3 = t2
    if scorer.set:
        feats = scorer.set_features(quantised)
        sync(device)
        t3 = time.perf_counter()
        scorer.add_set_features(feats, list(batch["pair_id"]))
    sync(device)
    t4 = time.perf_counter()
    return {"quantize": t1 - t0, "paired": t2 - t1, "features": t3 - t2, "set_update": t4 - t3, "total": t4 - t0}


# --- profiling ----------------------------------------------------------------------------------


def _find(stages: dict, names) -> str | None:
    return next((n for n in names if n in stages), None)


def _stage_rows(snaps: list[dict], totals: list[float], covered: list[float], sampler_steps: int | None) -> dict:
    names = list(snaps[0]) if snaps else []
    med_total = statistics.median(totals)
    stages = {}
    for n in names:
        calls = [s[n]["calls"] for s in snaps]
        secs = [s[n]["seconds"] for s in snaps]
        med = statistics.median(secs)
        c = statistics.median(calls)
        entry = {"calls_per_batch": int(c) if c == int(c) else c, "seconds_per_batch": summarize(secs),
                 "seconds_per_call": med / c if c else None, "share_of_total": med / med_total if med_total else None}
        if min(calls) != max(calls):
            entry["calls_per_batch_range"] = [min(calls), max(calls)]
        nested = max(s[n]["nested_calls"] for s in snaps)
        if nested:
            entry["nested_calls"] = nested
        stages[n] = entry
    out = {"stages": stages,
           "stages_seconds": summarize(covered) if names else None,
           "other_seconds": summarize([t - c for t, c in zip(totals, covered)]) if names else None}
    den = _find(stages, DENOISER_NAMES)
    out["denoiser_stage"] = den
    if den and sampler_steps:
        out["denoising_step_seconds"] = stages[den]["seconds_per_batch"]["median"] / sampler_steps
        out["denoiser_calls_per_step"] = stages[den]["calls_per_batch"] / sampler_steps
    else:
        out["denoising_step_seconds"] = None
    vae = _find(stages, VAE_DECODE_NAMES)
    out["vae_decode_seconds"] = stages[vae]["seconds_per_batch"]["median"] if vae else None
    return out


def profile_batch(model, batch: dict, cfg: ProfileConfig, scorer=None) -> dict:
    """One row: warm-up, timed calls (stages hooked), memory, metric pass; see the module docstring."""
    from fpdm_bench.models.base import check_output
    from fpdm_bench.seeding import make_generators

    device = cfg.device
    ids = list(batch["pair_id"])
    bs = len(ids)

    def call():
        gens = make_generators(cfg.seed, ids, device=device)
        sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(batch, gens)
        sync(device)
        return out, time.perf_counter() - t0

    stages = model.stages() or {}
    sampler_steps = model.sampler_steps()
    totals, snaps, covered = [], [], []
    timer = StageTimer(stages, device)
    images = None
    with MemoryMeter(device) as memory:
        for _ in range(cfg.warmup):
            images, _ = call()
        if images is not None:
            check_output(images, batch, model.name)
        memory.timed()
        with timer:
            for _ in range(cfg.repeats):
                timer.reset()
                images, seconds = call()
                totals.append(seconds)
                snaps.append(timer.snapshot())
                covered.append(timer.covered)
    if cfg.warmup == 0:
        check_output(images, batch, model.name)

    info = model.info()
    row = {"batch_size": bs, "steps": None, "sampler_steps": sampler_steps, "nfe": info.get("nfe"),
           "seconds_per_batch": summarize(totals),
           "seconds_per_image": summarize([t / bs for t in totals]),
           "images_per_second": summarize([bs / max(t, 1e-12) for t in totals]),
           "memory": memory.result}
    row.update(_stage_rows(snaps, totals, covered, sampler_steps) if stages else
               {"stages": {}, "stages_seconds": None, "other_seconds": None, "denoiser_stage": None,
                "denoising_step_seconds": None, "vae_decode_seconds": None})
    if scorer is not None:
        for _ in range(cfg.warmup):
            metric_pass(scorer, images, batch, device)
        passes = [metric_pass(scorer, images, batch, device) for _ in range(cfg.repeats)]
        row["metric_pass"] = {k: summarize([p[k] for p in passes])
                              for k in ("quantize", "paired", "features", "set_update", "total")}
        row["metric_pass"]["seconds_per_image"] = statistics.median(p["total"] for p in passes) / bs
    else:
        row["metric_pass"] = None
    return row


def _open(cfg: ProfileConfig):
    """The dataset as `fpdm-bench run` loads it (at the protocol's evaluation size, else native)."""
    from fpdm_bench.data import DATASETS, open_for_protocol

    DATASETS.check(cfg.dataset)
    return open_for_protocol(cfg.dataset, cfg.data_root, cfg.split, cfg.protocol)


def _scorer(cfg: ProfileConfig, dataset, pairs, log) -> tuple[Any, dict]:
    """The protocol's Scorer and what the report says about it (or None when there is no pass)."""
    if not cfg.protocol or not cfg.metric_pass:
        return None, {"protocol": None, "skipped": "no metric pass requested"}
    from fpdm_bench.scoring import Scorer

    t0 = time.perf_counter()
    try:
        scorer = Scorer(cfg.protocol, device=cfg.device, dataset=dataset, pairs=pairs)
    except BenchError as e:  # e.g. real images smaller than the protocol's size: profile the model anyway
        log(f"metric pass skipped: {e}")
        return None, {"protocol": cfg.protocol, "skipped": str(e)}
    desc = {"protocol": cfg.protocol, "setup_seconds": time.perf_counter() - t0,
            "paired": [m.key for m in scorer.paired], "set": [m.key for m in scorer.set],
            "set_feature_networks": sorted({m.network_name for m in scorer.set}),
            "unavailable": {k: reason for k, (_, reason) in scorer.unavailable.items()},
            "timed": "8-bit quantisation + Scorer.update (paired metrics) + the set metrics' feature extraction "
                     "of the generated batch + feeding the features to FID/KID (set_update); the end-of-run "
                     "FID/KID against the reference is not timed"}
    return scorer, desc


def memory_method(device) -> str:
    if is_cuda(device):
        return ("CUDA: torch.cuda.max_memory_allocated over the timed calls after reset_peak_memory_stats "
                "(peak_bytes); baseline_bytes = allocated before them (weights, inputs); peak_increase_bytes = "
                "peak - baseline; reserved_peak_bytes = the caching allocator's peak reservation")
    return (f"CPU: process RSS sampled every {RSS_INTERVAL_S * 1000:g} ms in a thread from before the warm-up to the "
            "end of the timed calls; peak_increase_bytes = peak - RSS before the warm-up (baseline_bytes; the "
            "allocator keeps what the first call took, so the timed calls alone would show ~0); short spikes "
            "between samples can be missed; rows run in order and memory a previous row took and kept counts in "
            "the next row's baseline. process_maxrss_bytes = getrusage maxrss, the process-lifetime high-water "
            "mark (includes loading and every earlier row)")


def profile(cfg: ProfileConfig, log: Callable[[str], None] = print) -> dict:
    """Profile ``cfg.model`` on every (steps, batch size); returns the report (see the module doc)."""
    from fpdm_bench.data.base import collate
    from fpdm_bench.env import environment, git_commit
    from fpdm_bench.models import MODELS, load_model
    from fpdm_bench.models.random_init import RANDOM_NOTE, is_random

    MODELS.check(cfg.model)
    if cfg.repeats < 1:
        raise BenchError(f"--repeats must be at least 1, got {cfg.repeats}")
    if cfg.warmup < 0:
        raise BenchError(f"--warmup must be 0 or more, got {cfg.warmup}")
    batch_sizes = parse_int_list(cfg.batch_sizes, "--batch-sizes")
    steps_list = parse_int_list(cfg.steps, "--steps") if cfg.steps is not None else None
    model_args = dict(cfg.model_args)
    if "steps" in model_args:
        if steps_list is not None:
            raise BenchError("give the steps either as --steps or as --model-arg steps=..., not both")
        steps_list = parse_int_list([model_args.pop("steps")], "--model-arg steps")
    if cfg.protocol:
        from fpdm_bench.protocols import get_protocol

        get_protocol(cfg.protocol)  # an unknown protocol fails before anything is loaded
    cls = MODELS.get(cfg.model)
    with_steps = takes_steps(cls)
    notes = []
    if not with_steps:
        if steps_list:
            notes.append(f"model {cfg.model!r} takes no steps: --steps {','.join(map(str, steps_list))} ignored, "
                         "profiled once")
            log(notes[-1])
        steps_list = [None]
    elif steps_list is None:
        steps_list = [None]  # the model's default, read back from info()

    dataset = _open(cfg)
    need = max(batch_sizes)
    if len(dataset.pairs) < need:
        raise BenchError(f"dataset {cfg.dataset!r} ({dataset.root}, {cfg.split}) has {len(dataset.pairs)} pairs; "
                         f"--batch-sizes asks for {need}")
    pairs = dataset.pairs[:need]
    samples = [dataset[i] for i in range(need)]
    scorer, metric_desc = _scorer(cfg, dataset, pairs, log)
    dtype = getattr(torch, cfg.dtype)

    rows, loads, first_info = [], [], None
    n_combos = len(steps_list) * len(batch_sizes)
    k = 0
    for steps in steps_list:
        kwargs = {**model_args, **({"steps": steps} if steps is not None else {})}
        t0 = time.perf_counter()
        model = load_model(cfg.model, cfg.checkpoint, device=cfg.device, dtype=dtype, dataset=cfg.dataset, **kwargs)
        load_s = time.perf_counter() - t0
        unavailable = model.prepare(pairs, dataset, log=log) or {}
        if unavailable:
            pid, why = next(iter(unavailable.items()))
            raise BenchError(f"model {cfg.model!r} cannot produce {len(unavailable)} of the first {need} pairs "
                             f"(e.g. {pid}: {why}); profile on pairs it can produce")
        info = model.info()
        ran = str(info.get("dtype") or cfg.dtype)
        if ran != cfg.dtype and not any("runs in" in n for n in notes):
            notes.append(f"--dtype {cfg.dtype} asked, the model runs in {ran} on {cfg.device} (model info)")
            log(notes[-1])
        first_info = first_info or info
        if is_random(info) and RANDOM_NOTE not in notes:
            notes.append(RANDOM_NOTE)
            log(f"{cfg.model}: {RANDOM_NOTE}")
        reported_steps = info.get("steps", steps) if with_steps else None
        loads.append({"steps": reported_steps, "load_seconds": load_s, "nfe": info.get("nfe"),
                      "stages": list(model.stages() or {})})
        for bs in batch_sizes:
            k += 1
            log(f"[{k}/{n_combos}] {cfg.model} steps={reported_steps if reported_steps is not None else '-'} "
                f"batch={bs}: {cfg.warmup} warm-up + {cfg.repeats} timed calls on {cfg.device}")
            batch = collate(samples[:bs])
            row = profile_batch(model, batch, cfg, scorer)
            row["steps"] = reported_steps
            row["load_seconds"] = load_s
            rows.append(row)
        del model
        if is_cuda(cfg.device):
            torch.cuda.empty_cache()

    return {"format": FORMAT, "version": 1, "config": asdict(cfg), "environment": environment(cfg.device),
            "git_commit": git_commit(), "model_info": first_info, "loads": loads,
            **({"random_weights": True} if is_random(first_info) else {}),
            "dataset": {"name": cfg.dataset, "root": str(dataset.root), "split": cfg.split,
                        "size": list(dataset.size), "pairs_used": [p.pair_id for p in pairs]},
            "timing": {"clock": "time.perf_counter", "warmup": cfg.warmup, "repeats": cfg.repeats,
                       "cuda_synchronize": is_cuda(cfg.device), "statistic": "median; spread = min, max, iqr, sd",
                       "torch_threads": torch.get_num_threads()},
            "memory_method": memory_method(cfg.device), "metric_pass": metric_desc, "notes": notes, "rows": rows}


# --- text output --------------------------------------------------------------------------------


def _ms(v) -> str:
    return "-" if v is None else f"{v * 1000:.1f}" if v < 10 else f"{v * 1000:.0f}"


def _bytes(v) -> str:
    if v is None:
        return "-"
    sign = "+" if v > 0 else ""
    if abs(v) >= 1 << 30:
        return f"{sign}{v / (1 << 30):.2f} GiB"
    return f"{sign}{v / (1 << 20):.1f} MiB"


def format_table(report: dict) -> str:
    """A plain-text table: one row per (batch size, steps), then the per-stage breakdown."""
    rows = report["rows"]
    cuda = any(r["memory"].get("kind", "").startswith("cuda") for r in rows)
    mem_head = "peak mem" if cuda else "peak RSS +"
    head = (f"{'batch':>5} {'steps':>5} {'ms/batch':>9} {'ms/img':>8} {'iqr':>6} {'img/s':>8} {'NFE':>5} "
            f"{'step ms':>8} {'VAE dec ms':>10} {'other ms':>8} {'metric ms/img':>13} {mem_head:>11}")
    from fpdm_bench.models.random_init import label

    model = label(report["config"]["model"], bool(report.get("random_weights")))
    lines = [f"{model} on {report['config']['device']} "
             f"({report['timing']['warmup']} warm-up + {report['timing']['repeats']} timed calls, medians; "
             f"torch threads {report['timing']['torch_threads']})", head, "-" * len(head)]
    for r in rows:
        per = r["seconds_per_image"]
        mem = r["memory"]
        mem_v = mem.get("peak_bytes") if cuda else mem.get("peak_increase_bytes")
        mp = r.get("metric_pass")
        other = r["other_seconds"]["median"] if r.get("other_seconds") else None
        lines.append(f"{r['batch_size']:>5} {'-' if r['steps'] is None else r['steps']:>5} "
                     f"{_ms(r['seconds_per_batch']['median']):>9} {_ms(per['median']):>8} {_ms(per['iqr']):>6} "
                     f"{r['images_per_second']['median']:>8.2f} {'-' if r['nfe'] is None else r['nfe']:>5} "
                     f"{_ms(r['denoising_step_seconds']):>8} {_ms(r['vae_decode_seconds']):>10} {_ms(other):>8} "
                     f"{_ms(mp['seconds_per_image'] if mp else None):>13} {_bytes(mem_v):>11}")
    staged = [r for r in rows if r["stages"]]
    if staged:
        lines.append("")
        lines.append("per stage, ms per batch (calls per batch):")
        for r in staged:
            parts = [f"{n} {_ms(s['seconds_per_batch']['median'])} ({s['calls_per_batch']})" for n, s in r["stages"].items()]
            parts.append(f"other {_ms(r['other_seconds']['median'])}")
            lines.append(f"  batch {r['batch_size']}, steps {'-' if r['steps'] is None else r['steps']}: " + ", ".join(parts))
    mp = report.get("metric_pass") or {}
    lines.append("")
    if mp.get("protocol") and not mp.get("skipped"):
        avail = ", ".join(mp["paired"] + mp["set"]) or "none"
        lines.append(f"metric pass ({mp['protocol']}): {avail}" +
                     (f"; unavailable: {', '.join(mp['unavailable'])}" if mp.get("unavailable") else ""))
    elif mp.get("skipped"):
        lines.append(f"metric pass: skipped ({mp['skipped']})")
    lines.append("memory: " + ("CUDA max_memory_allocated over the timed calls" if cuda else
                               "peak RSS (sampled) during warm-up + timed calls minus the RSS before the warm-up"))
    lines.append("NFE = network evaluations per image (model info); step ms = denoiser time / sampler iterations; "
                 "other = total - time inside stages")
    for note in report.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines)
