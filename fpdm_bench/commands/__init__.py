"""fpdm-bench's commands, one module each, found through the ``fpdm_bench.commands`` entry points
(pyproject.toml); ``fpdm_bench.cli`` holds only the top-level group and the error boundary."""
