"""The loss-weight-scan experiment: Hyper-VIB's loss weight chosen on held-out images."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trainer.dataset import Dataset
from trainer.experiments import loss_weight_scan as scan
from trainer.experiments.common import RunSettings
from trainer.experiments.held_out import split


def _data(n_train=10, n_test=4):
    return Dataset(
        name="toy", task="classification",
        x_train=np.arange(n_train, dtype=np.float32).reshape(n_train, 1),
        y_train=np.arange(n_train) % 2,
        x_test=-np.arange(1, n_test + 1, dtype=np.float32).reshape(n_test, 1),
        y_test=np.zeros(n_test, dtype=int),
        input_shape=(1,), mean=(0.0,), std=(1.0,), class_names=("a", "b"),
    )  # fmt: skip


def test_split_holds_out_the_last_training_images_and_leaves_the_test_set_alone():
    data = _data()
    train, validation = split(data, 3)
    assert train.x_train[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert validation.x_test[:, 0].tolist() == [7, 8, 9]
    assert validation.y_test.tolist() == [1, 0, 1]
    assert validation.x_train is train.x_train  # the validation view trains on nothing else
    assert data.x_test[:, 0].tolist() == [-1, -2, -3, -4] and len(data.x_train) == 10
    for bad in (0, 10, -1):
        with pytest.raises(ValueError, match="held_out"):
            split(data, bad)


def _curve(kl, sampled, best):
    return {"kl_nats": kl, "values_sampled": sampled, "best_value": best}


def test_scores_by_hand():
    """The grid at 5 / 20 / 40 nats; the hyper curve from 0.80 at 10 nats to 0.90 at 30 reads
    0.85 at 20 nats, 2 points under the grid's 0.87 there; best 0.895 against 0.90: 0.5
    points. Over their targets 2 / 0.5 = 4 and 0.5 / 0.2 = 2.5: the worse is 4."""
    grid = _curve([5.0, 20.0, 40.0], [0.70, 0.87, 0.95], 0.90)
    hyper = _curve([30.0, 10.0], [0.90, 0.80], 0.895)
    s = scan.scores(hyper, grid)
    assert s["shortfall_points"] == pytest.approx(2.0)
    assert s["best_gap_points"] == pytest.approx(0.5)
    assert s["worse_over_target"] == pytest.approx(4.0)
    assert s["hyper_kl_range"] == [10.0, 30.0]
    # no grid rate inside the hyper model's range: nothing to compare, never the choice
    apart = scan.scores(_curve([50.0, 60.0], [0.9, 0.9], 0.9), grid)
    assert math.isnan(apart["shortfall_points"]) and apart["worse_over_target"] == math.inf


def test_choose_takes_the_smallest_worse_figure_over_its_target():
    found = {
        "1/d": {"worse_over_target": 9.7},  # best accuracy fine, low rates far below
        "1": {"worse_over_target": 1.9},
        "none": {"worse_over_target": 2.25},
        "apart": {"worse_over_target": math.inf},
    }
    assert scan.choose(found) == "1"
    assert scan.choose({**found, "0.3": {"worse_over_target": 0.8}}) == "0.3"


def _scores(shortfall, best_gap, worse, kl=(4.0, 120.0)):
    return {"shortfall_points": shortfall, "best_gap_points": best_gap,
            "hyper_kl_range": list(kl), "worse_over_target": worse}  # fmt: skip


def test_checks_read_the_chosen_weights_test_figures():
    results = {
        "chosen": "1",
        "scores": {
            "1/d": {"validation": _scores(4.9, 0.0, 9.8), "test": _scores(4.5, 0.1, 9.0)},
            "1": {
                "validation": _scores(0.6, 0.4, 2.0),
                "test": _scores(0.3, 0.15, 0.75, (2.4, 20.0)),
            },
        },
    }
    by_name = {c.figure.split(":")[0]: c for c in scan.checks(results)}
    held_out = by_name["held-out images"]
    assert held_out.value == 2.0 and not held_out.met  # the smaller held-out figure
    shortfall, best, lowest, highest = (
        c for c in scan.checks(results) if c.figure.startswith("test, the chosen weight:")
    )
    assert shortfall.value == 0.3 and shortfall.met
    assert best.value == 0.15 and best.met
    assert lowest.value == 2.4 and lowest.met
    assert highest.value == 20.0 and not highest.met  # the 100 nats
    holds = by_name["the chosen weight"]
    assert holds.value == pytest.approx(-0.3) and holds.met


def test_quick_run_scores_both_views_and_chooses_a_scanned_weight(tmp_path, one_thread):
    settings = RunSettings(quick=True, epochs=1, train_subset=2000, n_eval=500, draws=1,
                           progress=False)  # fmt: skip
    results = scan.run(settings, tmp_path)
    # what the models saw: the first 2,000 of the 58,000 kept, each view's first 500 scored
    assert results["split"] == {"train": 2_000, "held_out": 2_000, "validation": 500, "test": 500}
    assert set(results["hypers"]) == set(scan.QUICK_WEIGHTS)
    assert results["chosen"] in scan.QUICK_WEIGHTS
    for entry in (results["grid"], *results["hypers"].values()):
        # the held-out images are other images: the two views' accuracies differ
        assert entry["validation"]["values"] != entry["test"]["values"]
        # the grid and the knee weights at the grid's β; fast gates at its own, from 1e-7
        assert len(entry["test"]["kl_nats"]) == len(entry.get("betas", results["betas"]))
    fast = results["hypers"][scan.FAST_GATES]
    assert fast["model_options"] == {"beta_gate_scale": 10.0}
    assert min(fast["betas"]) == pytest.approx(1e-7) and max(fast["betas"]) == 1.0
    assert {p: (tmp_path / p).is_file() for p in results["plots"]} == {
        "frontier.png": True, "rate_accuracy_test.png": True}  # fmt: skip
    json.dumps(results)  # JSON-ready, as run_experiment writes it
    assert len(scan.checks(results)) == 6
