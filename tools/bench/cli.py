"""``python -m tools.bench``: parse the flags, find (or train) a model, run the chains."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from client.http import png_bytes
from shared.idx import load_test_set
from shared.provenance import code_version
from tools.bench import echo
from tools.bench.chains import start_echo_chain, start_edge_only, start_stack
from tools.bench.echo import EDGE_ONLY_METHOD
from tools.bench.encoders import encoder_timings
from tools.bench.http_load import HttpLoad
from tools.bench.load import PYTHON_GRPC, grpc_level
from tools.bench.report import _ms, evaluate_targets, render_tables, wire_comparison, write_outputs
from tools.bench.sizes import DEFAULT_BAUD, message_sizes
from tools.bench.span import SPAN_BLOCK, measure_span
from tools.bench.stats import summarise_level
from tools.processes import PYTHON, REPO
from tools.stack import repo_relative

MANIFEST = "manifest.json"
# looked for in this order when --model is not given; the first is trained when none exists
DEFAULT_MODELS = (REPO / "artifacts" / "quick", REPO / "artifacts" / "test-quick")
TRAIN_ARGS = ("train", "--quick", "--bits", "4", "--out", "artifacts/quick")


# --- model ---------------------------------------------------------------------------------------
class UsageError(Exception):
    """A problem the user fixes with a flag; printed without a traceback."""


def resolve_model(model: Path | None, train: bool, data_dir: str | None) -> Path:
    """``--model`` when given (it must hold a manifest), else the first of DEFAULT_MODELS that
    does, else a quick 4-bit model trained into artifacts/quick (unless ``train`` is off)."""
    train_cmd = f"python -m trainer {' '.join(TRAIN_ARGS)}"
    if model is not None:
        path = model if model.is_absolute() else REPO / model
        if not (path / MANIFEST).is_file():
            raise UsageError(f"no model in {path} ({MANIFEST} missing): pass --model DIR with "
                             f"a trained model, or train one with `{train_cmd}`")  # fmt: skip
        return path
    for path in DEFAULT_MODELS:
        if (path / MANIFEST).is_file():
            print(f"bench: using the model in {path} (pass --model DIR for another)", flush=True)
            return path
    names = " or ".join(os.path.relpath(p, REPO) for p in DEFAULT_MODELS)
    if not train:
        raise UsageError(f"no model in {names}: pass --model DIR, or train one with "
                         f"`{train_cmd}` (or drop --no-train)")  # fmt: skip
    command = [PYTHON, "-m", "trainer", *TRAIN_ARGS]
    if data_dir:
        command += ["--data-dir", data_dir]
    print(f"bench: no model in {names}; training one: {train_cmd} (about a minute)", flush=True)
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0 or not (DEFAULT_MODELS[0] / MANIFEST).is_file():
        raise UsageError(
            f"training a quick model failed (exit {result.returncode}; it needs the torch "
            "extra, `make setup`): pass --model DIR with a trained model"
        )
    return DEFAULT_MODELS[0]


# --- main ---------------------------------------------------------------------------------------
def parse_levels(text: str) -> list[int]:
    levels = [int(v) for v in text.split(",") if v.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"--concurrency takes positive ints like 1,4,16: {text}")
    return levels


def build_parser() -> argparse.ArgumentParser:
    import tools.bench

    p = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description=tools.bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=None,
                   help="model folder; default: artifacts/quick, else artifacts/test-quick, "
                        "else train a quick 4-bit one into artifacts/quick")  # fmt: skip
    p.add_argument("--no-train", action="store_true", help="never train; fail with a hint")
    p.add_argument("--url", default=None, help="bench this device instead of starting a stack")
    p.add_argument("--generator", choices=("python", "hey"), default="hey",
                   help="HTTP load generator for our chain: hey (compiled, leaves the cores to "
                        "the system under test; falls back to python when missing) or python; "
                        "the gRPC references always use grpc.aio")  # fmt: skip
    p.add_argument("--probe-rate", type=float, default=10.0,
                   help="with hey: req/s of the Python probe for stages and accuracy")  # fmt: skip
    p.add_argument("--concurrency", type=parse_levels, default=[1, 4, 16, 64])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    p.add_argument("--psnr", type=float, default=20.0, help="channel PSNR, dB (started stack)")
    p.add_argument("--samples", type=int, default=2000, help="distinct test images cycled")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--baud", type=float, default=DEFAULT_BAUD, help="for modelled air-time")
    p.add_argument("--encoder-calls", type=int, default=2000)
    p.add_argument("--timeout-s", type=float, default=10.0)
    p.add_argument(
        "--span-rounds",
        type=int,
        default=20,
        help="rounds of the paired C=1 span measurement (blocks of "
        f"{SPAN_BLOCK} device requests and {SPAN_BLOCK} echo calls); 0 = off",
    )
    p.add_argument("--no-echo", action="store_true")
    p.add_argument("--no-edge-only", action="store_true")
    p.add_argument("--no-encoder", action="store_true")
    p.add_argument("--no-batching-compare", action="store_true")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    return p


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


class Sweep:
    """The rows of the sweep, each printed as it is recorded."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def record(self, row: dict) -> dict:
        self.rows.append(row)
        print(f"  {row['kind']:<12} C={row['concurrency']:<3} {row['throughput_per_s']:8.1f} "
              f"req/s  errors {row['errors']:<4} p50 {_ms(row['latency_s']['p50'])} ms  p99 "
              f"{_ms(row['latency_s']['p99'])} ms  ({row['generator']})", flush=True)  # fmt: skip
        return row

    def grpc(self, kind: str, c: int, level) -> dict:
        """Run one gRPC level (a :func:`tools.bench.load.grpc_level` coroutine) and record it."""
        records, elapsed = asyncio.run(level)
        return self.record(summarise_level(kind, c, elapsed, records, PYTHON_GRPC))


