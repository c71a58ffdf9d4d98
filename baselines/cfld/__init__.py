"""CFLD (Lu et al., CVPR 2024; github.com/YanzuoLu/CFLD): our port.

- pose.py: the 21-channel pose input (skeleton + Gaussian heatmaps);
- swin.py, appearance.py, pose_encoder.py, decoder.py, model.py: the condition network of the
  released ``pytorch_model.bin`` (``CFLDConditioner``, loads strictly);
- unet.py: SD 1.5's UNet with our query-residual attention processor (``pytorch_model_1.bin``);
- sampler.py: DDPM with the three-branch guidance;
- pipeline.py, adapter.py: the released folder (+ a VAE) end to end, the ``cfld`` model adapter;
- train.py, configs/tiny.yaml, checkpoints/tiny/: the tiny CFLD trained on the embedded data.

Each file cites the official facts it uses; all are checked in docs/models/cfld.md, and the
fixtures made by running the official code are in tests/fixtures/cfld/.
"""
