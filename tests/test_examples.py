"""The template package for a researcher's own model (examples/my_model) installs next to
fpdm-bench, appears in `fpdm-bench models` and passes its own test, which runs it through
`fpdm-bench run`. It is installed with pip into a temporary folder (``--target``), so the test
environment itself is left as it was."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a pip build (~10 s) and a run of 4 pairs in a fresh process
def test_template_package_installs_lists_and_runs(tmp_path):
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--disable-pip-version-check", "--target", str(site), str(ROOT / "examples" / "my_model")],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    models = subprocess.run([sys.executable, "-m", "fpdm_bench.cli", "models"], capture_output=True, text=True,
                            env=env, timeout=300, cwd=ROOT)
    assert models.returncode == 0, models.stderr
    assert any(line.startswith("my-model ") for line in models.stdout.splitlines()), models.stdout
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          str(ROOT / "examples" / "my_model" / "tests")],
                         capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)  # data/ made here
    assert own.returncode == 0, own.stdout + own.stderr
    assert "2 passed" in own.stdout
