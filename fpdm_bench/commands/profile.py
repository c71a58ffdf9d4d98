"""`fpdm-bench profile --model M`: what a model costs per batch size and number of steps.

The measurement itself is fpdm_bench.profile (see its docstring); this is the command line.
"""
from __future__ import annotations

import click

from fpdm_bench.commands.options import existing_data_root, parse_key_values, valid_device


@click.command("profile")
@click.option("--model", required=True, help="Model name (see `fpdm-bench models`).")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset the batches come from (its first pairs).")
@click.option("--data-root", default=None, callback=existing_data_root, help="Dataset folder (default: data/<dataset>).")
@click.option("--split", default="test", show_default=True)
@click.option("--checkpoint", default=None, help="Model checkpoint (folder or file); model default if omitted.")
@click.option("--model-arg", "model_arg", multiple=True, metavar="KEY=VALUE",
              help="Any other argument of the model's from_pretrained (repeatable; VALUE read as YAML), e.g. guidance=1.")
@click.option("--batch-sizes", default="1,4,16", show_default=True,
              help="Comma-separated batch sizes; each batch is the dataset's first N pairs.")
@click.option("--steps", default=None,
              help="Comma-separated sampler steps, e.g. 10,20,50 (default: the model's own). Passed only to models "
                   "that take steps; the others are profiled once (steps null).")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True,
              help="Model dtype (the shipped pipelines keep float32 on CPU; model info says what ran).")
@click.option("--device", default=None, callback=valid_device, help="cpu or cuda[:i] (default: cuda when available).")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed calls per combination (medians and spread are over these).")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed calls before the timed ones (first-call allocations, kernel selection, caches).")
@click.option("--protocol", default="standard", show_default=True,
              help="Protocol whose metric pass is timed (see `fpdm-bench protocols`).")
@click.option("--no-metrics", is_flag=True, help="Do not time the metric pass (no Scorer, no Inception); --protocol still sets the size the batches are loaded at.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the per-pair generators.")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Write the full report (config, environment, git commit, model info, every row with its spread) "
                   "to this JSON file.")
def profile_cmd(model, dataset, data_root, split, checkpoint, model_arg, batch_sizes, steps, dtype, device, repeats,
                warmup, protocol, no_metrics, seed, out):
    """Profile MODEL: latency, throughput, per-stage time, NFE and peak memory per batch size x steps.

    \b
    For every (steps, batch size): the model is loaded (once per steps value), the batch is the
    dataset's first N pairs, --warmup untimed calls run, then --repeats timed calls of
    model.generate (time.perf_counter; CUDA synchronised before and after each call). Reported:
    the median and spread (min, max, IQR, sd) of ms per batch, ms per image and images/s.

    \b
    Per stage (the model's source encoder, fusion, pose encoder, denoiser, VAE decoder, ...): timing
    hooks are installed for the timed calls only and removed afterwards; per stage: calls per
    batch, ms per batch, ms per call. "step ms" = denoiser time / sampler iterations; "other" =
    total minus the time inside stages (sampler arithmetic, resizing, glue). Floors and
    keypoint-warp have no stages: only the total. NFE is the model's own count (model info).

    \b
    Memory: on CUDA, torch.cuda.max_memory_allocated over the timed calls after
    reset_peak_memory_stats (the table shows the peak; the JSON also the baseline before the
    calls). On CPU, the process RSS sampled every 5 ms in a thread from before the warm-up to the
    end of the timed calls: the table shows the peak increase over the RSS before the warm-up
    (memory the allocator keeps from an earlier row is in the baseline); the JSON also has
    getrusage's maxrss, a process-lifetime high-water mark (loading and earlier rows included).

    \b
    Metric pass (unless --no-metrics): on the last generated batch, 8-bit quantisation + the
    protocol Scorer's update (paired metrics) + the FID/KID/FD-DINOv2 feature extraction and
    update, timed the same way; metrics whose weights are missing are listed as unavailable.

    \b
    Keep the machine otherwise idle; set OMP_NUM_THREADS to fix the CPU threads (recorded).
    """
    from fpdm_bench.api import profile
    from fpdm_bench.profile import format_table, parse_int_list

    report = profile(model, out=out, dataset=dataset, data_root=data_root, split=split, checkpoint=checkpoint,
                     model_args=parse_key_values(model_arg, "--model-arg"),
                     batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
                     steps=parse_int_list(steps, "--steps") if steps is not None else None, dtype=dtype,
                     device=device, repeats=repeats, warmup=warmup, protocol=protocol, seed=seed,
                     metric_pass=not no_metrics, log=lambda m: click.echo(m, err=True))
    click.echo(format_table(report))
    if out:
        click.echo(f"report: {out}", err=True)
