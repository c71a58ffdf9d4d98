"""The embedded synthetic datasets: procedurally drawn people in the real file layouts.

`synthesize_deepfashion` writes the DeepFashion layout, `synthesize_phoenix` the PHOENIX-2014T one.
Both are deterministic: the same arguments give byte-identical files.
"""
from fpdm_bench.data.synth.deepfashion import DEFAULTS, synthesize_deepfashion
from fpdm_bench.data.synth.phoenix import PHOENIX_DEFAULTS, synthesize_phoenix

__all__ = ["DEFAULTS", "PHOENIX_DEFAULTS", "synthesize_deepfashion", "synthesize_phoenix"]
