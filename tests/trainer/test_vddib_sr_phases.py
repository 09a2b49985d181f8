"""VDDIB-SR trained in its authors' three phases (trainer/vddib_sr_phases.py): each phase moves
only its own parameters, and the three together give a model as reproducible as one pass."""

from __future__ import annotations

import pytest
import torch

from trainer.qml_runs import Point
from trainer.qml_train import Split, train
from trainer.vddib_sr_phases import N_PHASES, phase, train_in_phases

POINT = Point("vddib-sr", 4, total=8)  # K = 2: rounds of 2 and 4 symbols per device


def _tiny_split(n: int = 256) -> Split:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(n, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    return Split(x, y, x[:64], y[:64], x[:64], y[:64])


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _moved(before: list[torch.Tensor], module: torch.nn.Module) -> list[bool]:
    return [not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True)]


def test_each_phase_trains_only_its_own_parameters():
    data, model = _tiny_split(), POINT.build(0)
    devices, first, last = model.devices, model.server.decoders[0], model.server.decoders[-1]
    parts = {"devices": devices, "aux": model.aux, "first decoder": first, "last decoder": last}
    before = {name: _snapshot(m) for name, m in parts.items()}
    prior = model.prior_logits.detach().clone()
    train(phase(model, 0), data, 1e-3, 10.0, 1, 0)  # VIB with the last round's decoder
    assert all(_moved(before["devices"], devices)) and all(_moved(before["last decoder"], last))
    assert not any(_moved(before["first decoder"], first))  # not in phase 1's loss
    assert not torch.equal(prior, model.prior_logits)
    before = {name: _snapshot(m) for name, m in parts.items()}
    prior = model.prior_logits.detach().clone()
    train(phase(model, 1), data, 1e-3, 10.0, 1, 0)  # every round's decoder, devices frozen
    assert not any(_moved(before["devices"], devices)) and not any(_moved(before["aux"], model.aux))
    assert torch.equal(prior, model.prior_logits)
    assert all(_moved(before["first decoder"], first)) and all(_moved(before["last decoder"], last))
    before = _snapshot(model)
    train(phase(model, 2), data, 1e-3, 10.0, 1, 0)  # everything
    assert all(_moved(before, model))
    with pytest.raises(ValueError, match="3 phases"):
        phase(model, N_PHASES)


def test_three_phases_repeat_and_leave_a_whole_trainable_model():
    data = _tiny_split()
    a, b = POINT.build(0), POINT.build(0)
    info = train_in_phases(a, data, 1e-3, 10.0, 1, 0)
    train_in_phases(b, data, 1e-3, 10.0, 1, 0)
    assert len(info["phases"]) == N_PHASES
    assert info["train_wall_s"] == pytest.approx(sum(r["train_wall_s"] for r in info["phases"]))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert all(p.requires_grad for p in a.parameters()) and not a.training
    one_pass = POINT.build(0)
    train(one_pass, data, 1e-3, 10.0, 1, 0)
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), one_pass.parameters(),
                                                     strict=True))  # fmt: skip
