"""Data-parallel training over ranks with torch.distributed.

``torchrun --nproc-per-node N -m trainer train ...`` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK set; :func:`init_from_env` joins them into one process group (gloo
on CPU, nccl on CUDA) and :func:`trainer.train.train` then wraps the model in
DistributedDataParallel. Without those variables (plain ``python -m trainer train``) nothing
here changes the single-process run: rank 0 of a world of 1 keeps the run's seed, its one
generator and its batch order.

Conventions: ``batch_size`` is the global batch (each rank takes ``batch_size / N``), so N
ranks take the same number of optimiser steps per epoch as one process; each epoch is one
permutation of the training set shared by all ranks (seeded by seed + epoch, as
torch.utils.data.DistributedSampler does), padded to a multiple of N and dealt out
round-robin, so the ranks' shards are disjoint and change every epoch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank among ``world_size`` training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: one process, no process group

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, evaluates and writes the artifacts."""
        return self.rank == 0


def backend_for(device: str) -> str:
    """nccl for CUDA tensors, gloo for CPU ones."""
    return "nccl" if device == "cuda" else "gloo"


def init_from_env(device: str = "auto") -> Ranks:
    """Join the process group torchrun describes in the environment; one process otherwise.

    ``device`` is the --device option ("auto" | "cpu" | "cuda"); under nccl each rank uses
    the GPU with its LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks()
    from shared.nn.accelerator import pick_device

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = backend_for(pick_device(device))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return current()


def current() -> Ranks:
    """The process group this process has joined, or one process."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    return Ranks(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=dist.get_backend(),
    )


def shutdown() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s RNGs (noise, β and SNR draws): the run's seed on rank 0, so one
    process is unchanged; distinct, reproducible seeds on the others."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def batch_per_rank(batch_size: int, ranks: Ranks) -> int:
    """Each rank's share of the global batch; it must divide evenly."""
    if batch_size % ranks.world_size:
        raise ValueError(
            f"batch_size {batch_size} must be a multiple of the world size {ranks.world_size}"
        )
    return batch_size // ranks.world_size


def shard_size(n: int, ranks: Ranks) -> int:
    """Examples per rank per epoch (the set is padded up to a multiple of world_size)."""
    return math.ceil(n / ranks.world_size)


def epoch_indices(
    n: int, epoch: int, seed: int, ranks: Ranks, generator: torch.Generator
) -> torch.Tensor:
    """This rank's training indices for ``epoch``, in the order it trains on them.

    One process: a permutation drawn from ``generator`` (the run's own, as before
    distributed training existed). Several: one permutation of range(n) seeded by
    seed + epoch, identical on every rank, padded by wrapping around to a multiple of
    world_size and dealt round-robin.
    """
    if ranks.world_size == 1:
        return torch.randperm(n, generator=generator)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    padded = shard_size(n, ranks) * ranks.world_size
    if padded > n:
        order = torch.cat([order, order[: padded - n]])
    return order[ranks.rank :: ranks.world_size]


def wrap(model: torch.nn.Module, ranks: Ranks, device: str) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` (rank 0's weights are broadcast to all ranks
    at construction); the model itself for one process."""
    if ranks.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [torch.cuda.current_device()] if device == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def sum_over_ranks(totals: dict[str, float]) -> dict[str, float]:
    """Each entry summed over all ranks (the epoch's metrics cover every shard); unchanged
    for one process. Values travel as float64."""
    ranks = current()
    if ranks.world_size == 1:
        return totals
    device = "cuda" if ranks.backend == "nccl" else "cpu"
    values = torch.tensor(list(totals.values()), dtype=torch.float64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return dict(zip(totals, values.tolist(), strict=True))
