"""`fpdm-bench compare`: regression verdicts, direction of each metric, refusals."""
import json

import pytest
from click.testing import CliRunner

from fpdm_bench.commands.compare import compare_cmd, compare_results
from fpdm_bench.errors import BenchError


def results(protocol="paired", pairs="abc", **metrics):
    return {"protocol": {"name": protocol}, "dataset": {"pairs_sha256_run": pairs},
            "metrics": {k: {"value": v, "ci95": None, "n": 10} for k, v in metrics.items()}}


def test_verdicts_follow_each_metrics_direction():
    rows = {r["metric"]: r["verdict"] for r in compare_results(
        results(ssim=0.70, mae=0.10, fid=50.0, psnr=20.0),
        results(ssim=0.60, mae=0.05, fid=50.5, psnr=20.0))}
    # no CI in these results: the fixed tolerance decides (fid within 2 %); "same" is now "no change"
    assert rows == {"ssim": "WORSE", "mae": "better", "fid": "no change", "psnr": "no change"}


def test_cli_exit_status_gates_on_regressions(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(results(ssim=0.7, mae=0.1)))
    b.write_text(json.dumps(results(ssim=0.7, mae=0.2)))
    assert CliRunner().invoke(compare_cmd, [str(a), str(a), "--exact"]).exit_code == 0
    res = CliRunner().invoke(compare_cmd, [str(a), str(b)])
    assert res.exit_code == 1 and "mae" in res.output and "WORSE" in res.output
    # a small difference passes the tolerance but not --exact
    b.write_text(json.dumps(results(ssim=0.701, mae=0.1)))
    assert CliRunner().invoke(compare_cmd, [str(a), str(b)]).exit_code == 0
    assert CliRunner().invoke(compare_cmd, [str(a), str(b), "--exact"]).exit_code == 1


def test_incomparable_results_are_refused():
    with pytest.raises(BenchError, match="protocol"):
        compare_results(results("paired", ssim=1.0), results("standard", ssim=1.0))
    with pytest.raises(BenchError, match="different pairs"):
        compare_results(results(pairs="x", ssim=1.0), results(pairs="y", ssim=1.0))
