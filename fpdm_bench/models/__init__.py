"""Model registry. Entries are lazy ("module:Class") so listing models imports nothing heavy.

To add a model: write an adapter (subclass ``ModelAdapter``) in one file and register it here.
"""
from fpdm_bench.models.base import ModelAdapter
from fpdm_bench.registry import Registry

MODELS = Registry("model")
MODELS.register("copy-source", "baselines.floors:CopySource", "floor: returns the source image unchanged")
MODELS.register("oracle", "baselines.floors:Oracle", "ceiling: returns the target image (metrics' best case)")
MODELS.register("keypoint-warp", "baselines.keypoint_warp:KeypointWarp",
                "floor: per-limb affine warp of the source from source to target keypoints")
MODELS.register("fpdm", "reference_impl.adapter:FPDMAdapter",
                "FPDM reference implementation (shipped tiny checkpoint unless --checkpoint is given)")


def load_model(name: str, checkpoint: str | None = None, device: str = "cpu", dtype=None, **kwargs) -> ModelAdapter:
    import torch

    cls = MODELS.get(name)
    return cls.from_pretrained(checkpoint, device=device, dtype=dtype or torch.float32, **kwargs)


__all__ = ["MODELS", "ModelAdapter", "load_model"]
