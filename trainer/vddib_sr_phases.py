"""VDDIB-SR trained in its authors' three phases (a named option of the multi-device experiment).

The authors of VDDIB-SR (QML-IB ref. [18]; their public code, MNIST two-view experiment) do not
train end to end: they (1) pretrain the feature extractor with a variational information
bottleneck (KL weight 1e-4) and one classifier, (2) train the per-round encoders and decoders
with the extractor frozen, (3) fine-tune everything with the KL added, 30 epochs each with SGD.
The experiment's VDDIB-SR (trainer/vddib_sr.py) is one end-to-end pass of the whole objective
at the experiment's budget, as every other method. Here the three phases map onto Table I's
networks, where one device layer holds extractor and per-round encoders (round t sends block t
of its outputs):

1. the devices (their quantizer prior included), the auxiliary classifiers and the last
   round's decoder, on VDDIB's objective with that decoder (rate and auxiliary terms
   weighted by β);
2. every round's decoder, the devices frozen: Σ_t E[−log q_t(y | z_1:K,1:t)];
3. everything, on the whole objective (``VddibSrModel.loss``).

Each phase is Algorithm 1's loop (trainer/qml_train.py ``train``: Adam, M = 128, noise-free as
the baseline trains) for the experiment's epochs, so the option trains three times as long as
the one-pass model it is compared with.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from shared.nn.vddib import VddibModel
from trainer.qml_train import Split, train
from trainer.vddib_sr import VddibSrModel

N_PHASES = 3
PHASE_SEED_STEP = 1000  # phase p trains from seed + p·PHASE_SEED_STEP (its own batch order)


class _Phase(nn.Module):
    """``model`` with the loss of one phase, for ``train``: the parameters left trainable are
    the phase's, the others are frozen (no gradient, so Adam leaves them)."""

    def __init__(self, model: VddibSrModel, loss: Callable, trainable: list[nn.Parameter]):
        super().__init__()
        self.model, self._loss = model, loss
        keep = {id(p) for p in trainable}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)

    @property
    def n_links(self) -> int:
        return self.model.n_links

    def forward(self, x: torch.Tensor, noise_var: float) -> dict:
        return self.model(x, noise_var)

    def loss(self, out: dict, y: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return self._loss(out, y, beta)


def _last_round_vib(model: VddibSrModel) -> Callable:
    """Phase 1: VDDIB's objective with the last round's decoder (every symbol received)."""
    return lambda out, y, beta: VddibModel.loss(
        model, out | {"outputs": out["round_outputs"][:, -1]}, y, beta
    )


def _every_round(out: dict, y: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Phase 2: the cross-entropy of every round's decoder."""
    logits = out["round_outputs"]
    return sum(F.cross_entropy(logits[:, t], y) for t in range(logits.shape[1]))


def phase(model: VddibSrModel, index: int) -> _Phase:
    """Phase ``index + 1`` of the three above as a module ``train`` takes: ``model`` with
    that phase's loss and only that phase's parameters trainable (from this call on)."""
    if index == 0:
        trainable = [*model.devices.parameters(), *model.aux.parameters(),
                     *model.server.decoders[-1].parameters()]  # fmt: skip
        if model.bits is not None:
            trainable.append(model.prior_logits)
        return _Phase(model, _last_round_vib(model), trainable)
    if index == 1:
        return _Phase(model, _every_round, list(model.server.parameters()))
    if index == 2:
        return _Phase(model, model.loss, list(model.parameters()))
    raise ValueError(f"VDDIB-SR trains in {N_PHASES} phases (0, 1, 2), got {index}")


def train_in_phases(model: VddibSrModel, data: Split, beta: float, psnr_db: float,
                    epochs: int, seed: int) -> dict:  # fmt: skip
    """Train ``model`` in the three phases above, ``epochs`` each; returns the summed wall and
    CPU seconds, the last phase's mean loss and each phase's record."""
    records = [train(phase(model, p), data, beta, psnr_db, epochs, seed + p * PHASE_SEED_STEP)
               for p in range(N_PHASES)]  # fmt: skip
    for param in model.parameters():
        param.requires_grad_(True)
    model.eval()
    return {
        "train_wall_s": sum(r["train_wall_s"] for r in records),
        "train_cpu_s": sum(r["train_cpu_s"] for r in records),
        "final_loss": records[-1]["final_loss"],
        "phases": records,
    }
