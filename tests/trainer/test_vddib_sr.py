"""VDDIB-SR (trainer/vddib_sr.py): the selective-retransmission stopping rule on hand-made
confidences, its symbol count, the threshold that meets a budget, and a tiny end-to-end run."""

from __future__ import annotations

import pytest
import torch

from trainer.qml_runs import Point, score_point
from trainer.qml_train import Split, train
from trainer.selective_retransmission import (
    mean_sent,
    rounds_used,
    symbols_sent,
    threshold_for_budget,
)
from trainer.vddib_sr import VddibSrModel, round_dims_for_budget

TWO_ROUNDS = [24, 48]  # K = 2 devices sending 12 then 24 symbols each


def test_stops_when_the_threshold_is_met_and_retransmits_otherwise():
    confidence = torch.tensor([[0.95, 0.50], [0.50, 0.99], [0.90, 0.30]])
    rounds = rounds_used(confidence, threshold=0.9)
    assert rounds.tolist() == [1, 2, 2]  # 0.90 is not above 0.9: the rule is strict
    assert symbols_sent(rounds, TWO_ROUNDS).tolist() == [24.0, 72.0, 72.0]
    assert mean_sent(confidence, 0.9, TWO_ROUNDS) == pytest.approx(56.0)


def test_three_rounds_stop_at_the_first_confident_one_and_the_last_always_decides():
    confidence = torch.tensor([[0.2, 0.95, 0.1], [0.2, 0.3, 0.1], [0.99, 0.0, 0.0]])
    rounds = rounds_used(confidence, threshold=0.9)
    assert rounds.tolist() == [2, 3, 1]
    assert symbols_sent(rounds, [4, 8, 16]).tolist() == [12.0, 28.0, 4.0]


def test_threshold_zero_sends_one_round_and_one_sends_every_round():
    confidence = torch.rand(50, 3) * 0.9 + 0.05
    assert rounds_used(confidence, 0.0).eq(1).all()
    assert rounds_used(confidence, 1.0).eq(3).all()


def test_more_rounds_never_send_fewer_symbols():
    """A higher threshold can only add rounds, and every added round adds symbols."""
    torch.manual_seed(0)
    confidence = torch.rand(200, 3)
    blocks = [6, 12, 24]
    counts = symbols_sent(torch.tensor([1, 2, 3]), blocks)
    assert (counts.diff() > 0).all()
    before = symbols_sent(rounds_used(confidence, 0.0), blocks)
    for threshold in torch.linspace(0, 1, 21).tolist():
        now = symbols_sent(rounds_used(confidence, threshold), blocks)
        assert (now >= before).all()
        before = now


def test_the_budget_threshold_spends_the_budget_and_no_more():
    confidence = torch.stack([torch.linspace(0.1, 1.0, 100), torch.ones(100)], dim=1)
    threshold = threshold_for_budget(confidence, TWO_ROUNDS, budget=48.0)
    assert mean_sent(confidence, threshold, TWO_ROUNDS) <= 48.0
    assert threshold == pytest.approx(float(confidence[49, 0]))  # the 50 least confident
    above = float(confidence[50, 0])  # the next candidate no longer fits
    assert mean_sent(confidence, above, TWO_ROUNDS) > 48.0
    assert threshold_for_budget(confidence, TWO_ROUNDS, budget=10.0) == 0.0  # under round 1
    assert threshold_for_budget(confidence, TWO_ROUNDS, budget=72.0) == 1.0  # every round


def test_budgets_split_into_two_rounds_per_device():
    assert round_dims_for_budget(48, 2) == (12, 24)
    assert round_dims_for_budget(16, 2) == (4, 8)
    assert round_dims_for_budget(48, 4) == (6, 12)
    with pytest.raises(ValueError, match="two rounds"):
        Point("vddib-sr", 4, k=2, total=18)


@pytest.mark.parametrize("bits", [4, None])
def test_the_model_decides_with_the_round_that_stopped(bits):
    torch.manual_seed(0)
    model = VddibSrModel(2, (2, 4), bits).eval()
    x = torch.rand(64, 1, 28, 28)
    with torch.no_grad():
        out = model(x, 0.1)
        assert out["round_outputs"].shape == (64, 2, 10)
        assert torch.equal(out["outputs"], out["round_outputs"][:, -1])  # threshold 1: all
        assert out["sent"].eq(2 * (2 + 4)).all()
        model.threshold = 0.0
        out = model(x, 0.1)
    assert torch.equal(out["outputs"], out["round_outputs"][:, 0])
    assert out["sent"].eq(2 * 2).all()
    model.train()
    loss = model.loss(model(x, 0.1), torch.randint(0, 10, (64,)), torch.full((2,), 1e-3))
    loss.backward()
    assert all(d.net[0].weight.grad is not None for d in model.server.decoders)


@pytest.fixture(scope="module")
def tiny_split() -> Split:
    """600 training, 300 held-out and 300 test Fashion-MNIST images."""
    from trainer.data import load_dataset

    data = load_dataset("fashion-mnist")
    t = torch.from_numpy
    return Split(t(data.x_train[:600]), t(data.y_train[:600]), t(data.x_train[-300:]),
                 t(data.y_train[-300:]), t(data.x_test[:300]), t(data.y_test[:300]))  # fmt: skip


def test_a_tiny_end_to_end_run_meets_its_budget(tiny_split, one_thread):
    point = Point("vddib-sr", 4, k=2, total=16)
    model = point.build()
    train(model, tiny_split, 1e-3, 10.0, epochs=2, seed=0)
    scored = score_point(point, model, tiny_split, 10.0, draws=2, seed=0)
    assert 0.0 < model.threshold <= 1.0
    assert 8.0 <= scored["sent"] <= 24.0  # between round 1 only and both rounds
    assert scored["sent"] == pytest.approx(16.0, rel=0.2)  # set on other images: near 16
    assert scored["error"] < 0.6  # learnt something in 10 batches (chance is 0.9)
    plain = score_point(Point("vddib", 4, total=16), Point("vddib", 4, total=16).build(),
                        tiny_split, 10.0, draws=1, seed=0)  # fmt: skip
    assert plain["sent"] is None


def test_a_point_builds_the_same_initial_weights_for_a_seed():
    """A multi-device run is the same from one process to the next: a point's untrained model
    depends on its seed only, not on what drew from torch's global generator before."""
    point = Point("ours", 4, k=2, total=16)
    first = point.build(3).state_dict()
    torch.rand(1000)  # other draws in between change nothing
    again = point.build(3).state_dict()
    other = point.build(4).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)
