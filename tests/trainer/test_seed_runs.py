"""The spread of an experiment's figures over its seed repeats (trainer.experiments.seed_runs)."""

import json
import math

import pytest

from trainer.experiments.common import Check
from trainer.experiments.seed_runs import (
    Spread,
    check_spread,
    field_spread,
    find_repeats,
    spread_lines,
    status_text,
    verdict_cell,
)


def test_spread_of_three_values():
    spread = Spread("gap", (1.0, 2.0, 4.0), ">=", 2.0, "points")
    assert spread.mean == pytest.approx(7 / 3)
    assert spread.sd == pytest.approx(math.sqrt(7 / 3))  # (16 + 1 + 25) / 9 / 2
    assert spread.on_mean.met and spread.met_count == 2
    assert Spread("gap", (1.0, 2.0, 4.0), "<=", 2.0).on_mean.status() == "missed by 0.333"
    assert math.isnan(Spread("one", (3.0,), ">=", 0.0).sd)
    assert spread.margins == (-1.0, 0.0, 2.0)  # ≥ 2: 1 misses by 1
    assert Spread("gap", (1.0, 3.0), "<=", 2.0).margins == (1.0, -1.0)


def test_a_seed_whose_figure_is_nan_makes_the_mean_nan_and_misses(tmp_path):
    """A run can leave a figure uncomputable (NaN: e.g. no rate both models cover); the spread
    over seeds is then NaN and missed on the mean, and the margins plot still draws."""
    from trainer.experiments.seed_runs import plot_margins

    spread = Spread("gap", (math.nan, 0.35, 0.1), "<=", 0.5, "points")
    assert math.isnan(spread.mean) and math.isnan(spread.sd)
    assert not spread.on_mean.met and spread.met_count == 2
    path = plot_margins([spread], [0, 1, 2], tmp_path / "spread.png")
    assert path.stat().st_size > 1000


def test_a_figure_without_a_value_is_reported_as_not_measured_not_missed_by_nan():
    assert status_text(Check("gap", math.nan, "<=", 0.5, "points")) == (
        "missed: not measured in this run"
    )
    assert verdict_cell(Check("gap", 0.7, "<=", 0.5, "points")) == "**missed by 0.2 points**"
    assert verdict_cell(Check("gap", 0.3, "<=", 0.5, "points")) == "met"
    runs = [{"settings": {"seed": s}, "_dir": f"x/seed-{s}"} for s in (0, 1, 2)]
    checks = [[Check("gap", v, "<=", 0.5, "points")] for v in (math.nan, 0.35, 0.1)]
    row = next(line for line in spread_lines("x", runs, checks) if line.startswith("| gap "))
    assert "**missed: not measured in 1 of 3 seeds**" in row and "missed by nan" not in row


def test_checks_are_matched_by_figure_in_the_first_runs_order():
    first = [Check("a", 1.0, ">=", 0.0), Check("b", 2.0, "<=", 5.0), Check("c", 0.0, ">=", 1.0)]
    second = [Check("c", 3.0, ">=", 1.0), Check("a", -1.0, ">=", 0.0)]
    spreads = check_spread([first, second])
    assert [(s.figure, s.values) for s in spreads] == [("a", (1.0, -1.0)), ("c", (0.0, 3.0))]


def test_field_spread_expands_keys_and_names_list_items_by_psnr():
    runs = [
        {"t": {"10": {"acc": 0.8, "n": 3}, "20": {"acc": 0.9, "n": "x"}},
         "d": {"m": [{"psnr_db": 10.0, "acc": 0.5}, {"psnr_db": 12.5, "acc": 0.6}]}},
        {"t": {"10": {"acc": 0.7, "n": 4}},
         "d": {"m": [{"psnr_db": 10.0, "acc": 0.4}, {"psnr_db": 12.5, "acc": 0.7}]}},
    ]  # fmt: skip
    assert field_spread(runs, "t/*/acc") == [("t/10/acc", (0.8, 0.7))]  # 20 lacks in run 2
    assert field_spread(runs, "t/*/n") == [("t/10/n", (3.0, 4.0))]
    assert field_spread(runs, "d/*/*/acc") == [
        ("d/m/10 dB/acc", (0.5, 0.4)), ("d/m/12.5 dB/acc", (0.6, 0.7))
    ]  # fmt: skip
    assert field_spread(runs, "t/30/acc") == []


def _run(seed, **extra):
    return {"experiment": "e", "mode": "full", "settings": {"epochs": 3, "seed": seed}, **extra}


def test_find_repeats_keeps_matching_runs_in_seed_order(tmp_path):
    for folder, results in (("seed-3", _run(3)), ("seed-10", _run(1)), ("seed-4", _run(4)),
                            ("seed-5", _run(0)), ("seed-6", _run(6, mode="quick"))):  # fmt: skip
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.json").write_text(json.dumps(results))
    (tmp_path / "seed-7").mkdir()
    (tmp_path / "seed-7" / "results.json").write_text("{")
    (tmp_path / "seed-8").mkdir()
    no_seed = {"experiment": "e", "mode": "full", "settings": {"epochs": 3}}
    (tmp_path / "seed-8" / "results.json").write_text(json.dumps(no_seed))
    kept, left = find_repeats(_run(0), tmp_path)
    assert [r["settings"]["seed"] for r in kept] == [1, 3, 4]
    assert kept[0]["_dir"] == f"{tmp_path.name}/seed-10"
    why = dict(left)
    assert set(why) == {f"{tmp_path.name}/seed-{k}" for k in (5, 6, 7, 8)}
    assert why[f"{tmp_path.name}/seed-8"] == "no seed recorded"
    assert why[f"{tmp_path.name}/seed-5"] == "seed 0 already counted"
    assert why[f"{tmp_path.name}/seed-6"] == "mode 'quick', not 'full'"
    assert why[f"{tmp_path.name}/seed-7"].startswith("unreadable")
