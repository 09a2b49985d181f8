"""Settings: CLI flags with DEVICE_* environment fallbacks."""

from __future__ import annotations

import pytest

from device.settings import parse_bool, settings_from_args


def test_environment_is_the_fallback(monkeypatch):
    monkeypatch.setenv("DEVICE_MODEL", "artifacts/x")
    monkeypatch.setenv("DEVICE_DEADLINE_S", "0.5")
    monkeypatch.setenv("DEVICE_VARIABLE_LENGTH", "off")
    settings = settings_from_args([])
    assert str(settings.model) == "artifacts/x"
    assert settings.deadline_s == 0.5 and settings.variable_length is False
    assert settings_from_args(["--deadline-s", "3"]).deadline_s == 3.0  # flag wins


def test_model_is_required(monkeypatch):
    monkeypatch.delenv("DEVICE_MODEL", raising=False)
    with pytest.raises(SystemExit):
        settings_from_args([])


@pytest.mark.parametrize("text, value", [("on", True), ("0", False), ("TRUE", True)])
def test_parse_bool(text, value):
    assert parse_bool(text) is value


def test_parse_bool_rejects_other_words():
    with pytest.raises(ValueError):
        parse_bool("maybe")
