"""The gRPC server kinds tool on real processes: open-loop unary calls and stream messages."""

from __future__ import annotations

import pytest

from tools.devices import server_kinds


@pytest.mark.parametrize("kind", ["aio-uvloop", "aio-uvloop-stream", "sync-threads"])
def test_open_loop_arrivals_are_answered_and_charged_to_the_server(kind: str) -> None:
    row = server_kinds.measure(kind, seconds=1.0, concurrency=4, rate=200.0, streams=20)
    # Poisson arrivals at 200/s for 1 s: about 200 calls (sd 14), every one answered
    assert 140 <= row["calls"] <= 260
    assert 140 <= row["calls_per_s"] <= 260
    # the server process did work for them: CPU per call is positive and below 20 ms
    assert 0.0 < row["server_cpu_ms_per_call"] < 20.0


def test_an_unknown_kind_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        server_kinds.main(["--kinds", "aio-uvloop,nope", "--rounds", "1"])
    assert stop.value.code == 2
    assert "unknown kind 'nope'" in capsys.readouterr().err
