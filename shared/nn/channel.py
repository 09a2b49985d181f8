"""The AWGN channel as a non-trainable layer (torch twin of shared/channel.py).

snr_db is the PSNR in dB with peak power 1 (VL-VFE): noise_var = 10^(-snr_db/10),
variance per real dimension.
"""

from __future__ import annotations

import torch


def noise_var_from_snr(snr_db: torch.Tensor) -> torch.Tensor:
    """sigma^2 = 10^(-snr_db/10), same shape as snr_db."""
    return torch.pow(10.0, -snr_db / 10.0)


def awgn(symbols: torch.Tensor, snr_db: torch.Tensor, generator=None) -> torch.Tensor:
    """y = s + n, n ~ N(0, sigma^2); symbols [N, d], snr_db [N, 1]."""
    noise = torch.randn(symbols.shape, generator=generator, device=symbols.device)
    return symbols + noise * noise_var_from_snr(snr_db).sqrt()
