"""--workers: the grid baselines trained over worker processes equal those trained in-process."""

import pytest
import torch

from trainer.experiments.common import RunSettings, evaluate, load_data
from trainer.experiments.grid import GridJob, train_grid

TINY = {"hidden": 32, "d": 8, "fixed_snr": 20.0}


def _grid(workers: int):
    settings = RunSettings(
        quick=True, epochs=1, train_subset=512, n_eval=500, draws=1, progress=False,
        workers=workers,
    )  # fmt: skip
    jobs = [GridJob(f"beta={b:g}", options={"fixed_beta": b, **TINY}) for b in (1e-4, 1e-2, 1.0)]
    return settings, train_grid(jobs, settings)


def test_two_workers_train_the_same_models_as_one(one_thread):
    settings, serial = _grid(workers=1)
    _, spread = _grid(workers=2)
    data = load_data("fashion-mnist")
    assert len(spread) == 3
    for (model_a, info_a), (model_b, info_b) in zip(serial, spread, strict=True):
        assert info_a["label"] == info_b["label"]  # job order is kept
        assert info_a["final_loss"] == info_b["final_loss"]
        state_a, state_b = model_a.state_dict(), model_b.state_dict()
        assert list(state_a) == list(state_b)
        assert all(torch.equal(state_a[name], state_b[name]) for name in state_a)
        beta = info_a["config"]["fixed_beta"]
        point_a = evaluate(model_a, data, settings, beta, 20.0)
        point_b = evaluate(model_b, data, settings, beta, 20.0)
        assert point_a["value"] == point_b["value"]
    # the three β differ, so equal results across processes are not one model thrice
    assert len({info["final_loss"] for _, info in serial}) == 3


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        RunSettings(workers=0)
