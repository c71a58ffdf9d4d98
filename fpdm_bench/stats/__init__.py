"""Statistics behind ``fpdm-bench compare``: one idea per module.

- :mod:`~fpdm_bench.stats.rundata`      what a run directory holds for a comparison (per-sample
  values, stored set-metric features, the cached reference statistics)
- :mod:`~fpdm_bench.stats.paired`       pair matching and the paired bootstrap of per-sample differences
- :mod:`~fpdm_bench.stats.frechet`      Fréchet distances of index subsets/resamples of stored features
- :mod:`~fpdm_bench.stats.setmetric`    the bootstrap of an FID/KID difference on stored features
- :mod:`~fpdm_bench.stats.fid_infinity` FID∞, the n-free FID by extrapolation in 1/n (Chong & Forsyth 2020)
- :mod:`~fpdm_bench.stats.verdict`      tolerances and the better / no change / worse rule
- :mod:`~fpdm_bench.stats.comparison`   the comparison of two runs, metric by metric
- :mod:`~fpdm_bench.stats.summary`      its text, Markdown and JSON renderings
"""
