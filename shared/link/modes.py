"""Link modes, the MCS table and the ideal link's air-time (NumPy only).

Conventions as in ``shared/channel.py``: the channel carries real symbols with peak amplitude
1 at ``baud`` real symbols per second; PSNR = 10·log10(1/σ²), σ² per real dimension. A QAM
symbol uses two real channel uses (I and Q), each a PAM constellation with peak amplitude 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.channel import DEFAULT_BAUD, capacity_bits_per_symbol

LINK_MODES = ("analog", "ideal", "ldpc-qam")


def check_link_mode(mode: str) -> str:
    if mode not in LINK_MODES:
        raise ValueError(f"link mode must be one of {LINK_MODES}, got {mode!r}")
    return mode


def ideal_airtime_s(bits: int, psnr_db: float, baud: float = DEFAULT_BAUD) -> float:
    """Air-time of ``bits`` at the capacity bound of VL-VFE eq. (13):
    bits / (capacity_bits_per_symbol(PSNR) bits per real symbol × baud)."""
    if baud <= 0:
        raise ValueError(f"baud must be > 0, got {baud}")
    return bits / (capacity_bits_per_symbol(psnr_db) * baud)


def bit_budget(latency_s: float, psnr_db: float, baud: float = DEFAULT_BAUD) -> int:
    """The most whole bits the ideal link carries within ``latency_s`` seconds at ``psnr_db``:
    floor(latency_s × baud × C), C the VL-VFE eq. (13) bound in bits per real symbol. What
    the learning-based quantization baseline of VL-VFE Table III may send (n·bits ≤ budget)."""
    if latency_s < 0 or baud <= 0:
        raise ValueError(f"latency must be >= 0 and baud > 0, got {latency_s}, {baud}")
    return math.floor(latency_s * baud * capacity_bits_per_symbol(psnr_db) + 1e-9)


@dataclass(frozen=True)
class Mcs:
    """One modulation and coding scheme: 2^bits_per_qam-QAM, LDPC code rate, and the lowest
    PSNR (dB) at which it is chosen."""

    name: str
    bits_per_qam: int
    code_rate: float
    min_psnr_db: float

    @property
    def bits_per_channel_use(self) -> float:
        """Information bits per real symbol (a QAM symbol is two real channel uses)."""
        return self.bits_per_qam * self.code_rate / 2


# min_psnr_db: the lowest PSNR (1 dB steps) at which 300 blocks of a 192-bit payload had a
# block error rate below 1% (python -m trainer.link_calibration). Below its threshold an MCS
# falls off a cliff: about 1 dB lower its block error rate is 3-50%.
MCS_TABLE = (
    Mcs("QPSK 1/3", 2, 1 / 3, 0.0),
    Mcs("QPSK 1/2", 2, 1 / 2, 3.0),
    Mcs("QPSK 2/3", 2, 2 / 3, 5.0),
    Mcs("16-QAM 1/2", 4, 1 / 2, 11.0),
    Mcs("16-QAM 2/3", 4, 2 / 3, 13.0),
    Mcs("16-QAM 3/4", 4, 3 / 4, 15.0),
    Mcs("64-QAM 2/3", 6, 2 / 3, 20.0),
    Mcs("64-QAM 5/6", 6, 5 / 6, 23.0),
    Mcs("256-QAM 3/4", 8, 3 / 4, 27.0),
)


def mcs_for_psnr(psnr_db: float, table: tuple[Mcs, ...] = MCS_TABLE) -> Mcs:
    """The highest-rate MCS whose threshold the PSNR reaches (the lowest one below all)."""
    chosen = table[0]
    for mcs in table:
        if psnr_db >= mcs.min_psnr_db and mcs.bits_per_channel_use > chosen.bits_per_channel_use:
            chosen = mcs
    return chosen


POWER_CONVENTIONS = ("peak", "average")


def pam_peak_to_average(bits_per_qam: int) -> float:
    """Peak over average power of one real dimension of square 2^m-QAM: a √M-level PAM
    (levels ±1, ±3, … ±(L-1)): (L-1)² / ((L²-1)/3) = 3(L-1)/(L+1); QPSK 1, 16-QAM 9/5."""
    levels = 2 ** (bits_per_qam // 2)
    return 3 * (levels - 1) / (levels + 1)


def mcs_for_snr(snr_db: float, power: str = "peak", table: tuple[Mcs, ...] = MCS_TABLE) -> Mcs:
    """``mcs_for_psnr`` for either power convention. The table's thresholds are for peak
    amplitude 1 per real dimension (PSNR); with mean power 1 per real dimension (the image
    model's convention) the constellation's points are larger by its peak-to-average ratio,
    so each threshold is that many dB lower."""
    if power not in POWER_CONVENTIONS:
        raise ValueError(f"power must be one of {POWER_CONVENTIONS}, got {power!r}")
    if power == "peak":
        return mcs_for_psnr(snr_db, table)
    shifted = tuple(
        Mcs(m.name, m.bits_per_qam, m.code_rate,
            m.min_psnr_db - 10 * math.log10(pam_peak_to_average(m.bits_per_qam)))
        for m in table
    )  # fmt: skip
    chosen = mcs_for_psnr(snr_db, shifted)
    return next(m for m in table if m.name == chosen.name)


def max_payload_bits(real_channel_uses: int, mcs: Mcs) -> int:
    """The most payload bits k with ``channel_uses(k, mcs) <= real_channel_uses``."""
    k = int(real_channel_uses // 2 * mcs.bits_per_qam * mcs.code_rate) + 1
    while k > 0 and channel_uses(k, mcs) > real_channel_uses:
        k -= 1
    return k


def codeword_length(payload_bits: int, mcs: Mcs) -> int:
    """n coded bits for k payload bits: ceil(k / R) rounded up to whole QAM symbols."""
    n = math.ceil(payload_bits / mcs.code_rate)
    return mcs.bits_per_qam * math.ceil(n / mcs.bits_per_qam)


def channel_uses(payload_bits: int, mcs: Mcs) -> int:
    """Real channel uses (two per QAM symbol) one codeword of ``payload_bits`` takes."""
    return 2 * codeword_length(payload_bits, mcs) // mcs.bits_per_qam
