"""Knob validation: beta and SNR inside the trained ranges, modes, variable length."""

from __future__ import annotations

import math

import pytest

from device.knobs import KnobError, Knobs, KnobStore, decide_snr, default_knobs, validate_knobs
from tests.device.helpers import make_manifest

FIXED = make_manifest()
VL = make_manifest(variable_length=True)


def knobs(**changes) -> Knobs:
    base = dict(beta=1e-3, snr_mode="feedback", snr_db=None, variable_length=False)
    return Knobs(**{**base, **changes})


def test_defaults_are_valid_and_follow_the_model():
    assert default_knobs(FIXED) == knobs()
    assert default_knobs(VL).variable_length is True
    manual = default_knobs(FIXED, snr_mode="manual")
    assert manual.snr_db == pytest.approx(12.5)  # middle of [0, 25] dB


def test_default_beta_inside_a_narrow_range_is_its_geometric_mean():
    manifest = make_manifest(beta_range=(0.01, 1.0))
    assert default_knobs(manifest).beta == pytest.approx(0.1)


@pytest.mark.parametrize("beta", [0.0, -1e-3, 2.0, 1e-7, math.nan, math.inf, True, "0.1"])
def test_bad_beta_is_rejected(beta):
    with pytest.raises(KnobError, match="beta"):
        validate_knobs(knobs(beta=beta), FIXED)


@pytest.mark.parametrize("beta", [1e-5, 1e-3, 1.0])
def test_beta_inside_the_range_is_accepted(beta):
    assert validate_knobs(knobs(beta=beta), FIXED).beta == beta


@pytest.mark.parametrize("snr_db", [-0.5, 25.5, 100.0, math.nan])
def test_manual_snr_outside_the_range_is_rejected(snr_db):
    with pytest.raises(KnobError, match="snr_db"):
        validate_knobs(knobs(snr_mode="manual", snr_db=snr_db), FIXED)


def test_manual_mode_needs_an_snr():
    with pytest.raises(KnobError, match="manual"):
        validate_knobs(knobs(snr_mode="manual", snr_db=None), FIXED)


def test_unknown_snr_mode_is_rejected():
    with pytest.raises(KnobError, match="feedback"):
        validate_knobs(knobs(snr_mode="auto"), FIXED)


def test_variable_length_only_for_variable_length_models():
    with pytest.raises(KnobError, match="fixed-length"):
        validate_knobs(knobs(variable_length=True), FIXED)
    assert validate_knobs(knobs(variable_length=True), VL).variable_length is True
    assert validate_knobs(knobs(variable_length=False), VL).variable_length is False


def test_store_update_is_all_or_nothing():
    store = KnobStore(FIXED, knobs())
    with pytest.raises(KnobError):
        store.update({"beta": 0.5, "snr_mode": "manual", "snr_db": 99.0})
    assert store.get() == knobs()
    updated = store.update({"snr_mode": "manual", "snr_db": 5.0})
    assert updated == knobs(snr_mode="manual", snr_db=5.0)


def test_store_rejects_unknown_knobs():
    with pytest.raises(KnobError, match="unknown knobs"):
        KnobStore(FIXED, knobs()).update({"gamma": 1.0})


def test_feedback_inside_the_range_is_used_as_is():
    decision = decide_snr(knobs(), 17.25, FIXED)
    assert (decision.snr_db, decision.out_of_range, decision.note) == (17.25, False, None)


@pytest.mark.parametrize("psnr_db, bound", [(31.0, 25.0), (-4.0, 0.0)])
def test_feedback_outside_the_range_uses_the_nearest_bound_and_says_so(psnr_db, bound):
    decision = decide_snr(knobs(), psnr_db, FIXED)
    assert decision.snr_db == bound
    assert decision.out_of_range is True
    assert decision.feedback_psnr_db == psnr_db
    assert "outside the trained SNR range" in decision.note and f"{bound:g} dB" in decision.note


def test_manual_mode_ignores_feedback():
    decision = decide_snr(knobs(snr_mode="manual", snr_db=3.0), 20.0, FIXED)
    assert (decision.snr_db, decision.source, decision.out_of_range) == (3.0, "manual", False)
