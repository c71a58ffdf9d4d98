"""CFLD (Lu et al., CVPR 2024; github.com/YanzuoLu/CFLD): our port, in progress (issue 13).

pose.py: the 21-channel pose input; swin.py: the Swin source encoder; pose_encoder.py and
decoder.py: the pose residuals and the text-embedding replacement; appearance.py: the query residuals;
unet.py: SD 1.5 UNet with the query-residual processor; sampler.py: DDPM, three branches. The facts of the official code, checked and cited, are in
docs/porting/cfld.md; the fixtures made by running it are in tests/fixtures/cfld/.
"""
