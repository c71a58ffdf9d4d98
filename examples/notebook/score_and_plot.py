# %% [markdown]
# # Score a folder and plot two runs from DataFrames
#
# fpdm-bench's Python API ([docs/python-api.md](../../docs/python-api.md)) in notebook cells. The
# `# %%` lines are cells for Jupyter (through jupytext), VS Code or PyCharm; run as a script
# (`.venv/bin/python examples/notebook/score_and_plot.py`) it does the same and writes under
# `runs/notebook/` (about 15 s on 2 CPU cores; `tests/test_api.py` runs it). The folder can be set
# with `FPDM_BENCH_EXAMPLE_OUT`.

# %%
import os
from pathlib import Path

from fpdm_bench import api

OUT = Path(os.environ.get("FPDM_BENCH_EXAMPLE_OUT", "runs/notebook"))
PAIRS = 8  # the first 8 pairs: a few seconds per run

# %% [markdown]
# ## Two runs
#
# Two floors on the embedded synthetic set (made in `data/synthetic` on first use), under protocol
# `paired` (SSIM, Gaussian SSIM, PSNR, MAE; no FID, so it is quick). `api.run` returns the run's
# results.json as a dict, its settings under `config`; a finished run is read, not run again.

# %%
runs = {}
for model in ("copy-source", "keypoint-warp"):
    runs[model] = api.run(model=model, dataset="synthetic", out=OUT / model, limit=PAIRS, protocol="paired",
                          progress=False, log=None)
{model: results["metrics"]["ssim"]["value"] for model, results in runs.items()}

# %% [markdown]
# ## Score a folder of images
#
# A folder of images made by any program, named by pair id (or as GFLA, PIDM or FPDM name them), is
# scored against the dataset's pairs. Here the folder is the keypoint-warp run's own `samples/`, so
# the numbers are the run's.

# %%
scored = api.score(OUT / "keypoint-warp" / "samples", "synthetic", limit=PAIRS, protocol="paired",
                   out=OUT / "scored.json", force=True, log=None)
assert scored["metrics"]["ssim"]["value"] == runs["keypoint-warp"]["metrics"]["ssim"]["value"]
scored["n"], scored["metrics"]["ssim"]["value"]

# %% [markdown]
# ## The runs as DataFrames
#
# One row per (run, metric), the columns of the report's tables in long format; `pivot` gives the
# table's layout back. `load_samples` has one row per (run, pair, metric).

# %%
frame = api.load_runs([OUT / "copy-source", OUT / "keypoint-warp"])
frame.pivot(index="model", columns="metric", values="value")

# %%
samples = api.load_samples([OUT / "copy-source", OUT / "keypoint-warp"])
samples[samples["metric"] == "ssim"].groupby("model")["value"].describe()

# %% [markdown]
# ## Did keypoint-warp do better than copy-source?
#
# `compare` as a DataFrame: per metric the difference, its paired-bootstrap 95 % interval and the
# verdict (what `fpdm-bench compare` prints).

# %%
comparison = api.compare(OUT / "copy-source", OUT / "keypoint-warp")
comparison[["metric", "base", "new", "delta", "ci95_low", "ci95_high", "verdict"]]

# %% [markdown]
# ## Plot the two runs
#
# One panel per metric, one point per run with its 95 % interval (floors are drawn hollow). The
# figure is a matplotlib Figure: a notebook shows it, `savefig` writes it.

# %%
fig = api.plot_metrics(frame)
fig.savefig(OUT / "metrics.png")
fig  # noqa: B018 - a notebook shows the cell's last value
