"""The epoch loop every training here shares, and the files a training run leaves.

:func:`run_epochs` drives the joint training (trainer/train.py, Hyper-VIB Alg. 1) and the
entropy-coded fine-tune (trainer/entropy_finetune.py): minibatches in an order the caller
draws, a step the caller defines, per-epoch means of what the step sums (loss, distortion,
KL or rate in bits, train accuracy), a progress bar and one line per epoch.
:func:`save_run` writes ``checkpoint.pt`` and ``train_log.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm


def batch_sums(task: str, outputs: torch.Tensor, y: torch.Tensor, **means) -> dict:
    """One minibatch's contribution to its epoch's totals: each mean (a scalar tensor or a
    float) times the batch size, ``n``, and for a classifier the number it got right."""
    n = len(y)
    sums = {key: _number(value) * n for key, value in means.items()}
    sums["n"] = n
    if task == "classification":
        sums["correct"] = (outputs.argmax(1) == y).sum().item()
    return sums


def _number(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


def run_epochs(
    epochs: int,
    steps: int,
    batch_size: int,
    order: Callable[[int], torch.Tensor],
    step: Callable[[torch.Tensor, int], dict],
    *,
    label: str = "epoch",
    progress: bool = True,
    reduce: Callable[[dict], dict] = lambda totals: totals,
) -> list[dict]:
    """The epoch loop of every training here (the joint training and the entropy fine-tune).

    Each epoch takes the example indices ``order(epoch)`` (which also puts the model in its
    training mode) in ``steps`` minibatches of ``batch_size``; ``step(indices, global_step)``
    trains on one and returns its :func:`batch_sums`. ``reduce`` combines an epoch's totals
    across processes (``distributed.sum_over_ranks``). Returns one record per epoch: the mean
    of each summed quantity, ``train_accuracy`` for a classifier and the wall time so far."""
    records = []
    start = time.perf_counter()
    for epoch in range(epochs):
        indices = order(epoch)
        totals: dict = {}
        bar = tqdm(
            range(steps),
            desc=f"{label} {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
            mininterval=1.0,
        )
        for index in bar:
            sums = step(
                indices[index * batch_size : (index + 1) * batch_size], epoch * steps + index
            )
            for key, value in sums.items():
                totals[key] = totals.get(key, 0) + value
            if index % 50 == 0:
                bar.set_postfix(loss=f"{totals['loss'] / totals['n']:.3f}")
        totals = reduce(totals)
        record = {"epoch": epoch + 1}
        record.update({k: v / totals["n"] for k, v in totals.items() if k not in ("n", "correct")})
        record["wall_s"] = time.perf_counter() - start
        if "correct" in totals:
            record["train_accuracy"] = totals["correct"] / totals["n"]
        records.append(record)
        if progress:
            shown = " ".join(
                f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "wall_s")
            )
            print(f"{label} {epoch + 1}/{epochs}: {shown} ({record['wall_s']:.0f} s)", flush=True)
    return records


def save_run(model: torch.nn.Module, log: dict, out_dir: str | Path) -> Path:
    """``checkpoint.pt`` (the model's config and weights) and ``train_log.json`` in
    ``out_dir``, the folder every loader of the zoo reads."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"config": model.config.to_dict(), "state_dict": model.state_dict()},
        out_dir / "checkpoint.pt",
    )
    (out_dir / "train_log.json").write_text(json.dumps(log, indent=2, default=str))
    return out_dir
