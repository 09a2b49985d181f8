"""Distributed training: shards, per-rank seeds, DDP replicas, torchrun end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer import distributed
from trainer.distributed import Ranks, batch_per_rank, epoch_indices, rank_seed
from trainer.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]
# a reduced quick model, to keep the test short (the full quick model took 1 to 10 minutes on
# the shared 2-core machine): quick settings and 4-bit quantizer, first 12,000 images, 3 epochs
REDUCED_QUICK = ["--quick", "--bits", "4", "--train-subset", "12000", "--epochs", "3"]


def test_shards_are_disjoint_and_cover_every_example():
    for world_size in (2, 3):
        shards = [
            epoch_indices(10, 0, 0, Ranks(rank=r, world_size=world_size), torch.Generator())
            for r in range(world_size)
        ]
        assert {len(s) for s in shards} == {-(-10 // world_size)}  # equal steps on every rank
        seen = torch.cat(shards)
        assert set(seen.tolist()) == set(range(10))
        assert len(seen) - len(set(seen.tolist())) == len(seen) - 10  # only the padding repeats


def test_shards_reshuffle_each_epoch_and_repeat_under_a_seed():
    ranks = Ranks(rank=1, world_size=2)
    first = epoch_indices(100, 0, 7, ranks, torch.Generator())
    assert torch.equal(first, epoch_indices(100, 0, 7, ranks, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, epoch_indices(100, 1, 7, ranks, torch.Generator()))
    assert not torch.equal(first, epoch_indices(100, 0, 8, ranks, torch.Generator()))


def test_one_process_draws_its_order_from_the_run_generator():
    order = epoch_indices(50, 3, 0, Ranks(), torch.Generator().manual_seed(5))
    assert torch.equal(order, torch.randperm(50, generator=torch.Generator().manual_seed(5)))


def test_rank_seeds_differ_and_rank_zero_keeps_the_run_seed():
    seeds = [rank_seed(0, rank) for rank in range(4)]
    assert seeds[0] == 0 and len(set(seeds)) == 4
    assert seeds == [rank_seed(0, rank) for rank in range(4)]
    assert rank_seed(1, 0) not in seeds[1:]  # seed 1 is no other run's rank 1
    draws = [torch.rand(3, generator=torch.Generator().manual_seed(s)) for s in seeds[:2]]
    assert not torch.equal(*draws)


def test_global_batch_must_split_evenly():
    assert batch_per_rank(128, Ranks(world_size=2)) == 64
    with pytest.raises(ValueError, match="multiple"):
        batch_per_rank(128, Ranks(world_size=3))


# Final-epoch metrics of one process for a fixed seed, as trainer.train gave them before the
# distributed change: one process must keep its RNG streams and batch order.
BEFORE_DISTRIBUTED = {
    None: {"loss": 1.764192819595337, "kl": 65.42486667633057, "train_accuracy": 0.2578125},
    4: {"loss": 2.527954339981079, "kl": 196.23414611816406, "train_accuracy": 0.220703125},
}


@pytest.mark.parametrize("bits", [None, 4])
def test_single_process_training_is_unchanged(bits):
    from trainer.experiments.common import load_data

    cfg = TrainConfig.from_options(
        epochs=2, train_subset=1024, batch_size=256, hidden=64, progress=False, bits=bits
    )
    _, log = train(cfg, load_data("fashion-mnist"))
    assert log["world_size"] == 1 and log["distributed"]["backend"] is None
    assert log["train_cpu_s_all_ranks"] == log["train_cpu_s"]
    last = log["epochs"][-1]
    for key, value in BEFORE_DISTRIBUTED[bits].items():
        assert last[key] == pytest.approx(value, rel=1e-6), key


def _train_rank(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """One rank of an in-process gloo group (torch.multiprocessing.spawn's target)."""
    import torch.distributed as dist

    from trainer.experiments.common import load_data

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)  # fmt: skip
    try:
        cfg = TrainConfig.from_options(
            epochs=1, train_subset=1000, batch_size=64, hidden=32, d=8, progress=False
        )
        model, log = train(cfg, load_data("fashion-mnist"))
        torch.save({"state_dict": model.state_dict(), "log": log}, Path(out_dir) / f"{rank}.pt")
    finally:
        distributed.shutdown()


def test_ddp_replicas_stay_identical_and_share_the_epoch_metrics(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_train_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=False) for r in range(2)]
    states = [r["state_dict"] for r in ranks]
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])
    logs = [r["log"] for r in ranks]
    assert logs[0]["world_size"] == 2 and logs[0]["distributed"]["batch_size_per_rank"] == 32
    assert logs[0]["epochs"][0]["loss"] == logs[1]["epochs"][0]["loss"]
    # 1000 examples: 500 per rank, summed over both
    assert logs[0]["train_cpu_s_all_ranks"] > logs[0]["train_cpu_s"]


def _cli(launcher: list[str], out: Path) -> subprocess.CompletedProcess:
    cmd = [*launcher, "-m", "trainer", "train", *REDUCED_QUICK, "--no-progress", "--out", str(out)]
    # the fault handler prints the Python stack (or "no Python frame") if a rank aborts;
    # TMPDIR under the test's folder: torchrun leaves a torchelastic_* folder in it per run
    scratch = out.parent / f"{out.name}-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "PYTHONFAULTHANDLER": "1", "TMPDIR": str(scratch)}  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_two_gloo_processes_reach_the_single_process_accuracy(tmp_path):
    from shared.nn.zoo import load_model
    from trainer.evaluate import evaluate_point
    from trainer.experiments.common import load_data

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    _cli([*torchrun, "--nproc-per-node", "2"], tmp_path / "two")
    _cli([sys.executable], tmp_path / "one")
    data = load_data("fashion-mnist")
    accuracy = {}
    for name in ("one", "two"):
        log = json.loads((tmp_path / name / "train_log.json").read_text())
        assert log["world_size"] == {"one": 1, "two": 2}[name]
        assert (tmp_path / name / "manifest.json").is_file()
        model = load_model(tmp_path / name)
        accuracy[name] = evaluate_point(model, data, 1e-4, 20.0, draws=3)["value"]
    assert accuracy["one"] > 0.78, accuracy  # both runs learned
    assert abs(accuracy["two"] - accuracy["one"]) <= 0.01, accuracy


def test_a_rank_leaves_with_its_code_and_its_output_flushed():
    # stdout to a pipe is block-buffered: without the flush, os._exit would lose the line
    script = (
        "import logging, sys\n"
        "from trainer.__main__ import exit_rank\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "print('written before the exit')\n"
        "logging.getLogger('x').warning('logged before the exit')\n"
        "exit_rank(3)\n"
        "print('never')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 3
    assert result.stdout == "written before the exit\n"
    assert "logged before the exit" in result.stderr
