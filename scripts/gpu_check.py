"""GPU check: the edge's CUDA path, decode throughput and training time, CUDA against CPU.

    python scripts/gpu_check.py --data-dir <fashion-mnist folder> --out reports/gpu
    python scripts/gpu_check.py --readme-only --out reports/gpu   # README.md from results.json

Run on a machine with a GPU (it also runs without one: the CUDA rows then say so). Steps, each
in its own subprocess with a time box, all under one overall deadline (``--budget-s``); the
results are written to ``<out>/results.json`` after every step, and ``<out>/README.md`` is
generated from that file (no hand-typed numbers):

1. ``env``: nvidia-smi, Python, torch, CUDA, the packages the services use;
2. ``tests``: pytest on tests/edge_server (with its CUDA test, test_cuda.py) and tests/nn;
3. ``decode``: in-process DecoderRuntime (edge_server/decoder.py) images/s at batch sizes
   1, 8, 64, 256, 1024 on cuda, on cpu with torch's default threads and on cpu with 1 thread;
4. ``edge``: in-process EdgeDecoder (validation, adaptive batching, reply building; no gRPC
   transport) requests/s on cuda and cpu, many requests in flight;
5. ``train``: ``python -m trainer train --quick --bits 4`` on cuda and cpu, then the full
   recipe (``--bits 4``, lr 1e-3, 30 epochs) on each for as many epochs as the time box
   allows, judged from the quick run's epoch time;
6. ``nccl``: ``torchrun --nproc-per-node 1`` of the quick recipe on cuda (a world of one: the
   trainer then needs no process group) and a probe that joins an nccl process group of one
   and trains DistributedDataParallel steps of the model through it.

Logs of every step go to ``--log-dir`` (default: the out folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.gpu_check_readme import readme  # noqa: E402
from scripts.gpu_check_runner import SCRIPT, Runner, train_record  # noqa: E402
from scripts.gpu_check_workers import decode_bench, edge_bench, nccl_probe  # noqa: E402

SERVICE_PACKAGES = ("numpy", "onnxruntime", "grpc", "google.protobuf", "pydantic_settings")


# -- the steps ---------------------------------------------------------------------------------
def environment() -> dict:
    """Python, torch and CUDA (with the GPU's name and memory), the services' packages."""
    env = {"python": sys.version.split()[0], "platform": platform.platform(),
           "cpu_count": os.cpu_count()}  # fmt: skip
    try:
        import torch

        env.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
                   cuda_available=torch.cuda.is_available(),
                   torch_threads=torch.get_num_threads())  # fmt: skip
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
            env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30)
    except Exception as exc:  # noqa: BLE001 - recorded, the steps then say what failed
        env["torch_error"] = repr(exc)
    for mod in SERVICE_PACKAGES:
        try:
            env[mod] = __import__(mod, fromlist=["x"]).__version__
        except Exception as exc:  # noqa: BLE001
            env[mod] = f"missing: {exc!r}"
    return env


def env_step(r: Runner) -> bool:
    """``env``: the environment and nvidia-smi; returns whether CUDA is available."""
    env = environment()
    r.results["env"] = env
    smi = r.call("nvidia_smi", ["nvidia-smi"], 30)
    r.results["env"]["nvidia_smi"] = (r.log_dir / "nvidia_smi.log").read_text()[-1500:] if (
        smi["status"] == "ok") else smi["status"]  # fmt: skip
    print(json.dumps(env, indent=1), flush=True)
    r.save()
    return bool(env.get("cuda_available"))


def tests_step(r: Runner, box_s: float) -> None:
    """``tests``: pytest on tests/edge_server (with test_cuda.py) and tests/nn."""
    rec = r.call("tests", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                           "tests/edge_server", "tests/nn"], box_s)  # fmt: skip
    text = (r.log_dir / "tests.log").read_text(errors="replace")
    summary = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    rec["summary"] = summary[-1].strip("= ") if summary else None
    cuda_lines = [ln for ln in text.splitlines() if "test_cuda" in ln]
    rec["cuda_tests_passed"] = sum(ln.startswith("PASSED") for ln in cuda_lines)
    rec["cuda_test_skipped"] = any(ln.startswith("SKIPPED") for ln in cuda_lines)
    r.results["steps"]["tests"] = rec
    r.save()


def decode_step(r: Runner, model: str, cuda: bool) -> None:
    """``decode``: the decoder's throughput on cuda, cpu with default threads, cpu with 1."""
    configs = ([("cuda", 0)] if cuda else []) + [("cpu", 0), ("cpu", 1)]
    for device, threads in configs:
        name = f"decode_{device}_{threads or 'default'}threads"
        worker = ["_decode", "--model", model, "--device", device,
                  "--threads", str(threads), "--min-s", "0.4"]  # fmt: skip
        r.results["steps"][name] = r.json_call(name, worker, 90)
        r.save()


def edge_step(r: Runner, model: str, cuda: bool) -> None:
    """``edge``: the in-process edge service's requests/s on cuda and cpu."""
    for device in (["cuda"] if cuda else []) + ["cpu"]:
        r.results["steps"][f"edge_{device}"] = r.json_call(
            f"edge_{device}", ["_edge", "--model", model, "--device", device], 60
        )
        r.save()


class Training:
    """``train``: ``python -m trainer train --bits 4`` runs into ``work``, recorded."""

    def __init__(self, r: Runner, data: list[str], work: Path) -> None:
        self.r, self.data, self.work = r, data, work

    def run(self, name: str, device: str, extra: list[str], box: float, launcher=None) -> dict:
        dest = self.work / name
        cmd = [*(launcher or [sys.executable]), "-m", "trainer", "train", "--bits", "4",
               "--seed", "0", "--no-progress", "--device", device, *self.data, *extra,
               "--out", str(dest)]  # fmt: skip
        rec = train_record(self.r.call(name, cmd, box), dest)
        self.r.results["steps"][name] = rec
        self.r.save()
        return rec

    def full_runs(self, quick: dict[str, dict], args) -> None:
        """The full recipe on each device for as many epochs as the time box allows, judged
        from the quick run's epoch time."""
        for device, rec in quick.items():
            epoch_s = rec.get("epoch_wall_s")
            if not epoch_s:
                continue
            box = min(args.full_box_s, self.r.left() - 10)
            epochs = int(min(30, (box - args.overhead_s) / (epoch_s * 1.15)))
            if epochs >= 1:
                self.run(f"train_full_{device}", device, ["--epochs", str(epochs)], box)


def train_steps(r: Runner, args, cuda: bool, data: list[str], work: Path, only: set) -> None:
    """``train`` (quick runs, then full ones) and ``nccl`` (between them when both run)."""
    if "train" not in only:
        if "nccl" in only and cuda:
            nccl_steps(r, data, work, args)
        return
    training = Training(r, data, work)
    devices = (["cuda"] if cuda else []) + ["cpu"]
    quick = {d: training.run(f"train_quick_{d}", d, ["--quick"], args.quick_box_s) for d in devices}
    if "nccl" in only and cuda:
        nccl_steps(r, data, work, args)
    training.full_runs(quick, args)


def run_all(args) -> dict:
    out, log_dir = Path(args.out), Path(args.log_dir or args.out)
    log_dir.mkdir(parents=True, exist_ok=True)
    r = Runner(out, log_dir, args.budget_s)
    only = set(args.steps.split(","))
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    if args.train_subset:  # smoke runs of this script
        data += ["--train-subset", str(args.train_subset)]
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cuda = env_step(r)
    if "tests" in only:
        tests_step(r, args.tests_box_s)
    if "decode" in only:
        decode_step(r, args.model, cuda)
    if "edge" in only:
        edge_step(r, args.model, cuda)
    train_steps(r, args, cuda, data, work, only)
    r.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    r.save()
    return r.results


def nccl_steps(r: Runner, data: list[str], work: Path, args) -> None:
    """``nccl``: torchrun of the quick recipe on cuda (a world of one) and the nccl probe."""
    steps = r.results["steps"]
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    dest = work / "torchrun_quick_cuda"
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    cmd = [*run, "-m", "trainer", "train", "--quick", "--bits", "4", "--seed", "0",
           "--no-progress", "--device", "cuda", "--train-subset", "12000", *data_dir,
           "--out", str(dest)]  # fmt: skip
    steps["torchrun_quick_cuda"] = train_record(r.call("torchrun_quick_cuda", cmd, 90), dest)
    r.save()
    rec = r.call("nccl_probe", [*run, str(SCRIPT), "_nccl", "--model", args.model], 90)
    if rec["status"] == "ok":
        lines = (r.log_dir / "nccl_probe.log").read_text().strip().splitlines()
        rec["result"] = json.loads(next(ln for ln in reversed(lines) if ln.startswith("{")))
    steps["nccl_probe"] = rec
    r.save()


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0].startswith("_"):  # a worker
        p = argparse.ArgumentParser()
        p.add_argument("worker")
        p.add_argument("--model", required=True)
        p.add_argument("--device", default="cuda")
        p.add_argument("--threads", type=int, default=0)
        p.add_argument("--min-s", type=float, default=0.4)
        a = p.parse_args(argv)
        if a.worker == "_decode":
            result = decode_bench(a.model, a.device, a.threads, a.min_s)
        elif a.worker == "_edge":
            result = edge_bench(a.model, a.device, requests=8192, in_flight=1024, max_batch=256)
        else:
            result = nccl_probe(a.model, steps=20)
        print(json.dumps(result), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO / "reports" / "gpu"))
    p.add_argument("--log-dir", default=None, help="step logs (default: --out)")
    p.add_argument("--work-dir", default="/tmp/gpu_check", help="trained models go here")
    p.add_argument("--model", default=str(REPO / "artifacts" / "test-quick"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--steps", default="tests,decode,edge,train,nccl")
    p.add_argument("--budget-s", type=float, default=430, help="overall deadline, s")
    p.add_argument("--tests-box-s", type=float, default=120)
    p.add_argument("--quick-box-s", type=float, default=90)
    p.add_argument("--full-box-s", type=float, default=100)
    p.add_argument("--overhead-s", type=float, default=25, help="start, eval, export per run")
    p.add_argument("--train-subset", type=int, default=None, help="smoke runs: fewer images")
    p.add_argument("--readme-only", action="store_true")
    a = p.parse_args(argv)
    if a.readme_only:
        res = json.loads((Path(a.out) / "results.json").read_text())
        (Path(a.out) / "README.md").write_text(readme(res))
        return 0
    run_all(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