def start_results(args: argparse.Namespace, model_dir: Path, http_load: HttpLoad) -> dict:
    """The head of results.json: settings, machine, code, generators; an empty sweep."""
    settings = {k: (repo_relative(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {
        "settings": {**settings, "model": repo_relative(model_dir)},
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "platform": platform.platform(),
        },
        "code": code_version(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generator": {"http": http_load.name, "grpc": PYTHON_GRPC},
        "sweep": [],
    }


def bench_ours(stack: ExitStack, args, url: str, pngs, http_load: HttpLoad, model_dir: Path,
               results: dict, sweep: Sweep) -> tuple[dict, dict, dict]:  # fmt: skip
    """Our chain: the device's knobs and model, the sweep, the message sizes and the paired
    C=1 span; returns the knobs, the model and the message sizes."""
    with httpx.Client(base_url=url, timeout=10) as http:
        knobs = http.get("/v1/knobs").json()
        model = http.get("/v1/model").json()
        for data, _ in pngs[:20]:  # warm-up
            http.post("/v1/infer", content=data, headers={"Content-Type": "image/png"})
        probe = http.post("/v1/infer", content=pngs[0][0],
                          headers={"Content-Type": "image/png"}).json()  # fmt: skip
    results["model"] = {**model, "beta": knobs["beta"], "snr_mode": knobs["snr_mode"]}
    print(f"bench: device {url}, model {model['model_id']} (bits={model['bits']}), "
          f"beta={knobs['beta']:g}, {args.duration:g} s per level, HTTP load from "
          f"{http_load.name}", flush=True)  # fmt: skip
    for c in args.concurrency:
        sweep.record(http_load.level("ours", url, c, args.duration))
    sizes = message_sizes(model_dir, int(probe["symbols_sent"]), args.psnr)
    results["message_sizes"] = sizes
    if 1 in args.concurrency and not args.no_echo and args.span_rounds > 0:
        results["span_c1"] = measure_span(stack, url, pngs, sizes, args)
    return knobs, model, sizes


def bench_references(stack: ExitStack, args, model_dir: Path, beta: float, sizes: dict, raws,
                     sweep: Sweep) -> None:  # fmt: skip
    """The echo chain and the edge-only reference, each level of the sweep, one at a time."""
    if not args.no_echo:
        target = start_echo_chain(stack, sizes["reply_bytes"])
        payload = [(bytes(sizes["request_bytes"]), None)]
        for c in args.concurrency:
            sweep.grpc("echo", c, grpc_level(target, echo.ECHO_METHOD, payload, c,
                                             args.duration, args.timeout_s))  # fmt: skip
        stack.close()
    if not args.no_edge_only:
        target = start_edge_only(stack, model_dir, beta)

        def judge(reply: bytes) -> int:
            return int(np.argmax(np.frombuffer(reply, dtype=np.float32)))

        for c in args.concurrency:
            level = grpc_level(target, EDGE_ONLY_METHOD, raws, c, args.duration, args.timeout_s,
                               judge)  # fmt: skip
            sweep.grpc("edge-only", c, level)
        stack.close()


def run_bench(args: argparse.Namespace) -> dict:
    model_dir = resolve_model(args.model, not args.no_train, args.data_dir)
    images, labels = load_test_set(args.data_dir, args.samples)
    pngs = [(png_bytes(img), int(lab)) for img, lab in zip(images, labels, strict=True)]
    raws = [(img.tobytes(), int(lab)) for img, lab in zip(images, labels, strict=True)]
    http_load = HttpLoad(args.generator, pngs, args.timeout_s, args.probe_rate)
    results: dict[str, Any] = start_results(args, model_dir, http_load)
    sweep = Sweep(results["sweep"])
    try:
        with ExitStack() as stack:
            url = args.url or start_stack(stack, model_dir, args.psnr)
            knobs, model, sizes = bench_ours(
                stack, args, url, pngs, http_load, model_dir, results, sweep
            )
            stack.close()  # stop our stack before the references so they do not share CPU
            bench_references(stack, args, model_dir, knobs["beta"], sizes, raws, sweep)
            if not args.no_batching_compare and not args.url:
                c = max(args.concurrency)
                url = start_stack(stack, model_dir, args.psnr, ["--max-batch-size", 1])
                sweep.record(http_load.level("ours-nobatch", url, c, args.duration))
                stack.close()
    finally:
        http_load.close()

    if not args.no_encoder:
        snr = float(knobs["snr_db_range"][1])
        results["encoder"] = encoder_timings(model_dir, knobs["beta"], snr, args.encoder_calls)
    results["wire"] = wire_comparison(results, model, args.baud)
    results["targets"] = evaluate_targets(results)
    results["tables_md"] = render_tables(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        results = run_bench(args)
    except UsageError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    results["wall_s"] = time.perf_counter() - start
    write_outputs(args.out, results)
    print()
    print(results["tables_md"])
    print(f"wrote {args.out}/results.json, sweep.csv, tables.md in {results['wall_s']:.0f} s")
    errors = sum(r["errors"] for r in results["sweep"])
    return 1 if errors and errors == sum(r["requests"] for r in results["sweep"]) else 0
