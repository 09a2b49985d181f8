"""Block fading (shared/fading.py): closed forms, Sionna's Rayleigh law, CSI, equalisers, the
differentiable twin, feedback and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from shared.fading import (
    Fading,
    apply,
    draw,
    draw_gains,
    fade,
    feedback_snr_db,
    outage_probability,
    rayleigh_bpsk_ber,
    to_complex,
    to_real,
)
from shared.nn.fading import apply_fading

N = 60_000


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_qpsk_ber_over_rayleigh_matches_the_closed_form(snr_db):
    rng = np.random.default_rng(int(snr_db) + 1)
    bits = rng.integers(0, 2, size=(N, 2))
    received, _ = fade(1.0 - 2.0 * bits, snr_db, Fading("rayleigh"), rng)
    errors = ((received < 0) != (bits == 1)).mean(axis=1)  # one block per transmission
    se = errors.std(ddof=1) / math.sqrt(N)
    assert abs(errors.mean() - rayleigh_bpsk_ber(snr_db)) <= 3 * se
    # and not the AWGN curve: at 10 dB AWGN gives Q(√10) = 7.8e-4, Rayleigh 2.3e-2
    if snr_db == 10.0:
        assert errors.mean() > 10 * stats.norm.sf(math.sqrt(10.0))


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("fading", [Fading("rayleigh"), Fading("rician", k_factor=3.0)])
def test_outage_probability_matches_the_closed_form(fading, snr_db):
    rng = np.random.default_rng(7)
    gains = np.abs(draw_gains(fading, (N,), rng)) ** 2
    threshold_db = 5.0
    simulated = np.mean(gains * 10 ** (snr_db / 10) < 10 ** (threshold_db / 10))
    p = outage_probability(fading, snr_db, threshold_db)
    assert abs(simulated - p) <= 3 * math.sqrt(max(p * (1 - p), 1e-9) / N)


def test_rayleigh_outage_closed_form_by_hand():
    # γ = γ₀: 1 − e^(−1) = 0.6321; γ 10 dB above γ₀: 1 − e^(−0.1) = 0.0952
    assert outage_probability(Fading("rayleigh"), 5.0, 5.0) == pytest.approx(0.632121, abs=1e-6)
    assert outage_probability(Fading("rayleigh"), 15.0, 5.0) == pytest.approx(0.095163, abs=1e-6)
    assert rayleigh_bpsk_ber(10.0) == pytest.approx(0.5 * (1 - math.sqrt(5 / 6)), abs=1e-12)


def test_rayleigh_gains_follow_sionnas_rayleigh_block_fading():
    sionna_channel = pytest.importorskip("sionna.phy.channel")
    torch.manual_seed(0)
    h, _ = sionna_channel.RayleighBlockFading(1, 1, 1, 1)(batch_size=20_000, num_time_steps=1)
    theirs = h.abs().square().flatten().numpy()
    ours = np.abs(draw_gains(Fading("rayleigh"), (20_000,), np.random.default_rng(0))) ** 2
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert ours.mean() == pytest.approx(1.0, abs=0.03)  # E|h|² = 1: the average SNR is kept


def test_rician_power_and_line_of_sight():
    gains = draw_gains(Fading("rician", k_factor=3.0), (N,), np.random.default_rng(1))
    assert np.mean(np.abs(gains) ** 2) == pytest.approx(1.0, abs=0.02)
    assert gains.mean().real == pytest.approx(math.sqrt(3 / 4), abs=0.01)  # LOS part


def test_iq_pairing_round_trips_odd_lengths():
    x = np.arange(10.0).reshape(2, 5)
    c = to_complex(x)
    assert c[0].tolist() == [0 + 1j, 2 + 3j, 4 + 0j]
    assert to_real(c, 5).tolist() == x.tolist()


def test_zero_forcing_with_perfect_csi_is_awgn_at_the_instantaneous_snr():
    rng = np.random.default_rng(3)
    symbols = rng.uniform(-1, 1, size=(4000, 64))
    received, fading_draw = fade(symbols, 10.0, Fading("rayleigh"), rng)
    gain2 = np.abs(fading_draw.h[:, 0]) ** 2
    scaled_error = (received - symbols) * np.sqrt(gain2)[:, None]  # n/h·|h| ~ N(0, σ²)
    assert scaled_error.var() == pytest.approx(0.1, rel=0.02)
    expected = 10.0 + 10 * np.log10(gain2)
    assert fading_draw.instantaneous_snr_db() == pytest.approx(expected)


def test_coherence_splits_a_transmission_into_blocks():
    fading = Fading("rayleigh", coherence=4)
    assert fading.n_blocks(16) == 2 and fading.n_blocks(17) == 3 and Fading().n_blocks(17) == 1
    rng = np.random.default_rng(4)
    symbols = np.ones((3, 16))
    received, fading_draw = fade(symbols, 100.0, fading, rng)  # nearly noise-free
    assert fading_draw.h.shape == (3, 2)
    assert np.allclose(received, symbols, atol=1e-2)
    # instantaneous SNR of a transmission: its mean ZF noise variance over both blocks
    g = np.abs(fading_draw.h) ** 2
    assert fading_draw.instantaneous_snr_db() == pytest.approx(
        100.0 - 10 * np.log10(np.mean(1 / g, axis=1))
    )


def test_least_squares_csi_estimates_the_gain_and_more_pilots_help():
    errors = {}
    for pilots in (1, 16):
        fading = Fading("rayleigh", csi="ls", pilots=pilots)
        fading_draw = draw(fading, 20_000, 8, 10.0, np.random.default_rng(5))
        errors[pilots] = np.mean(np.abs(fading_draw.h_hat - fading_draw.h) ** 2)
    # LS error variance σ²/P per complex gain (σ² = 0.1 per real dimension, |p|² = 2)
    assert errors[1] == pytest.approx(0.1, rel=0.05)
    assert errors[16] == pytest.approx(0.1 / 16, rel=0.05)
    assert Fading("rayleigh", csi="ls", pilots=2, coherence=4).pilot_uses(16) == 4


def test_mmse_shrinks_toward_zero_and_beats_zf_in_deep_fades():
    rng = np.random.default_rng(6)
    symbols = rng.choice([-1.0, 1.0], size=(20_000, 2))
    mse = {}
    for equalizer in ("zf", "mmse"):
        fading = Fading("rayleigh", equalizer=equalizer)
        received, _ = fade(symbols, 0.0, fading, np.random.default_rng(8))
        mse[equalizer] = np.mean((received - symbols) ** 2)
    assert mse["mmse"] < mse["zf"]  # ZF's noise enhancement at 0 dB has a heavy tail


def test_torch_twin_equals_numpy_and_passes_gradients():
    rng = np.random.default_rng(9)
    for fading in (Fading("rayleigh", coherence=3, csi="ls", pilots=2),
                   Fading("rician", k_factor=2.0, equalizer="mmse")):  # fmt: skip
        symbols = rng.uniform(-1, 1, size=(5, 11)).astype(np.float32)
        fading_draw = draw(fading, 5, 11, np.array([0, 5, 10, 15, 20.0]), rng)
        expected = apply(symbols, fading_draw)
        tensor = torch.from_numpy(symbols).requires_grad_()
        out = apply_fading(tensor, fading_draw)
        assert np.allclose(out.detach().numpy(), expected, atol=1e-5)
        out.sum().backward()
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
        assert tensor.grad.abs().sum() > 0


def test_feedback_modes():
    fading_draw = draw(Fading("rayleigh"), 6, 4, 12.0, np.random.default_rng(10))
    instantaneous = fading_draw.instantaneous_snr_db(estimated=False)
    assert feedback_snr_db(fading_draw, "average").tolist() == [12.0] * 6
    assert feedback_snr_db(fading_draw, "instantaneous") == pytest.approx(instantaneous)
    stale = feedback_snr_db(fading_draw, "stale", delay=2)
    assert stale[:2].tolist() == [12.0, 12.0]
    assert stale[2:] == pytest.approx(instantaneous[:-2])


def test_seeded_draws_repeat():
    a = fade(np.ones((3, 8)), 5.0, Fading("rician", k_factor=1.0), np.random.default_rng(11))[0]
    b = fade(np.ones((3, 8)), 5.0, Fading("rician", k_factor=1.0), np.random.default_rng(11))[0]
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "nakagami"}, "fading must be one of"),
        ({"kind": "rician", "k_factor": -1.0}, "k_factor"),
        ({"kind": "rician", "k_factor": float("nan")}, "k_factor"),
        ({"kind": "rayleigh", "k_factor": 2.0}, "rician fading only"),
        ({"coherence": 0}, "coherence"),
        ({"coherence": 2.5}, "coherence"),
        ({"csi": "blind"}, "csi"),
        ({"csi": "ls", "pilots": 0}, "pilots"),
        ({"equalizer": "ml"}, "equalizer"),
    ],
)
def test_bad_settings_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Fading(**kwargs)


def test_bad_feedback_and_shapes():
    fading_draw = draw(Fading(), 2, 4, 10.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="feedback"):
        feedback_snr_db(fading_draw, "oracle")
    with pytest.raises(ValueError, match="delay"):
        feedback_snr_db(fading_draw, "stale", delay=0)
    with pytest.raises(ValueError, match="do not match"):
        apply(np.ones((2, 6)), fading_draw)
    with pytest.raises(ValueError, match="needs a fading channel"):
        draw(Fading("none"), 2, 4, 10.0, np.random.default_rng(0))
