"""Flat block fading over complex baseband with receiver CSI and equalisation (NumPy only).

Every process that fades symbols uses this module: the channel proxy (live), the experiments
(offline) and the trainer, whose differentiable equaliser (``shared/nn/fading.py``) combines
the draws made here. Conventions (Sionna's flat-fading ones; units as in ``shared.channel``):

- **Complex baseband.** Real symbols s₀, s₁, … are paired as I/Q, c_k = s_{2k} + j·s_{2k+1}
  (an odd count gets a zero Q). The channel never rescales the symbols, so each model keeps
  its power convention: peak 1 per real dimension (the task models) or mean power 1 per real
  dimension (the image model); either way E_s = 2 per complex symbol at full power.
- **Block fading.** y_k = h_{b(k)}·c_k + n_k with n_k ~ CN(0, 2σ²), σ² = 10^(-SNR/10) per real
  dimension (the AWGN channel's σ²), b(k) = k // coherence. h ~ CN(0, 1) for Rayleigh (the law
  of Sionna's ``RayleighBlockFading``; checked in the tests), h = √(K/(K+1)) + √(1/(K+1))·CN(0, 1)
  for Rician with K-factor K (linear, line-of-sight phase 0). E|h|² = 1, so the average SNR is
  the AWGN SNR. ``coherence`` counts complex symbols (2 real symbols each); None = one block
  per transmission. Blocks are independent.
- **Receiver CSI.** ``perfect``: ĥ = h. ``ls``: least squares from ``pilots`` known pilots
  p = 1 + j per block (amplitude 1 per real dimension, within both power budgets),
  ĥ = Σ p*·y_p / Σ |p|².
- **Equalisers.** ``zf`` (the default): ĉ = y / ĥ = c + n/h with perfect CSI, i.e. the AWGN
  channel every model was trained on, at the instantaneous SNR; an SNR-adaptive decoder
  told that SNR sees its own channel. ``mmse``: ĉ = ĥ*·y / (|ĥ|² + 2σ²/E_s), no noise
  enhancement in deep fades but biased toward zero.
- **Instantaneous SNR** of a block: SNR + 10·log10 |ĥ_b|² (dB); of a transmission: the SNR of
  its mean noise variance after zero forcing, SNR − 10·log10(mean_k 1/|ĥ_{b(k)}|²).
- **Feedback** (the SNR the device is told before it encodes): ``average`` (the channel's
  configured SNR), ``instantaneous`` (of this transmission) or ``stale`` (the instantaneous SNR
  ``delay`` transmissions earlier; the first ``delay`` get the average).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FADING_KINDS = ("none", "rayleigh", "rician")
CSI_MODES = ("perfect", "ls")
EQUALIZERS = ("zf", "mmse")
FEEDBACK_MODES = ("average", "instantaneous", "stale")
SYMBOL_ENERGY = 2.0  # E_s per complex symbol at full power (1 per real dimension)
PILOT = 1.0 + 1.0j
MAX_K_FACTOR = 1e6


def check_fading_kind(kind: str) -> str:
    if kind not in FADING_KINDS:
        raise ValueError(f"fading must be one of {FADING_KINDS}, got {kind!r}")
    return kind


@dataclass(frozen=True)
class Fading:
    """A block-fading channel: ``kind``, Rician ``k_factor`` (linear), ``coherence`` (complex
    symbols per block; None = one block per transmission), receiver ``csi`` with ``pilots``
    per block for ``ls``, and the ``equalizer``. Raises ValueError naming the bad field."""

    kind: str = "rayleigh"
    k_factor: float = 0.0
    coherence: int | None = None
    csi: str = "perfect"
    pilots: int = 1
    equalizer: str = "zf"

    def __post_init__(self):
        check_fading_kind(self.kind)
        k = self.k_factor
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k):
            raise ValueError(f"k_factor must be a finite number >= 0, got {k!r}")
        if not 0.0 <= k <= MAX_K_FACTOR:
            raise ValueError(f"k_factor must be within [0, {MAX_K_FACTOR:g}] (linear), got {k}")
        if self.kind != "rician" and k:
            raise ValueError(f"k_factor applies to rician fading only, got kind={self.kind!r}")
        if self.coherence is not None and (
            isinstance(self.coherence, bool) or not isinstance(self.coherence, int)
            or self.coherence < 1
        ):  # fmt: skip
            raise ValueError(
                f"coherence must be a whole number of complex symbols >= 1, got {self.coherence!r}"
            )
        if self.csi not in CSI_MODES:
            raise ValueError(f"csi must be one of {CSI_MODES}, got {self.csi!r}")
        if isinstance(self.pilots, bool) or not isinstance(self.pilots, int) or self.pilots < 1:
            raise ValueError(f"pilots must be a whole number >= 1 per block, got {self.pilots!r}")
        if self.equalizer not in EQUALIZERS:
            raise ValueError(f"equalizer must be one of {EQUALIZERS}, got {self.equalizer!r}")

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def n_blocks(self, n_real: int) -> int:
        """Blocks a transmission of ``n_real`` real symbols spans (at least 1)."""
        complex_uses = max(1, math.ceil(n_real / 2))
        return math.ceil(complex_uses / (self.coherence or complex_uses))

    def pilot_uses(self, n_real: int) -> int:
        """Complex channel uses the LS pilots add to a transmission (0 with perfect CSI)."""
        return self.n_blocks(n_real) * self.pilots if self.csi == "ls" else 0

    def describe(self) -> str:
        if not self.active:
            return "none (AWGN)"
        parts = [self.kind + (f" K={self.k_factor:g}" if self.kind == "rician" else "")]
        parts.append(f"coherence {self.coherence} symbols" if self.coherence else "one block")
        parts.append(f"CSI {self.csi}" + (f" ({self.pilots} pilots)" if self.csi == "ls" else ""))
        parts.append(self.equalizer.upper())
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "k_factor": self.k_factor, "coherence": self.coherence,
                "csi": self.csi, "pilots": self.pilots, "equalizer": self.equalizer}  # fmt: skip


NO_FADING = Fading(kind="none")


def check_feedback(mode: str, delay: int = 1) -> None:
    if mode not in FEEDBACK_MODES:
        raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, got {mode!r}")
    if mode == "stale" and (isinstance(delay, bool) or not isinstance(delay, int) or delay < 1):
        raise ValueError(f"a stale feedback delay is a whole number of blocks >= 1, got {delay!r}")


@dataclass(frozen=True)
class FadingDraw:
    """One draw of the channel for N transmissions of ``n_real`` real symbols each: gains
    ``h`` [N, B], the receiver's ``h_hat`` [N, B], complex noise [N, m] (m = ⌈n_real/2⌉) and
    the average ``snr_db`` [N]. Drawn before the device encodes, so the device can be told
    the instantaneous SNR (:func:`feedback_snr_db`)."""

    fading: Fading
    h: np.ndarray
    h_hat: np.ndarray
    noise: np.ndarray
    snr_db: np.ndarray
    n_real: int

    @property
    def gain(self) -> np.ndarray:
        """|h| per block [N, B]."""
        return np.abs(self.h)

    def block_index(self) -> np.ndarray:
        """b(k) for each complex symbol k [m]."""
        m = self.noise.shape[1]
        return np.arange(m) // (self.fading.coherence or m)

    def instantaneous_snr_db(self, estimated: bool = True) -> np.ndarray:
        """The SNR of each transmission after zero forcing [N], dB: from ĥ (``estimated``, what
        the receiver knows) or from h (the truth)."""
        gains = np.abs(self.h_hat if estimated else self.h) ** 2
        per_symbol = gains[:, self.block_index()]
        mean_inverse = np.mean(1.0 / np.maximum(per_symbol, 1e-30), axis=1)
        return self.snr_db - 10.0 * np.log10(mean_inverse)


def draw_gains(fading: Fading, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """h of ``shape`` (complex128): CN(0, 1) (Rayleigh) or Rician with ``fading.k_factor``."""
    scattered = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2.0)
    if fading.kind == "rayleigh":
        return scattered
    if fading.kind == "rician":
        k = fading.k_factor
        return math.sqrt(k / (k + 1.0)) + math.sqrt(1.0 / (k + 1.0)) * scattered
    raise ValueError(f"no gains to draw for fading {fading.kind!r}")


def draw(fading: Fading, n: int, n_real: int, snr_db, rng: np.random.Generator) -> FadingDraw:
    """Gains, data noise and (for ``ls``) pilot noise, drawn in that order from ``rng``, for N
    transmissions of ``n_real`` real symbols at average ``snr_db`` (a number or [N], dB)."""
    if not fading.active:
        raise ValueError("draw needs a fading channel (kind rayleigh or rician)")
    if n_real < 1:
        raise ValueError(f"a transmission needs at least one real symbol, got {n_real}")
    snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), (n,)).copy()
    sigma = np.sqrt(10.0 ** (-snr / 10.0))[:, None]  # per real dimension
    m, blocks = math.ceil(n_real / 2), fading.n_blocks(n_real)
    h = draw_gains(fading, (n, blocks), rng)
    noise = sigma * (rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m)))
    if fading.csi == "perfect":
        h_hat = h
    else:
        p = fading.pilots
        pilot_noise = sigma[:, :, None] * (
            rng.standard_normal((n, blocks, p)) + 1j * rng.standard_normal((n, blocks, p))
        )
        received = h[:, :, None] * PILOT + pilot_noise
        h_hat = np.sum(np.conj(PILOT) * received, axis=2) / (p * abs(PILOT) ** 2)
    return FadingDraw(fading, h, h_hat, noise, snr, n_real)


def to_complex(symbols: np.ndarray) -> np.ndarray:
    """[N, d] real -> [N, ⌈d/2⌉] complex: consecutive pairs as I/Q, an odd tail with Q = 0."""
    symbols = np.asarray(symbols, dtype=np.float64)
    if symbols.shape[1] % 2:
        symbols = np.concatenate([symbols, np.zeros((len(symbols), 1))], axis=1)
    return symbols[:, 0::2] + 1j * symbols[:, 1::2]


def to_real(values: np.ndarray, n_real: int) -> np.ndarray:
    """[N, m] complex -> [N, n_real] real (the inverse of :func:`to_complex`)."""
    out = np.empty((len(values), 2 * values.shape[1]), dtype=np.float64)
    out[:, 0::2], out[:, 1::2] = values.real, values.imag
    return out[:, :n_real]


def apply(symbols: np.ndarray, fading_draw: FadingDraw) -> np.ndarray:
    """The equalised received symbols [N, d] float32 for sent real symbols [N, d]."""
    symbols = np.asarray(symbols)
    if symbols.ndim != 2 or symbols.shape != (len(fading_draw.h), fading_draw.n_real):
        raise ValueError(
            f"symbols {symbols.shape} do not match the draw "
            f"({len(fading_draw.h)}, {fading_draw.n_real})"
        )
    index = fading_draw.block_index()
    h, h_hat = fading_draw.h[:, index], fading_draw.h_hat[:, index]
    y = h * to_complex(symbols) + fading_draw.noise
    if fading_draw.fading.equalizer == "zf":
        equalised = y / np.where(h_hat == 0, 1e-30, h_hat)
    else:
        noise_var = 2.0 * 10.0 ** (-fading_draw.snr_db[:, None] / 10.0)
        equalised = np.conj(h_hat) * y / (np.abs(h_hat) ** 2 + noise_var / SYMBOL_ENERGY)
    return to_real(equalised, fading_draw.n_real).astype(np.float32)


def fade(
    symbols: np.ndarray, snr_db, fading: Fading, rng: np.random.Generator
) -> tuple[np.ndarray, FadingDraw]:
    """Draw the channel for ``symbols`` [N, d] and apply it: (equalised [N, d], the draw)."""
    symbols = np.atleast_2d(np.asarray(symbols))
    fading_draw = draw(fading, len(symbols), symbols.shape[1], snr_db, rng)
    return apply(symbols, fading_draw), fading_draw


def feedback_snr_db(fading_draw: FadingDraw, mode: str, delay: int = 1) -> np.ndarray:
    """The SNR the device is told before encoding each of the N transmissions [N], dB
    (module docstring: average, instantaneous or stale by ``delay`` transmissions)."""
    check_feedback(mode, delay)
    if mode == "average":
        return fading_draw.snr_db.copy()
    instantaneous = fading_draw.instantaneous_snr_db(estimated=False)
    if mode == "instantaneous":
        return instantaneous
    stale = fading_draw.snr_db.copy()
    if delay < len(stale):
        stale[delay:] = instantaneous[:-delay]
    return stale


def outage_probability(fading: Fading, snr_db: float, threshold_db: float) -> float:
    """P(|h|²·γ < γ₀) in closed form: 1 − exp(−γ₀/γ) for Rayleigh; for Rician the CDF of
    2(K+1)|h|², a non-central χ² with 2 degrees of freedom and non-centrality 2K."""
    ratio = 10.0 ** ((threshold_db - snr_db) / 10.0)
    if fading.kind == "rayleigh":
        return float(-np.expm1(-ratio))
    if fading.kind == "rician":
        from scipy.stats import ncx2

        k = fading.k_factor
        return float(ncx2.cdf(2.0 * (k + 1.0) * ratio, df=2, nc=2.0 * k))
    return float(snr_db < threshold_db)


def rayleigh_bpsk_ber(snr_db: float) -> float:
    """BER of uncoded BPSK (each real dimension of QPSK) over Rayleigh fading with perfect
    CSI, ½(1 − √(γ/(1+γ))), γ = E_b/N₀ = 1/(2σ²) for amplitude-1 symbols."""
    gamma = 0.5 * 10.0 ** (snr_db / 10.0)
    return 0.5 * (1.0 - math.sqrt(gamma / (1.0 + gamma)))
