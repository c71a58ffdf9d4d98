"""``python -m fpdm_bench ...`` works like ``fpdm-bench ...``, so ``torchrun -m fpdm_bench run ...``
launches one process per GPU without the console script's path."""
from fpdm_bench.cli import entry

if __name__ == "__main__":
    entry()
