"""PIDM (Bhunia et al., CVPR 2023; github.com/ankanbhunia/PIDM): our port.

network.py (the denoiser and source encoder), diffusion.py (schedule, guidance, DDIM / ancestral
samplers, loss), pose.py (the 20-channel pose input), checkpoint.py (official last.pt and our
folders), adapter.py (the ``pidm`` model), train.py (``fpdm-bench pidm train``).
"""
