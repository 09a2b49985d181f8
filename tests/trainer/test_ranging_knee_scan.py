"""The ranging-knee-scan experiment: the ranging hyper models' knee chosen on held-out examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.dataset import Dataset
from trainer.experiments import ranging_knee_scan as scan
from trainer.experiments.common import RunSettings


def _regression(n_train=8, n_test=3):
    return Dataset(
        name="toy", task="regression",
        x_train=np.zeros((n_train, 1), dtype=np.float32),
        y_train=np.array([1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 100.0, 200.0][:n_train]),
        x_test=np.ones((n_test, 1), dtype=np.float32), y_test=np.array([5.0, 6.0, 7.0]),
        input_shape=(1,), mean=(0.0,), std=(1.0,), target_mean=38.9, target_std=68.0,
    )  # fmt: skip


def test_the_target_is_normalised_with_the_training_part_only():
    """Holding out the last two (100 and 200 ns) leaves 1, 3, 1, 3, 1, 3: mean 2, spread 1;
    the full set's 38.9 / 68.0 would leak the held-out delays into the normalisation."""
    train, validation = scan.split_regression(_regression(), 2)
    assert train.y_train.tolist() == [1, 3, 1, 3, 1, 3]
    assert validation.y_test.tolist() == [100, 200]
    for part in (train, validation):
        assert part.target_mean == pytest.approx(2.0) and part.target_std == pytest.approx(1.0)


def _curve(kl, sampled, best):
    return {"kl_nats": kl, "values_sampled": sampled, "best_value": best}


def test_figures_over_their_targets_by_hand():
    """KL 50 → 5 nats: 0.1 / 0.2 = 0.5. MSE 10, 12, 11, 30 over rising β: ranks 0 2 1 3,
    ρ = 0.8, (1 − 0.8) / 0.1 = 2. Best 10 against the grid's 9.5: 1.0526 / 1.10 = 0.957.
    Against the trivial 40: 0.25 / 0.5 = 0.5. The worst: 2 (the MSE does not rise cleanly)."""
    hyper = _curve([50.0, 30.0, 12.0, 5.0], [10.0, 12.0, 11.0, 30.0], 10.0)
    grid = _curve([90.0, 40.0, 10.0, 1.0], [9.0, 10.0, 15.0, 40.0], 9.5)
    s = scan.over_targets(hyper, grid, [1e-5, 1e-3, 1e-1, 1.0], 40.0)
    assert s["kl_ratio"] == pytest.approx(0.5)
    assert s["mse_rising"] == pytest.approx(2.0)
    assert s["best_over_grid"] == pytest.approx(10.0 / 9.5 / 1.1)
    assert s["best_over_trivial"] == pytest.approx(0.5)
    assert s["worst"] == pytest.approx(2.0)


def test_choose_takes_the_smallest_worst_figure():
    found = {"3e-5": {"worst": 3.1}, "3e-4": {"worst": 0.9}, "1/d": {"worst": 1.4}}
    assert scan.choose(found) == "3e-4"
    assert scan.choose({**found, "1e-3": {"worst": 0.4}}) == "1e-3"


def _profile(chosen="1e-3", headline_worst=1.6, best_worst=0.7):
    grid = {**_curve([90.0, 10.0, 1.0], [9.0, 15.0, 40.0], 9.0), "values": [9.0, 15.0, 40.0]}
    test = _curve([40.0, 20.0, 4.0], [10.0, 12.0, 30.0], 9.5)
    return {
        "betas": [1e-5, 1e-2, 1.0],
        "grid": {"validation": grid, "test": grid},
        "trivial_mse": {"validation": 30.0, "test": 30.0},
        "hypers": {chosen: {"test": test}},
        "scores": {"3e-4": {"validation": {"worst": headline_worst}},
                   chosen: {"validation": {"worst": best_worst}}},
        "chosen": chosen,
    }  # fmt: skip


def test_checks_read_the_held_out_choice_and_the_chosen_knees_test_figures():
    checks = {c.figure: c for c in scan.checks({"profiles": {"wifi": _profile()}})}
    assert checks["wifi, held-out: the best knee's worst figure over its target"].value == 0.7
    headline = checks["wifi, held-out: knee 3e-4 (ranging-regression's) worst figure over its "
                      "target"]  # fmt: skip
    assert headline.value == 1.6 and not headline.met
    # ranging-regression's four checks, on the chosen knee's test curve
    rate = checks["wifi, chosen knee: KL at β=1 / KL at β=1e-05"]
    assert rate.value == pytest.approx(0.1) and rate.met
    best = checks["wifi, chosen knee: best MSE / grid best MSE (μ sent)"]
    assert best.value == pytest.approx(9.5 / 9.0) and best.met
    assert checks["wifi, chosen knee: best MSE / trivial predictor's MSE"].value == pytest.approx(
        9.5 / 30.0
    )
    assert len(checks) == 6


def test_quick_run_scores_both_views_and_chooses_a_scanned_knee(tmp_path, one_thread):
    settings = RunSettings(quick=True, epochs=1, train_subset=800, n_eval=300, draws=1,
                           progress=False)  # fmt: skip
    results = scan.run(settings, tmp_path)
    assert results["settings"]["train_subset"] == 800
    for profile in ("bluetooth", "wifi"):
        result = results["profiles"][profile]
        # the models train on the first 800 of the 19,400 left after the held-out 600
        assert result["split"] == {"train": 800, "validation": 600, "test": 5_000}
        assert set(result["hypers"]) == set(scan.QUICK_KNEES)
        assert result["chosen"] in scan.QUICK_KNEES
        # the fast-gates candidate: ranging-regression's knee weight, β modules ×10
        fast = result["hypers"][scan.FAST_GATES]
        assert fast["options"] == {"loss_weight": "knee", "weight_knee": 3e-4}
        assert fast["model_options"] == {"beta_gate_scale": 10.0}
        assert fast["betas"] == result["betas"]
        assert set(result["scores"][scan.FAST_GATES]) == {"validation", "test"}
        for entry in (result["grid"], *result["hypers"].values()):
            # the held-out examples are other examples: the views' MSEs differ
            assert entry["validation"]["values"] != entry["test"]["values"]
            assert len(entry["test"]["kl_nats"]) == len(result["betas"])
    assert all((tmp_path / p).is_file() for p in results["plots"]) and len(results["plots"]) == 2
    json.dumps(results)  # JSON-ready, as run_experiment writes it
    assert len(scan.checks(results)) == 12
