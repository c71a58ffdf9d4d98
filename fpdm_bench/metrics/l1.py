"""L1: the plain mean absolute error over pixels and channels, on [0, 1] images.

The GFLA metric script (``compare_l1``), and the PIDM, PoCoLD and FPDM scripts derived from it, print
this next to their normalised MAE (``mae`` with variant ``gfla_normalised``): ``np.mean(np.abs(a -
b))`` of float images scaled to [0, 1]. It is ``mae``'s ``mean_abs`` variant under the name those
scripts give it, so a table can show both columns.
"""
from __future__ import annotations

from fpdm_bench.metrics.base import PairedMetric
from fpdm_bench.metrics.mae import mae


class L1(PairedMetric):
    """Plain mean absolute error per image (the scripts' ``l1``)."""

    name = "l1"
    higher_is_better = False
    title = latex_title = "L1"
    order = 80

    def per_sample(self, generated, target, batch):
        return mae(generated, target, "mean_abs")
