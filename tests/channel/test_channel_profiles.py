"""PSNR profiles and their validation (channel/profiles.py)."""

from __future__ import annotations

import math

import pytest

from channel.profiles import (
    FixedProfile,
    RandomWalkProfile,
    TracePoint,
    TraceProfile,
    check_psnr_db,
    parse_trace_csv,
)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -10.5, 60.5, "loud"])
def test_check_psnr_rejects_bad_values(value) -> None:
    with pytest.raises(ValueError, match="psnr_db"):
        check_psnr_db(value)


@pytest.mark.parametrize("value", [-10, 0, 20.5, 60])
def test_check_psnr_accepts_range(value) -> None:
    assert check_psnr_db(value) == float(value)


def test_fixed_profile_is_constant() -> None:
    profile = FixedProfile(12.0)
    assert profile.current(0.0) == profile.current(1e6) == 12.0


def test_random_walk_stays_in_bounds_with_fixed_steps() -> None:
    walk = RandomWalkProfile(5.0, 15.0, 2.0, 0.5, seed=3, start=0.0)
    values = [walk.current(0.5 * k) for k in range(400)]
    assert values[0] == 10.0
    assert all(5.0 <= v <= 15.0 for v in values)
    steps = {round(abs(b - a), 9) for a, b in zip(values, values[1:], strict=False)}
    assert steps <= {0.0, 2.0}
    assert max(values) > 12 and min(values) < 8  # it does move


def test_random_walk_is_deterministic_for_a_seed() -> None:
    a = RandomWalkProfile(0, 20, 1, 1, seed=7, start=0.0)
    b = RandomWalkProfile(0, 20, 1, 1, seed=7, start=0.0)
    assert [a.current(t) for t in range(50)] == [b.current(t) for t in range(50)]


@pytest.mark.parametrize(
    ("low", "high", "step", "period", "match"),
    [
        (10, 5, 1, 1, "low_db < high_db"),
        (0, 10, 0, 1, "step_db"),
        (0, 10, 20, 1, "step_db"),
        (0, 10, 1, 0, "period_s"),
        (0, 99, 1, 1, "high_db"),
    ],
)
def test_random_walk_validation(low, high, step, period, match) -> None:
    with pytest.raises(ValueError, match=match):
        RandomWalkProfile(low, high, step, period)


def test_trace_csv_with_header_and_comments(tmp_path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("time_s,psnr_db\n# warm-up\n0,20\n1.5,10\n\n3,-5\n")
    points = parse_trace_csv(path)
    assert points == [TracePoint(0, 20), TracePoint(1.5, 10), TracePoint(3, -5)]
    trace = TraceProfile(points, start=100.0)
    assert [trace.current(100 + t) for t in (0, 1.4, 1.5, 2.9, 3.0, 50)] == [20, 20, 10, 10, -5, -5]


def test_trace_loops_at_last_time(tmp_path) -> None:
    trace = TraceProfile(
        [TracePoint(0, 20), TracePoint(1, 10), TracePoint(2, 0)], loop=True, start=0.0
    )
    assert [trace.current(t) for t in (0.5, 1.5, 2.5, 3.5)] == [20, 10, 20, 10]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no rows"),
        ("time_s,psnr_db\n", "no rows"),
        ("0,20\n1\n", r"trace.csv:2: expected 2 columns"),
        ("0,20\nsoon,10\n", r"trace.csv:2: time_s and psnr_db must be numbers"),
        ("0,20\n2,10\n1,15\n", r"trace.csv:3: time_s=1.0 must be greater"),
        ("0,20\n1,75\n", r"trace.csv:2: psnr_db=75.0 dB must be finite and within"),
        ("0,nan\n", r"trace.csv:1: psnr_db=nan"),
        ("-1,20\n", r"trace.csv:1: time_s=-1.0 must be finite and >= 0"),
    ],
)
def test_trace_csv_errors_name_the_line(tmp_path, text, match) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        parse_trace_csv(path)


def test_trace_csv_missing_file(tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        parse_trace_csv(tmp_path / "nope.csv")
