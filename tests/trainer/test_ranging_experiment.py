"""The ranging experiment's own arithmetic: the equal-rate MSE ratio, the rank test, the
trivial predictor (trainer.experiments.ranging_regression)."""

import numpy as np
import pytest

from trainer.dataset import Dataset
from trainer.experiments.ranging_regression import rate_mse_gap, spearman, trivial_mse


def test_rate_mse_gap_on_numbers_worked_by_hand():
    """Hyper at KL 10 / 40 nats has MSE 100 / 25: at the grid's KL 20, log-linear in KL,
    100·(1/4)^(1/3) = 62.996; the grid has 50 there, ratio 1.2599. The grid's KL 5 and 60
    lie outside the hyper model's range and are left out."""
    hyper = {"kl_nats": [40.0, 10.0], "values_sampled": [25.0, 100.0]}
    grid = {"kl_nats": [60.0, 20.0, 5.0], "values_sampled": [20.0, 50.0, 300.0]}
    gap = rate_mse_gap(hyper, grid)
    assert gap["at_grid_kl"] == [20.0]
    assert gap["max_ratio"] == pytest.approx(1.259921, rel=1e-5)
    assert gap["overlap_kl"] == [10.0, 40.0]
    assert gap["hyper_kl_range"] == [10.0, 40.0] and gap["grid_kl_range"] == [5.0, 60.0]


def test_rate_mse_gap_without_overlap_is_nan():
    hyper = {"kl_nats": [1.0, 2.0], "values_sampled": [10.0, 20.0]}
    grid = {"kl_nats": [50.0, 60.0], "values_sampled": [5.0, 4.0]}
    gap = rate_mse_gap(hyper, grid)
    assert gap["overlap_kl"] is None and np.isnan(gap["max_ratio"])


def test_spearman_rank_correlation():
    assert spearman([1e-5, 1e-3, 1.0], [10.0, 20.0, 400.0]) == pytest.approx(1.0)
    assert spearman([1e-5, 1e-3, 1.0], [400.0, 20.0, 10.0]) == pytest.approx(-1.0)
    # ranks (0, 1, 2, 3) against (0, 2, 1, 3): 1 - 6·2/(4·15) = 0.8
    assert spearman([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)


def test_trivial_mse_predicts_the_training_mean():
    """Training targets 1, 3 (mean 2); test targets 0, 2, 5: MSE (4 + 0 + 9)/3 = 13/3."""
    x = np.zeros((3, 2, 4), np.float32)
    data = Dataset(
        name="t", task="regression", x_train=x[:2], y_train=np.array([1.0, 3.0], np.float32),
        x_test=x, y_test=np.array([0.0, 2.0, 5.0], np.float32), input_shape=(2, 4),
        mean=(0.0,), std=(1.0,), target_mean=2.0, target_std=1.0,
    )  # fmt: skip
    assert trivial_mse(data, None) == pytest.approx(13 / 3)
    assert trivial_mse(data, 2) == pytest.approx(2.0)  # the first two: (4 + 0)/2
