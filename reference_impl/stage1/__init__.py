"""FPDM stage 1: the fusion embedding (CLIP tower shared by image and pose + Combiner)."""
from fpdm_bench_reference.stage1.model import Combiner, FusionModel, build_model

__all__ = ["Combiner", "FusionModel", "build_model"]
