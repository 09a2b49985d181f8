"""The device's knob state file: atomic saves on every change, strict all-or-nothing loads."""

from __future__ import annotations

import json

import pytest

from device.knobs import (
    STATE_FORMAT,
    KnobError,
    Knobs,
    KnobStateError,
    KnobStateFile,
    default_knobs,
    open_knob_store,
)
from tests.device.helpers import make_manifest

MANIFEST = make_manifest()


def state(**knob_changes) -> dict:
    knobs = {"beta": 1e-3, "snr_mode": "feedback", "snr_db": None, "variable_length": False}
    return {"format": STATE_FORMAT, "model_id": "test-model", "knobs": {**knobs, **knob_changes}}


def test_a_missing_file_starts_from_the_given_knobs_and_writes_them(tmp_path) -> None:
    path = tmp_path / "sub" / "knobs.json"
    store = open_knob_store(MANIFEST, default_knobs(MANIFEST), path)
    assert store.get() == default_knobs(MANIFEST)
    assert json.loads(path.read_text()) == state()


def test_every_change_is_saved_and_restored(tmp_path) -> None:
    path = tmp_path / "knobs.json"
    store = open_knob_store(MANIFEST, default_knobs(MANIFEST), path)
    store.update({"beta": 0.05})
    store.update({"snr_mode": "manual", "snr_db": 7.5})
    restored = open_knob_store(MANIFEST, default_knobs(MANIFEST), path).get()
    assert restored == Knobs(beta=0.05, snr_mode="manual", snr_db=7.5, variable_length=False)
    assert [p.name for p in tmp_path.iterdir()] == ["knobs.json"]  # no temp files left


def test_a_refused_change_is_neither_applied_nor_saved(tmp_path) -> None:
    path = tmp_path / "knobs.json"
    store = open_knob_store(MANIFEST, default_knobs(MANIFEST), path)
    before = path.read_text()
    with pytest.raises(KnobError):
        store.update({"beta": 5.0})
    assert path.read_text() == before
    assert store.get() == default_knobs(MANIFEST)


def test_a_failed_save_leaves_the_knobs_unchanged(tmp_path) -> None:
    path = tmp_path / "knobs.json"
    store = open_knob_store(MANIFEST, default_knobs(MANIFEST), path)
    path.unlink()
    path.mkdir()  # os.replace onto a folder fails, even as root
    with pytest.raises(OSError):
        store.update({"beta": 0.05})
    assert store.get().beta == 1e-3
    assert [p.name for p in tmp_path.iterdir()] == ["knobs.json"]  # the temp file is removed


CORRUPT = {
    "not json": ("{beta: 1", "not valid JSON"),
    "truncated": (json.dumps(state())[:40], "not valid JSON"),
    "a list": ("[]", "exactly"),
    "unknown key": (json.dumps({**state(), "extra": 1}), "exactly"),
    "missing knob": (json.dumps({**state(), "knobs": {"beta": 1e-3}}), "exactly"),
    "old format": (json.dumps({**state(), "format": "v0"}), "format"),
    "beta a string": (json.dumps(state(beta="0.1")), "knobs.beta must be a JSON number"),
    "beta a bool": (json.dumps(state(beta=True)), "knobs.beta must be a JSON number"),
    "mode a number": (json.dumps(state(snr_mode=1)), "knobs.snr_mode must be a JSON string"),
    "vl a string": (json.dumps(state(variable_length="no")), "variable_length must be"),
    "beta out of range": (json.dumps(state(beta=5.0)), "invalid knobs for this model"),
    "beta negative": (json.dumps(state(beta=-1e-3)), "beta must be > 0"),
    "beta NaN": (json.dumps(state(beta=float("nan"))), "beta must be finite"),
    "snr out of range": (json.dumps(state(snr_mode="manual", snr_db=99.0)), "invalid knobs"),
    "unknown mode": (json.dumps(state(snr_mode="auto")), "snr_mode must be one of"),
    "vl on a fixed model": (json.dumps(state(variable_length=True)), "fixed-length"),
    "another model": (json.dumps({**state(), "model_id": "other"}), "model 'other'"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_file_is_refused_whole_with_a_one_line_reason(tmp_path, case) -> None:
    text, reason = CORRUPT[case]
    path = tmp_path / "knobs.json"
    path.write_text(text)
    with pytest.raises(KnobStateError) as caught:
        open_knob_store(MANIFEST, default_knobs(MANIFEST), path)
    message = str(caught.value)
    assert reason in message
    assert str(path) in message
    assert "\n" not in message
    assert path.read_text() == text  # refused, never overwritten


def test_state_file_load_of_a_missing_file_is_none(tmp_path) -> None:
    assert KnobStateFile(tmp_path / "absent.json", MANIFEST).load() is None
