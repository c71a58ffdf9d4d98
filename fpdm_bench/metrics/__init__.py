"""Metrics: one per file, each declaring its name, direction and kind (see base.py for the contract).

They are registered through the ``fpdm_bench.metrics`` entry points (pyproject.toml) and found by
name through ``METRICS`` (did-you-mean on typos).
"""
from fpdm_bench.metrics.base import (METRICS, Metric, MetricContext, MetricUnavailable, PairedMetric, SequenceMetric,
                                     SetMetric)

__all__ = ["METRICS", "Metric", "MetricContext", "MetricUnavailable", "PairedMetric", "SequenceMetric", "SetMetric"]
