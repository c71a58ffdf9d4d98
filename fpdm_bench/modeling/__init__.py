"""What several models share, below both the reference FPDM (``fpdm_bench_reference``) and the
baselines (``fpdm_bench_baselines``), which import it and never each other:

- ``pose``: OpenPose-style skeleton drawing (FPDM's stages; PIDM, CFLD and PoCoLD build on its
  colours, limbs and official FPDM drawing);
- ``keypoint_warp``: the per-part affine warp of a person from source to target keypoints (the
  keypoint-warp floor; the tiny FPDM's prior);
- ``warp_prior``: that warp as a recipe option of every tiny model (the prior, the residual target,
  the composition at sampling, the ``prior:`` config record);
- ``patch_pca``: the patch-PCA autoencoder of the tiny recipes (FPDM, CFLD, PoCoLD);
- ``resize``: resizing model inputs and outputs as the official code does;
- ``pretrained``: model folders (``config.json`` + ``model.safetensors``) written and read one way;
- ``training``: configs with dotted overrides, and the trainers' opening, loop and record.

A module here imports only fpdm_bench's base modules (errors, io, images, data, models, seeding,
safe_load ...), never a higher layer (runner, scoring, cli, commands, reporting, ...):
tests/test_import_graph.py checks it. Nothing is imported here, so ``import fpdm_bench.modeling.X``
loads only X.
"""
