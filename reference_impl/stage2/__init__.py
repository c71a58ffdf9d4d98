"""FPDM stage 2: latent diffusion conditioned on source tokens, fusion embedding and target pose."""
from fpdm_bench_reference.stage2.model import Conditions, Stage2Model, build_model, build_scheduler

__all__ = ["Conditions", "Stage2Model", "build_model", "build_scheduler"]
