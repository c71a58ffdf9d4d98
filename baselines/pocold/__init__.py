"""PoCoLD (Han et al., ICCV 2023; github.com/BrandonHanx/PoCoLD): our port, in progress (issue 14).

- network.py: the double-attention UNet, the multi-scale reference image encoder, the channel mapper
  (the official pipeline folder's ``unet``, ``rie``, ``channel_mapper``; load strictly);
- pipeline.py: the folder end to end (PNDM, three branches with the decaying guidance, VAE decode);
- parts.py: the pose input (DensePose part index as a 25-class one-hot; rendered from keypoints
  when no DensePose is given).

Each file cites the official facts it uses; all are checked in docs/models/pocold.md, and the
fixtures made by running the official code are in tests/fixtures/pocold/.
"""
