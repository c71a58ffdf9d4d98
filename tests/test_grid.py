"""`fpdm-bench grid`: deterministic rows, one column per run, cells equal to the run's samples."""
import numpy as np
from click.testing import CliRunner
from PIL import Image

from fpdm_bench.cli import main
from fpdm_bench.commands.grid import HEADER, pick_rows
from fpdm_bench.runner import RunConfig, run


def test_rows_are_evenly_spaced_and_deterministic():
    ids = [f"p{i}" for i in range(10)]
    assert pick_rows(ids, 3) == ["p0", "p4", "p9"] == pick_rows(ids, 3)
    assert pick_rows(ids, 20) == ids


def test_grid_of_two_runs(fixture_root, tmp_path):
    runs = []
    for m in ("copy-source", "oracle"):
        run(RunConfig(model=m, dataset="fixture", data_root=str(fixture_root), out=str(tmp_path / m),
                      protocol="paired", progress=False), log=lambda s: None)
        runs.append(str(tmp_path / m))
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(main, ["grid", *runs, "--out", str(out), "--rows", "3"])
    assert res.exit_code == 0, res.output
    img = np.asarray(Image.open(out))
    h, w = 32, 24  # the fixture's image size
    assert img.shape == (HEADER + 3 * h, 4 * w, 3)
    # row 0 is the first pair; the oracle column (4th) equals the target column (2nd) and its sample
    first = "im000_2_im001"
    sample = np.asarray(Image.open(tmp_path / "oracle" / "samples" / f"{first}.png"))
    assert (img[HEADER:HEADER + h, 3 * w:4 * w] == sample).all()
    assert (img[HEADER:HEADER + h, w:2 * w] == sample).all()
    again = CliRunner().invoke(main, ["grid", *runs, "--out", str(out), "--rows", "3"])
    assert again.exit_code != 0 and "--force" in str(again.exception)
    bad = CliRunner().invoke(main, ["grid", *runs, "--out", str(tmp_path / "g2.png"), "--pairs", "nope"])
    assert bad.exit_code != 0 and "not a pair of these runs" in str(bad.exception)
