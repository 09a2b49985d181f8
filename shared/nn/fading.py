"""The block-fading channel as a differentiable layer: a :class:`shared.fading.FadingDraw`
(gains, receiver CSI, noise; drawn with NumPy so training and the channel proxy share one
sampler) applied to a batch of real symbols in torch, gradients flowing to the symbols.

y = h·c + n per complex symbol (c = I/Q pairs of the real symbols), equalised by zero forcing
ĉ = y/ĥ or MMSE ĉ = ĥ*·y/(|ĥ|² + 2σ²/E_s), conventions in ``shared/fading.py``.
"""

from __future__ import annotations

import torch

from shared.fading import SYMBOL_ENERGY, FadingDraw


def apply_fading(symbols: torch.Tensor, fading_draw: FadingDraw) -> torch.Tensor:
    """Equalised received symbols [N, d] (float, symbols' dtype) for real symbols [N, d]."""
    n, d = symbols.shape
    if (n, d) != (len(fading_draw.h), fading_draw.n_real):
        raise ValueError(
            f"symbols {(n, d)} do not match the draw ({len(fading_draw.h)}, {fading_draw.n_real})"
        )
    device = symbols.device
    index = torch.from_numpy(fading_draw.block_index()).to(device)
    h = torch.from_numpy(fading_draw.h).to(device=device, dtype=torch.complex64)[:, index]
    h_hat = torch.from_numpy(fading_draw.h_hat).to(device=device, dtype=torch.complex64)[:, index]
    noise = torch.from_numpy(fading_draw.noise).to(device=device, dtype=torch.complex64)
    padded = torch.nn.functional.pad(symbols, (0, d % 2)).float()
    c = torch.complex(padded[:, 0::2], padded[:, 1::2])
    y = h * c + noise
    if fading_draw.fading.equalizer == "zf":
        equalised = y / torch.where(h_hat == 0, torch.full_like(h_hat, 1e-30), h_hat)
    else:
        snr = torch.from_numpy(fading_draw.snr_db).to(device=device, dtype=torch.float32)
        noise_var = 2.0 * torch.pow(10.0, -snr / 10.0)[:, None]
        equalised = h_hat.conj() * y / (h_hat.abs() ** 2 + noise_var / SYMBOL_ENERGY)
    out = torch.stack([equalised.real, equalised.imag], dim=2).reshape(n, -1)[:, :d]
    return out.to(symbols.dtype)
