"""The AWGN channel as a non-trainable layer (torch twin of shared/channel.py, same names).

psnr_db is the PSNR in dB with peak power 1 (VL-VFE): noise_var = 10^(-psnr_db/10),
variance per real dimension. (The models call it the encoder's ``snr_db`` input.)
"""

from __future__ import annotations

import torch


def noise_var_from_snr(psnr_db: torch.Tensor) -> torch.Tensor:
    """sigma^2 = 10^(-psnr_db/10) per real dimension, same shape as psnr_db."""
    return torch.pow(10.0, -psnr_db / 10.0)


def awgn(symbols: torch.Tensor, psnr_db: torch.Tensor, generator=None) -> torch.Tensor:
    """y = s + n, n ~ N(0, sigma^2) per real dimension; symbols [N, d], psnr_db [N, 1]."""
    noise = torch.randn(symbols.shape, generator=generator, device=symbols.device)
    return symbols + noise * noise_var_from_snr(psnr_db).sqrt()


def sent_prefix(n_active: torch.Tensor, d: int) -> torch.Tensor:
    """1.0 for the dimensions a variable-length transmission sends (the first ``n_active``
    of ``d``), 0.0 past them; [N, d] from n_active [N]."""
    return (torch.arange(d, device=n_active.device) < n_active.reshape(-1, 1)).float()


def awgn_sent(
    symbols: torch.Tensor, sigma: float, n_active: torch.Tensor | None = None, generator=None
) -> torch.Tensor:
    """The received symbols of the offline evaluations: AWGN of standard deviation ``sigma``
    on the sent prefix only, zeros past it (what the edge decodes: it zero-fills the dimensions
    a variable-length transmission did not send, edge_server/validation.py). ``n_active``
    None: every dimension is sent."""
    noise = sigma * torch.randn(symbols.shape, generator=generator)
    if n_active is not None:
        noise = noise * sent_prefix(n_active, symbols.shape[1])
    return symbols + noise
