"""Train a grid of independent baseline models (one per β, one per SNR), in this process or
spread over ``settings.workers`` processes (``--workers N``).

Each model is seeded by its own config (trainer.train reseeds at the start of every run), so a
model comes out the same whichever process trains it, as long as the torch thread count is
the same: every worker uses this process's ``torch.get_num_threads()`` (the experiment's
``--threads``, 1 by default). Workers are spawned, each warms up once (see
common.warm_up) and sends its models back as checkpoint bytes; evaluation stays here.
"""

from __future__ import annotations

import io
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import torch

from trainer.experiments.common import RunSettings, load_data, train_one, warm_up

DEFAULT_TASK = "fashion-mnist"  # TrainConfig's default task


@dataclass(frozen=True)
class GridJob:
    """One model of a grid: train_one's label, progress step, epochs and TrainConfig options."""

    label: str
    step: str = ""
    epochs: int | None = None
    options: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.options.get("task", DEFAULT_TASK)


def train_grid(jobs: list[GridJob], settings: RunSettings) -> list[tuple]:
    """(model, info) per job, in job order, as common.train_one returns them."""
    start = time.perf_counter()
    if settings.workers == 1 or len(jobs) <= 1:
        trained = [_train(job, settings) for job in jobs]
    else:
        trained = _train_in_workers(jobs, settings)
    print(
        f"grid: {len(jobs)} models in {time.perf_counter() - start:.1f} s elapsed "
        f"({settings.workers} worker(s))",
        flush=True,
    )
    return trained


def _train_in_workers(jobs: list[GridJob], settings: RunSettings) -> list[tuple]:
    threads = torch.get_num_threads()
    print(f"training {len(jobs)} models over {settings.workers} worker processes", flush=True)
    with ProcessPoolExecutor(
        max_workers=min(settings.workers, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=torch.set_num_threads,
        initargs=(threads,),
    ) as pool:
        done = list(pool.map(_train_in_worker, jobs, [settings] * len(jobs)))
    return [(_model_from_bytes(blob), info) for blob, info in done]


def _train(job: GridJob, settings: RunSettings):
    data = load_data(job.task, settings.data_dir, settings.seed)
    return train_one(job.label, settings, data, job.step, job.epochs, **job.options)


_warmed_up = False  # per worker process


def _train_in_worker(job: GridJob, settings: RunSettings) -> tuple[bytes, dict]:
    global _warmed_up
    if not _warmed_up:
        warm_up(settings, load_data(job.task, settings.data_dir, settings.seed), **job.options)
        _warmed_up = True
    model, info = _train(job, settings)
    buffer = io.BytesIO()
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict()}, buffer)
    return buffer.getvalue(), info


def _model_from_bytes(blob: bytes):
    from shared.nn.model import CoInferenceModel, ModelConfig

    ckpt = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    model = CoInferenceModel(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
