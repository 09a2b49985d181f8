"""Each service's settings: a flag over its <SERVICE>_<NAME> variable over the default (the
shared parser in shared/service/settings.py, through each service's own fields)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channel.settings import parse_settings as channel_settings
from edge_server.settings import parse_settings as edge_settings

TRACE = "0,10\n1,20\n"  # the channel's trace profile: 10 dB at t = 0

CASES = {
    "channel": (
        channel_settings,
        ["--port", "6000"],
        {"CHANNEL_PORT": "1", "CHANNEL_PSNR": "7.5", "CHANNEL_PILOTS": "4",
         "CHANNEL_PROFILE": "trace", "CHANNEL_TRACE": "{trace}", "CHANNEL_EMULATE_AIRTIME": "true"},
        {"port": 6000, "psnr_db": 7.5, "pilots": 4, "emulate_airtime": True},
    ),
    "edge": (
        edge_settings,
        ["--max-batch-size", "4"],
        {"EDGE_MODEL": "artifacts/x", "EDGE_PORT": "7000", "EDGE_MAX_BATCH_SIZE": "9",
         "EDGE_DECODER_SNR": "csi"},
        {"model": Path("artifacts/x"), "port": 7000, "max_batch_size": 4, "decoder_snr": "csi"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("service", list(CASES))
def test_settings_use_environment_fallbacks(service, tmp_path) -> None:
    """The flags given win over the environment; every other value comes from it."""
    parse, argv, env, expected = CASES[service]
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    settings = parse(argv, env={name: value.format(trace=trace) for name, value in env.items()})
    assert {name: getattr(settings, name) for name in expected} == expected
    if service == "channel":
        assert settings.build_profile().current() == 10.0  # the trace named by CHANNEL_TRACE
