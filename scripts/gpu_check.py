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
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BATCHES = (1, 8, 64, 256, 1024)
HEADLINE = "beta=0.0001,snr_db=20"


# -- workers (run in subprocesses) -------------------------------------------------------------
def decode_bench(model: str, device: str, threads: int | None, min_s: float) -> dict:
    import numpy as np
    import torch

    from edge_server.decoder import DecoderRuntime

    if threads:
        torch.set_num_threads(threads)
    decoder = DecoderRuntime(model, device=device)
    d = decoder.d
    rng = np.random.default_rng(0)
    rows = []
    for n in BATCHES:
        y = rng.normal(0, 0.8, size=(n, d)).astype(np.float32)
        beta = np.full(n, 1e-3, np.float32)
        snr = rng.uniform(0, 25, n).astype(np.float32)
        for _ in range(5):
            decoder(y, beta, snr)
        times = []
        start = time.perf_counter()
        while (time.perf_counter() - start < min_s or len(times) < 10) and len(times) < 20000:
            t0 = time.perf_counter()
            decoder(y, beta, snr)  # numpy in, numpy out: the edge's whole decoder call
            times.append(time.perf_counter() - t0)
        times = np.array(times)
        rows.append({
            "batch": n, "calls": len(times), "ms_p50": 1e3 * float(np.median(times)),
            "ms_mean": 1e3 * float(times.mean()), "images_per_s": n / float(times.mean()),
        })  # fmt: skip
    return {"device": device, "torch_threads": torch.get_num_threads(), "rows": rows}


def edge_bench(model: str, device: str, requests: int, in_flight: int, max_batch: int) -> dict:
    import numpy as np

    from edge_server.server import load_edge
    from edge_server.settings import EdgeSettings
    from shared.rpc import coinference_pb2 as pb

    settings = EdgeSettings(model=model, device=device, max_batch_size=max_batch)
    edge = load_edge(settings)
    m = edge.manifest
    rng = np.random.default_rng(0)
    symbols = rng.normal(0, 0.8, size=(256, m.d)).astype(np.float32)
    messages = [
        pb.Transmission(
            request_id=f"r{i}", model_id=m.model_id, d=m.d, beta=1e-3,
            snr_db=float(rng.uniform(0, 25)), symbols=symbols[i % 256].tolist(),
        )
        for i in range(requests)
    ]  # fmt: skip

    async def main() -> dict:
        await edge.start()
        gate = asyncio.Semaphore(in_flight)

        async def one(msg):
            async with gate:
                return await edge.decode(msg)

        try:
            await asyncio.gather(*(one(msg) for msg in messages[:512]))  # warm-up
            start = time.perf_counter()
            replies = await asyncio.gather(*(one(msg) for msg in messages))
            wall = time.perf_counter() - start
        finally:
            await edge.close()
        decode_s = np.array([r.timings.decode_s for r in replies])
        return {
            "device": device, "requests": requests, "in_flight": in_flight,
            "max_batch_size": max_batch, "wall_s": wall, "requests_per_s": requests / wall,
            "decode_s_p50_ms": 1e3 * float(np.median(decode_s)),
        }  # fmt: skip

    return asyncio.run(main())


