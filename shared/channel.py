"""Channel math shared by every process (NumPy only).

Conventions (VL-VFE §II): symbols are real, peak amplitude 1 (tanh output), so the
peak signal-to-noise ratio is PSNR = 10·log10(P / sigma^2) with P = 1. ``noise_var`` is
always the variance per real dimension, linear scale; ``psnr_db`` / ``snr_db`` are in dB.
"""

from __future__ import annotations

import math

import numpy as np

PEAK_POWER = 1.0
DEFAULT_BAUD = 9600.0  # VL-VFE §V


def noise_var_from_psnr(psnr_db: float | np.ndarray) -> float | np.ndarray:
    """sigma^2 = P · 10^(-PSNR/10) with P = 1 (VL-VFE PSNR definition); a float for a
    Python number (the per-request path), an array otherwise."""
    if isinstance(psnr_db, (int, float)):
        try:
            return PEAK_POWER * 10.0 ** (-psnr_db / 10.0)
        except OverflowError:  # below about -3,080 dB; NumPy would say inf too
            return math.inf
    return PEAK_POWER * np.power(10.0, -np.asarray(psnr_db, dtype=np.float64) / 10.0)


def psnr_from_noise_var(noise_var: float | np.ndarray) -> float | np.ndarray:
    """PSNR = 10·log10(P / sigma^2) in dB, P = 1."""
    return 10.0 * np.log10(PEAK_POWER / np.asarray(noise_var, dtype=np.float64))


def awgn(symbols: np.ndarray, psnr_db: float, rng: np.random.Generator) -> np.ndarray:
    """y = s + n, n ~ N(0, sigma^2) per real dimension, sigma^2 from the PSNR. Returns float32."""
    sigma = math.sqrt(noise_var_from_psnr(float(psnr_db)))
    symbols = np.asarray(symbols, dtype=np.float32)
    return symbols + rng.normal(0.0, sigma, size=symbols.shape).astype(np.float32)


def pilot_symbols(m: int) -> np.ndarray:
    """m known pilots of peak amplitude 1 (alternating +1/-1), VL-VFE Appendix C."""
    return np.where(np.arange(m) % 2 == 0, 1.0, -1.0).astype(np.float32)


def estimate_noise_var(received_pilots: np.ndarray, sent_pilots: np.ndarray) -> float:
    """Unbiased sigma^2 estimate from m pilots: (1/m)·sum (y_i - p_i)^2, VL-VFE Appendix C.

    The noise mean is known (zero), so dividing by m (not m-1) is unbiased.
    """
    received_pilots = np.asarray(received_pilots, dtype=np.float64)
    sent_pilots = np.asarray(sent_pilots, dtype=np.float64)
    if received_pilots.shape != sent_pilots.shape or received_pilots.size == 0:
        raise ValueError("pilots: received and sent must be non-empty and the same shape")
    return float(np.mean((received_pilots - sent_pilots) ** 2))


PILOT_ESTIMATORS = ("known-pilots", "as-printed")


def pilot_noise_var_estimates(
    psnr_db: float, m: int, n: int, rng: np.random.Generator, estimator: str = "known-pilots"
) -> np.ndarray:
    """σ̂² of ``n`` transmissions, each from its own ``m`` pilots sent over AWGN at ``psnr_db``,
    VL-VFE Appendix C. Returns [n] float64 (variance per real dimension).

    - "known-pilots": (1/m)·Σ (y_i − p_i)², unbiased because the pilots p_i are known (the
      noise mean is known to be 0): E = σ², Var = 2σ⁴/m, σ̂² ~ σ²·χ²(m)/m;
    - "as-printed": (1/(m−1))·Σ (y_i − p_i)², as Appendix C writes it: E = σ²·m/(m−1).
    """
    if estimator not in PILOT_ESTIMATORS:
        raise ValueError(f"estimator must be one of {PILOT_ESTIMATORS}, got {estimator!r}")
    if m < 2 or n < 1:
        raise ValueError(f"need m >= 2 pilots and n >= 1 transmissions, got m={m}, n={n}")
    sent = np.broadcast_to(pilot_symbols(m), (n, m))
    received = awgn(sent, psnr_db, rng).astype(np.float64)
    squares = ((received - sent) ** 2).sum(axis=1)
    return squares / (m if estimator == "known-pilots" else m - 1)


def airtime_seconds(n_symbols: int | np.ndarray, baud: float = DEFAULT_BAUD) -> float | np.ndarray:
    """Modelled air-time of n real symbols at ``baud`` symbols per second (VL-VFE §V)."""
    if baud <= 0:
        raise ValueError(f"baud must be > 0, got {baud}")
    return np.asarray(n_symbols, dtype=np.float64) / baud


def capacity_bits_per_symbol(psnr_db: float) -> float:
    """Capacity bound of the amplitude-limited real Gaussian channel, VL-VFE eq. (13), in bits
    per real channel use:

        C = min{ log2(1 + sqrt(2P / (π·e·σ²))),  ½·log2(1 + P/σ²) },

    P = 1 the peak power (the encoder's tanh output), σ² = 10^(-PSNR/10) per real dimension.
    Below 2.03 dB the Shannon term ½·log2(1 + P/σ²) is the smaller; above it the
    amplitude-limit term is (at 10 dB 1.339 against 1.730, at 20 dB 2.546 against 3.329).
    """
    noise_var = noise_var_from_psnr(psnr_db)
    if noise_var == 0.0:
        return math.inf
    amplitude_limited = math.log2(
        1.0 + math.sqrt(2.0 * PEAK_POWER / (math.pi * math.e * noise_var))
    )
    shannon = 0.5 * math.log2(1.0 + PEAK_POWER / noise_var)
    return min(amplitude_limited, shannon)
