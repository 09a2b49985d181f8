"""Settings: CLI flags with DEVICE_* environment fallbacks."""

from __future__ import annotations

import pytest

from device.settings import parse_bool, parse_settings


def test_environment_is_the_fallback(monkeypatch):
    monkeypatch.setenv("DEVICE_MODEL", "artifacts/x")
    monkeypatch.setenv("DEVICE_DEADLINE_S", "0.5")
    monkeypatch.setenv("DEVICE_VARIABLE_LENGTH", "off")
    settings = parse_settings([])
    assert str(settings.model) == "artifacts/x"
    assert settings.deadline_s == 0.5 and settings.variable_length is False
    assert parse_settings(["--deadline-s", "3"]).deadline_s == 3.0  # flag wins


def test_model_is_required(monkeypatch):
    monkeypatch.delenv("DEVICE_MODEL", raising=False)
    with pytest.raises(SystemExit):
        parse_settings([])


@pytest.mark.parametrize("text, value", [("on", True), ("0", False), ("TRUE", True)])
def test_parse_bool(text, value):
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["maybe", "yes", "2", ""])
def test_parse_bool_rejects_other_words(text):
    with pytest.raises(ValueError):
        parse_bool(text)


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (
            ["--model", "m", "--variable-length", "yes"],
            {},
            "--variable-length / DEVICE_VARIABLE_LENGTH",
        ),
        (["--model", "m"], {"DEVICE_PORT": "http"}, "--port / DEVICE_PORT"),
        (
            ["--model", "m", "--deadline-s", "0"],
            {},
            "--deadline-s / DEVICE_DEADLINE_S: must be > 0",
        ),
        (["--model", "m", "--snr-mode", "auto"], {}, "--snr-mode / DEVICE_SNR_MODE"),
    ],
)
def test_bad_value_is_a_one_line_usage_error(argv, env, names, capsys):
    with pytest.raises(SystemExit) as info:
        parse_settings(argv, env=env)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert names in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_optional_values_take_none(monkeypatch):
    settings = parse_settings(["--model", "m", "--beta", "none"], env={"DEVICE_SNR_DB": ""})
    assert settings.beta is None and settings.snr_db is None and settings.variable_length is None
