"""The digital links' maths (shared/link): capacity air-time, MCS choice, LDPC + QAM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.link.modes import (
    MCS_TABLE,
    channel_uses,
    check_link_mode,
    codeword_length,
    ideal_airtime_s,
    mcs_for_psnr,
)


def test_ideal_airtime_is_bits_over_capacity_times_baud():
    # 20 dB: C = 0.5·log2(1 + 100) = 3.3291 bits per real symbol (VL-VFE eq. 13)
    assert ideal_airtime_s(256, 20.0, 9600.0) == pytest.approx(256 / (3.32911 * 9600), 1e-4)
    assert ideal_airtime_s(128, 0.0, 1.0) == pytest.approx(256.0)  # C = 0.5 at 0 dB


def test_mcs_rate_rises_with_psnr_and_the_lowest_is_the_fallback():
    rates = [mcs_for_psnr(p).bits_per_channel_use for p in np.arange(-10, 35, 0.5)]
    assert rates == sorted(rates)
    assert mcs_for_psnr(-20.0) == MCS_TABLE[0]
    assert mcs_for_psnr(20.0).name == "64-QAM 2/3"
    for mcs in MCS_TABLE:  # below the Shannon bound at its threshold
        capacity = 0.5 * math.log2(1 + 10 ** (mcs.min_psnr_db / 10))
        assert mcs.bits_per_channel_use < capacity


def test_codeword_fills_whole_qam_symbols():
    mcs = next(m for m in MCS_TABLE if m.name == "64-QAM 2/3")
    assert codeword_length(192, mcs) == 288 and channel_uses(192, mcs) == 96
    with pytest.raises(ValueError, match="link mode"):
        check_link_mode("carrier-pigeon")


def test_ldpc_qam_cliff_around_the_mcs_threshold():
    from shared.link.ldpc_qam import simulate_blocks

    mcs = next(m for m in MCS_TABLE if m.name == "16-QAM 1/2")
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (60, 192))
    decoded, ok = simulate_blocks(bits, mcs, mcs.min_psnr_db + 2.0, rng)
    assert ok.all() and np.array_equal(decoded, bits)
    _, ok = simulate_blocks(bits, mcs, mcs.min_psnr_db - 4.0, rng)
    assert ok.mean() < 0.1  # 4 dB below: nearly every block lost
