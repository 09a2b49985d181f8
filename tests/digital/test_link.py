"""The digital links' maths (shared/link): capacity air-time, MCS choice, LDPC + QAM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.channel import capacity_bits_per_symbol
from shared.link.modes import (
    MCS_TABLE,
    channel_uses,
    check_link_mode,
    codeword_length,
    ideal_airtime_s,
    mcs_for_psnr,
)

# VL-VFE eq. (13) with P = 1, σ² = 10^(-PSNR/10), worked by hand (40-digit decimals):
#   0 dB:  log2(1 + sqrt(2/(πe)))   = 0.569434169554, ½·log2(2)   = 0.5            -> 0.5
#  10 dB:  log2(1 + sqrt(20/(πe)))  = 1.339341077439, ½·log2(11)  = 1.729715809319 -> 1.3393
#  20 dB:  log2(1 + sqrt(200/(πe))) = 2.545823719419, ½·log2(101) = 3.329105741376 -> 2.5458
HAND_CAPACITY = {0.0: 0.5, 10.0: 1.339341077438719, 20.0: 2.545823719418883}


@pytest.mark.parametrize(("psnr_db", "bits"), sorted(HAND_CAPACITY.items()))
def test_capacity_is_the_minimum_of_the_two_terms_of_eq_13(psnr_db, bits):
    assert capacity_bits_per_symbol(psnr_db) == pytest.approx(bits, abs=1e-9)


def test_capacity_rises_with_psnr_and_never_exceeds_shannon():
    psnrs = np.arange(-20.0, 40.0, 0.25)
    caps = [capacity_bits_per_symbol(float(p)) for p in psnrs]
    assert caps == sorted(caps) and caps[0] > 0
    for p, cap in zip(psnrs, caps, strict=True):
        assert cap <= 0.5 * math.log2(1 + 10 ** (p / 10)) + 1e-12


def test_ideal_airtime_is_bits_over_capacity_times_baud():
    # 20 dB: C = 2.5458 bits per real symbol (the amplitude-limit term of eq. 13)
    assert ideal_airtime_s(256, 20.0, 9600.0) == pytest.approx(256 / (2.545824 * 9600), 1e-6)
    assert ideal_airtime_s(128, 0.0, 1.0) == pytest.approx(256.0)  # C = 0.5 at 0 dB


def test_mcs_rate_rises_with_psnr_and_the_lowest_is_the_fallback():
    rates = [mcs_for_psnr(p).bits_per_channel_use for p in np.arange(-10, 35, 0.5)]
    assert rates == sorted(rates)
    assert mcs_for_psnr(-20.0) == MCS_TABLE[0]
    assert mcs_for_psnr(20.0).name == "64-QAM 2/3"
    for mcs in MCS_TABLE:  # below the eq. (13) bound at its threshold
        assert mcs.bits_per_channel_use < capacity_bits_per_symbol(mcs.min_psnr_db)


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
    # one SNR per codeword (block fading after zero forcing): each block meets its own
    per_block = np.where(np.arange(60) % 2 == 0, mcs.min_psnr_db + 3.0, mcs.min_psnr_db - 6.0)
    _, ok = simulate_blocks(bits, mcs, per_block, rng)
    assert ok[0::2].all() and not ok[1::2].any()


def test_pam_peak_to_average_by_hand():
    from shared.link.modes import pam_peak_to_average

    # levels ±1, ±3, …: QPSK 1/1, 16-QAM 9/5, 64-QAM 49/21, 256-QAM 225/85
    assert pam_peak_to_average(2) == pytest.approx(1.0)
    assert pam_peak_to_average(4) == pytest.approx(9 / 5)
    assert pam_peak_to_average(6) == pytest.approx(49 / 21)
    assert pam_peak_to_average(8) == pytest.approx(225 / 85)


def test_average_power_thresholds_are_lower_by_the_peak_to_average_ratio():
    from shared.link.modes import mcs_for_snr

    # 16-QAM 1/2 needs 11 dB PSNR (peak 1): with mean power 1 it needs 11 - 2.55 = 8.45 dB
    assert mcs_for_snr(9.0, "peak").name == "QPSK 2/3"
    assert mcs_for_snr(9.0, "average").name == "16-QAM 1/2"
    assert mcs_for_snr(8.0, "average").name == "QPSK 2/3"
    assert mcs_for_snr(0.0, "average").name == "QPSK 1/3"  # QPSK: peak = average
    with pytest.raises(ValueError, match="power"):
        mcs_for_snr(9.0, "rms")


@pytest.mark.parametrize("name", ["QPSK 1/2", "16-QAM 3/4", "256-QAM 3/4"])
def test_max_payload_bits_is_the_largest_that_fits(name):
    from shared.link.modes import max_payload_bits

    mcs = next(m for m in MCS_TABLE if m.name == name)
    k = max_payload_bits(256, mcs)
    assert channel_uses(k, mcs) <= 256 < channel_uses(k + 1, mcs)


def test_average_power_link_survives_where_the_peak_link_fails():
    from shared.link.ldpc_qam import simulate_blocks

    mcs = next(m for m in MCS_TABLE if m.name == "16-QAM 1/2")
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, (60, 192))
    # 10 dB: 1.45 dB above the average-power threshold, 1 dB below the peak one
    _, ok_average = simulate_blocks(bits, mcs, 10.0, rng, power="average")
    _, ok_peak = simulate_blocks(bits, mcs, 9.0, rng, power="peak")
    assert ok_average.mean() > 0.95 and ok_peak.mean() < 0.8
    with pytest.raises(ValueError, match="power"):
        simulate_blocks(bits, mcs, 10.0, rng, power="rms")
