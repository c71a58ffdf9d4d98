#!/usr/bin/env bash
# `make gpu-check`: tools/gpu_check.py on a GPU machine whose Python has torch (CUDA), transformers,
# accelerate and timm but no diffusers and no package index. What it lacks travels as wheels in .whl/
# (`make gpu-wheels`, ~6.4 MB: diffusers + importlib_metadata), installed into a scratch folder;
# fpdm-bench itself is installed from this tree (no dependencies, no index) so that its entry points
# register the models. Nothing of the metric stack is needed: random-weight runs score no metric.
# Results: ${OUT:-runs}/gpu-check/gpu_check.{json,md}. Arguments go to tools/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
SITE=${FPDM_GPU_SITE:-/tmp/fpdm-gpu-site}
if ! "$PY" -c "import diffusers" 2>/dev/null; then
  compgen -G ".whl/*.whl" > /dev/null || { echo "gpu-check: diffusers is not installed and .whl/ holds no wheels (run make gpu-wheels where pip reaches an index)" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE/deps" .whl/*.whl
  export PYTHONPATH="$SITE/deps${PYTHONPATH:+:$PYTHONPATH}"
fi
# (checked from / : this tree's own *.egg-info would otherwise pass for an installed package)
if ! (cd / && "$PY" -c "import fpdm_bench, importlib.metadata as m; m.distribution('fpdm-bench')") 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --upgrade \
    --target "$SITE/pkg" .
  export PYTHONPATH="$SITE/pkg${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
exec "$PY" tools/gpu_check.py --out "${OUT:-runs}/gpu-check" "$@"
