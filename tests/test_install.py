"""`pip install .` (non-editable) into a fresh environment next to another package that owns the
import name ``baselines`` (as openai/baselines does) leaves both importable: fpdm-bench installs its
model packages as ``fpdm_bench_baselines`` and ``fpdm_bench_reference`` (the repository folders
``baselines/`` and ``reference_impl/``, mapped by ``[tool.setuptools.package-dir]``).

The fresh environment is a new venv whose site-packages gets the two packages (pip ``--target``,
no build isolation, offline) and one ``.pth`` line that appends this environment's site-packages for
the dependencies (torch, diffusers, ...): a plain path line, so this environment's editable install
of fpdm-bench is not activated there and every fpdm-bench module comes from the built wheel."""
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent('''
    import json, sys
    import baselines
    import fpdm_bench, fpdm_bench_baselines, fpdm_bench_reference
    from fpdm_bench.models import MODELS
    from fpdm_bench.protocols import PROTOCOLS
    classes = {n: MODELS.get(n).__module__ for n in MODELS.names()}
    print(json.dumps({"baselines": baselines.OWNER, "site": [fpdm_bench.__file__, fpdm_bench_baselines.__file__,
                      fpdm_bench_reference.__file__, sys.modules[classes["pidm"]].__file__],
                      "classes": classes, "protocols": PROTOCOLS.names(),
                      "plain": [m for m in ("reference_impl",) if m in sys.modules]}))
''')


def pip(*args, cwd):
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--disable-pip-version-check", *map(str, args)], capture_output=True, text=True,
                         timeout=900, cwd=cwd)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow  # builds the wheel (~1 min: the shipped checkpoints are package data)
def test_non_editable_install_next_to_a_package_named_baselines(tmp_path):
    import json

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    other = tmp_path / "other"  # a stand-in for openai/baselines: a distribution owning `baselines`
    (other / "baselines").mkdir(parents=True)
    (other / "baselines" / "__init__.py").write_text('OWNER = "the other package"\n')
    (other / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                          '"setuptools.build_meta"\n[project]\nname = "baselines"\nversion = "0.1.6"\n'
                                          '[tool.setuptools]\npackages = ["baselines"]\n')
    pip("--target", site, other, cwd=tmp_path)
    pip("--target", site, ROOT, cwd=tmp_path)
    (site / "zz-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([str(py), "-c", CHECK], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.splitlines()[-1])
    assert got["baselines"] == "the other package"
    assert all(p.startswith(str(site)) for p in got["site"]), got["site"]  # the wheel's copies, not the repo's
    assert got["classes"]["pidm"].startswith("fpdm_bench_baselines.")
    assert got["classes"]["fpdm"].startswith("fpdm_bench_reference.")
    assert {"standard", "fpdm", "pidm"} <= set(got["protocols"]) and not got["plain"]
    shipped = site / "fpdm_bench_reference" / "checkpoints" / "tiny"  # package data came along
    assert any(shipped.rglob("*.safetensors"))