def nccl_probe(model_dir: str, steps: int) -> dict:
    """Join an nccl process group of one (torchrun sets the rendezvous) and train DDP steps."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from shared.nn.zoo import load_model
    from trainer import distributed

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl")
    ranks = distributed.current()
    model = load_model(
        model_dir, decoder_only=True
    ).cuda()  # the decoder side is enough for a DDP step
    net = DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    d = model.config.d
    losses = []
    for _ in range(steps):
        y = torch.randn(128, d, device="cuda")
        b = torch.full((128, 1), 1e-3, device="cuda")
        s = torch.full((128, 1), 10.0, device="cuda")
        target = torch.randint(0, 10, (128,), device="cuda")
        loss = torch.nn.functional.cross_entropy(net.module.decode(y, b, s), target)
        # DDP's reducer runs only through forward(); all-reduce the grads through nccl here
        opt.zero_grad()
        loss.backward()
        for p in net.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
        opt.step()
        losses.append(loss.item())
    value = torch.tensor([1.0, 2.0], device="cuda")
    dist.all_reduce(value)
    out = {
        "backend": dist.get_backend(), "world_size": ranks.world_size, "rank": ranks.rank,
        "nccl_version": ".".join(map(str, torch.cuda.nccl.version())),
        "all_reduce": value.tolist(), "ddp_steps": steps,
        "loss_first_last": [losses[0], losses[-1]],
    }  # fmt: skip
    distributed.shutdown()
    return out


# -- orchestration -----------------------------------------------------------------------------
class Runner:
    def __init__(self, out: Path, log_dir: Path, budget_s: float):
        self.out, self.log_dir = out, log_dir
        self.deadline = time.monotonic() + budget_s
        self.results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (self.out / "README.md").write_text(readme(self.results))

    def call(self, name: str, cmd: list[str], box_s: float, env: dict | None = None) -> dict:
        """Run ``cmd`` in a time box (cut to the overall deadline), logged to <name>.log."""
        box = min(box_s, self.left())
        shown = " ".join(cmd).replace(f"{REPO}/", "").replace(sys.executable, "python")
        record = {"cmd": shown, "box_s": round(box, 1)}
        if box < 5:
            record.update(rc=None, status="skipped: no time left")
            print(f"[{name}] skipped (no time left)", flush=True)
            return record
        print(f"[{name}] {' '.join(cmd)} (box {box:.0f} s)", flush=True)
        log = self.log_dir / f"{name}.log"
        start = time.monotonic()
        with log.open("w") as fh:
            try:
                proc = subprocess.run(
                    cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, timeout=box,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                )  # fmt: skip
                record.update(rc=proc.returncode, status="ok" if proc.returncode == 0 else "failed")
            except subprocess.TimeoutExpired:
                record.update(rc=None, status="timeout")
            except OSError as exc:  # e.g. no nvidia-smi
                fh.write(repr(exc))
                record.update(rc=None, status=f"failed: {exc!r}")
        record["wall_s"] = round(time.monotonic() - start, 2)
        text = log.read_text(errors="replace")
        record["tail"] = text[-1500:] if record["status"] != "ok" else text[-300:]
        print(f"[{name}] {record['status']} in {record['wall_s']} s", flush=True)
        return record

    def json_call(self, name: str, args: list[str], box_s: float, env=None) -> dict:
        """A worker of this script; its last stdout line is JSON."""
        record = self.call(name, [sys.executable, __file__, *args], box_s, env)
        if record["status"] == "ok":
            lines = (self.log_dir / f"{name}.log").read_text().strip().splitlines()
            record["result"] = json.loads(lines[-1])
        return record


def train_record(record: dict, out_dir: Path) -> dict:
    log_path, manifest_path = out_dir / "train_log.json", out_dir / "manifest.json"
    if log_path.is_file():
        log = json.loads(log_path.read_text())
        epochs = log["epochs"]
        record.update(
            epochs=len(epochs), train_wall_s=log["train_wall_s"],
            epoch_wall_s=log["train_wall_s"] / max(1, len(epochs)),
            train_cpu_s=log.get("train_cpu_s"), machine=log.get("machine"),
            final_train_accuracy=epochs[-1].get("train_accuracy") if epochs else None,
            world_size=log.get("world_size"), distributed=log.get("distributed"),
        )  # fmt: skip
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        record["model_id"] = manifest["model_id"]
        record["test_accuracy"] = manifest["metrics"].get(HEADLINE, {}).get("value")
    return record


def run_all(args) -> dict:
    out, log_dir = Path(args.out), Path(args.log_dir or args.out)
    log_dir.mkdir(parents=True, exist_ok=True)
    r = Runner(out, log_dir, args.budget_s)
    steps = r.results["steps"]
    only = set(args.steps.split(","))
    py = sys.executable
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    if args.train_subset:  # smoke runs of this script
        data += ["--train-subset", str(args.train_subset)]
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

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
    for mod in ("numpy", "onnxruntime", "grpc", "google.protobuf", "pydantic_settings"):
        try:
            env[mod] = __import__(mod, fromlist=["x"]).__version__
        except Exception as exc:  # noqa: BLE001
            env[mod] = f"missing: {exc!r}"
    r.results["env"] = env
    cuda = bool(env.get("cuda_available"))
    smi = r.call("nvidia_smi", ["nvidia-smi"], 30)
    r.results["env"]["nvidia_smi"] = (log_dir / "nvidia_smi.log").read_text()[-1500:] if (
        smi["status"] == "ok") else smi["status"]  # fmt: skip
    print(json.dumps(env, indent=1), flush=True)
    r.save()

    if "tests" in only:
        rec = r.call("tests", [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                               "tests/edge_server", "tests/nn"], args.tests_box_s)  # fmt: skip
        text = (log_dir / "tests.log").read_text(errors="replace")
        summary = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
        rec["summary"] = summary[-1].strip("= ") if summary else None
        cuda_lines = [ln for ln in text.splitlines() if "test_cuda" in ln]
        rec["cuda_tests_passed"] = sum(ln.startswith("PASSED") for ln in cuda_lines)
        rec["cuda_test_skipped"] = any(ln.startswith("SKIPPED") for ln in cuda_lines)
        steps["tests"] = rec
        r.save()

    if "decode" in only:
        configs = ([("cuda", 0)] if cuda else []) + [("cpu", 0), ("cpu", 1)]
        for device, threads in configs:
            name = f"decode_{device}_{threads or 'default'}threads"
            worker = ["_decode", "--model", args.model, "--device", device,
                      "--threads", str(threads), "--min-s", "0.4"]  # fmt: skip
            steps[name] = r.json_call(name, worker, 90)
            r.save()

    if "edge" in only:
        for device in (["cuda"] if cuda else []) + ["cpu"]:
            steps[f"edge_{device}"] = r.json_call(
                f"edge_{device}", ["_edge", "--model", args.model, "--device", device], 60
            )
            r.save()

    def train(name: str, device: str, extra: list[str], box: float, launcher=None) -> dict:
        dest = work / name
        cmd = [*(launcher or [py]), "-m", "trainer", "train", "--bits", "4", "--seed", "0",
               "--no-progress", "--device", device, *data, *extra, "--out", str(dest)]  # fmt: skip
        rec = train_record(r.call(name, cmd, box), dest)
        steps[name] = rec
        r.save()
        return rec

    if "train" in only:
        devices = (["cuda"] if cuda else []) + ["cpu"]
        quick = {d: train(f"train_quick_{d}", d, ["--quick"], args.quick_box_s) for d in devices}
        if "nccl" in only and cuda:
            nccl_steps(r, py, data, work, args)
        for device in devices:
            epoch_s = quick[device].get("epoch_wall_s")
            if not epoch_s:
                continue
            box = min(args.full_box_s, r.left() - 10)
            epochs = int(min(30, (box - args.overhead_s) / (epoch_s * 1.15)))
            if epochs >= 1:
                train(f"train_full_{device}", device, ["--epochs", str(epochs)], box)
    elif "nccl" in only and cuda:
        nccl_steps(r, py, data, work, args)
    r.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    r.save()
    return r.results


def nccl_steps(r: Runner, py: str, data: list[str], work: Path, args) -> None:
    steps = r.results["steps"]
    run = [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    dest = work / "torchrun_quick_cuda"
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    cmd = [*run, "-m", "trainer", "train", "--quick", "--bits", "4", "--seed", "0",
           "--no-progress", "--device", "cuda", "--train-subset", "12000", *data_dir,
           "--out", str(dest)]  # fmt: skip
    steps["torchrun_quick_cuda"] = train_record(r.call("torchrun_quick_cuda", cmd, 90), dest)
    r.save()
    rec = r.call("nccl_probe", [*run, __file__, "_nccl", "--model", args.model], 90)
    if rec["status"] == "ok":
        lines = (r.log_dir / "nccl_probe.log").read_text().strip().splitlines()
        rec["result"] = json.loads(next(ln for ln in reversed(lines) if ln.startswith("{")))
    steps["nccl_probe"] = rec
    r.save()


# -- README from results.json ------------------------------------------------------------------
def _fmt(value, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def readme(res: dict) -> str:
    env, steps = res.get("env", {}), res.get("steps", {})
    lines = [
        "# GPU check",
        "",
        "Written by `python scripts/gpu_check.py` from [`results.json`](results.json) "
        "(regenerate with `--readme-only`); logs of the run are not kept here.",
        "",
        f"Run {res.get('started', '?')}: {env.get('gpu', 'no GPU')}"
        f" ({env.get('gpu_memory_gib', '?')} GiB), {env.get('cpu_count')} CPU cores; "
        f"Python {env.get('python')}, torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), "
        f"grpcio {env.get('grpc')}, protobuf {env.get('google.protobuf')}, "
        f"onnxruntime {env.get('onnxruntime')}.",
        "",
        "## Status of each step",
        "",
        "| step | status | wall s | note |",
        "| --- | --- | --- | --- |",
    ]
    for name, rec in steps.items():
        note = rec.get("summary") or ""
        if name == "tests":
            note += "; test_cuda.py: " + (
                "skipped (no CUDA)"
                if rec.get("cuda_test_skipped")
                else f"{rec.get('cuda_tests_passed')} passed on cuda"
            )
        lines.append(f"| {name} | {rec.get('status')} | {_fmt(rec.get('wall_s'))} | {note} |")

    decode = {n: s["result"] for n, s in steps.items() if n.startswith("decode_") and "result" in s}
    if decode:
        cols = list(decode)
        heads = [f"{v['device']}, {v['torch_threads']} thr." for v in decode.values()]
        lines += [
            "",
            "## Decode throughput: DecoderRuntime in process (images/s; p50 ms per call)",
            "",
            "The 4-bit quick model (`--quick --bits 4 --seed 0`), random received symbols; one "
            "call = numpy in, torch on the device, softmax, numpy out.",
            "",
            "| batch | " + " | ".join(heads) + " |",
            "| --- |" + " --- |" * len(cols),
        ]
        for i, n in enumerate(BATCHES):
            cells = []
            for c in cols:
                row = decode[c]["rows"][i]
                cells.append(f"{row['images_per_s']:,.0f} ({row['ms_p50']:.3f} ms)")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")

    edge = {n: s["result"] for n, s in steps.items() if n.startswith("edge_") and "result" in s}
    if edge:
        lines += [
            "",
            "## Edge service in process (EdgeDecoder: validation, batching, replies; no gRPC)",
            "",
            "| device | requests | in flight | max batch | requests/s | p50 decode_s ms |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for v in edge.values():
            lines.append(
                f"| {v['device']} | {v['requests']} | {v['in_flight']} | {v['max_batch_size']} "
                f"| {v['requests_per_s']:,.0f} | {v['decode_s_p50_ms']:.3f} |"
            )

    trains = {n: s for n, s in steps.items() if n.startswith(("train_", "torchrun_"))}
    if trains:
        lines += [
            "",
            f"## Training (`python -m trainer train --bits 4 --seed 0`; accuracy: {HEADLINE})",
            "",
            "| run | status | epochs | s per epoch | training wall s | test accuracy | "
            "final train accuracy |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, s in trains.items():
            lines.append(
                f"| {name} | {s.get('status')} | {s.get('epochs', '—')} "
                f"| {_fmt(s.get('epoch_wall_s'), '.2f')} | {_fmt(s.get('train_wall_s'))} "
                f"| {_fmt(s.get('test_accuracy'), '.4f')} "
                f"| {_fmt(s.get('final_train_accuracy'), '.4f')} |"
            )
    probe = steps.get("nccl_probe")
    if probe:
        result = probe.get("result")
        lines += ["", "## nccl", "", f"Probe: {probe.get('status')}" + (
            f"; backend {result['backend']}, world size {result['world_size']}, NCCL "
            f"{result['nccl_version']}, all-reduce {result['all_reduce']}, "
            f"{result['ddp_steps']} DDP steps" if result else "") + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


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
