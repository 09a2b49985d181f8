"""``python -m tools.bench``: parse the flags, find (or train) a model, run the chains."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
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
from tools.bench.contention import PROBE_MIB, PROBE_SLEEP_S, QUIET_MAX, cache_probe
from tools.bench.hey import hey_level, hey_path, hey_version
from tools.bench.load import (
    LIGHT_HTTP,
    PYTHON_GRPC,
    PYTHON_HTTP,
    device_level,
    grpc_level,
    paced_device_probe,
    paired_blocks,
)
from tools.bench.report import (
    _ms,
    evaluate_targets,
    render_tables,
    wire_comparison,
    write_outputs,
)
from tools.bench.stats import percentiles, stage_summary, summarise_level
from tools.stack import (
    PYTHON,
    REPO,
    ServiceProcess,
    Stack,
    free_port,
    repo_relative,
    wait_for_grpc_ready,
)

EDGE_ONLY_METHOD = "/bench.EdgeOnly/Classify"
DEFAULT_BAUD = 9600.0
# at C=1 the stages come from the probe run alone after hey's level (a probe beside hey
# would make it two requests in flight): this many sequential requests, at most this long
PROBE_ALONE_N, PROBE_ALONE_S = 300, 3.0
# the C=1 device span against the echo chain: alternating blocks of this many calls, the
# first SPAN_WARMUP of each dropped (see tools.bench.load.paired_blocks)
SPAN_BLOCK, SPAN_WARMUP = 100, 10
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


# --- message sizes and encoder timing ----------------------------------------------------------
def _message(cls, **fields):
    """``cls(**fields)`` keeping only the fields the current contract has."""
    known = cls.DESCRIPTOR.fields_by_name
    return cls(**{k: v for k, v in fields.items() if k in known})


def message_sizes(model_dir: Path, symbols: int, psnr_db: float) -> dict[str, int]:
    """Serialised sizes of a representative Transmission and InferenceReply of this model."""
    from shared.manifest import load_manifest
    from shared.rpc import coinference_pb2 as pb

    m = load_manifest(model_dir)
    bits = int(m.bits or 0)
    levels = b""
    if bits and "level_indices" in pb.Transmission.DESCRIPTOR.fields_by_name:
        try:  # only while the contract carries packed levels
            from shared.quantizer import pack_indices

            levels = pack_indices(np.arange(symbols) % (1 << bits), bits)
        except ImportError:
            levels = bytes((symbols * bits + 7) // 8)
    timings = pb.Timings(**{f: 1.234e-3 for f in pb.Timings.DESCRIPTOR.fields_by_name})
    request = _message(
        pb.Transmission, request_id="0" * 32, model_id=m.model_id, beta=1e-3, snr_db=psnr_db,
        bits_per_symbol=bits, d=m.d, symbols=[0.123] * symbols, level_indices=levels,
        timings=_message(pb.Timings, preprocess_s=1e-3, encode_s=1e-3),
    )  # fmt: skip
    reply = _message(
        pb.InferenceReply, request_id="0" * 32, model_id=m.model_id,
        probabilities=[0.1] * len(m.class_names), label=3,
        csi=_message(pb.ChannelState, psnr_db=psnr_db, noise_var=0.01, baud=DEFAULT_BAUD),
        n_symbols=symbols, airtime_s=symbols / DEFAULT_BAUD, timings=timings,
        decoder_snr_db=psnr_db,
    )  # fmt: skip
    return {"request_bytes": request.ByteSize(), "reply_bytes": reply.ByteSize()}


def time_ort_encoder(model_dir: Path, beta: float, snr_db: float, n: int) -> list[float]:
    """Seconds per call of the device's ONNX Runtime encoder at batch 1, 1 thread."""
    from device.encoder import OnnxEncoder

    encoder = OnnxEncoder(model_dir, threads=1)
    shape = tuple(encoder.manifest.input_shape)
    xs = np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)
    for i in range(min(100, n)):
        encoder.encode(xs[i : i + 1], beta, snr_db)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        encoder.encode(xs[i : i + 1], beta, snr_db)
        times.append(time.perf_counter() - t0)
    return times


def time_torch_encoder(model_dir: Path, beta: float, snr_db: float, n: int) -> list[float] | None:
    """The same in PyTorch eager, in a subprocess (scripts/edge_only.py needs torch)."""
    import json

    command = [PYTHON, str(REPO / "scripts" / "edge_only.py"), "time-encoder",
               "--model", str(model_dir), "--beta", str(beta), "--snr-db", str(snr_db),
               "--n", str(n)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        print(f"torch encoder timing failed (no torch?): {result.stderr[-500:]}", flush=True)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["torch_eager_s"]


# --- processes ----------------------------------------------------------------------------------
def start_grpc_proc(stack: ExitStack, args: list, port: int) -> None:
    """A reference-chain process (no health service): wait until it accepts connections."""
    proc = stack.enter_context(ServiceProcess(args))
    wait_for_grpc_ready(f"127.0.0.1:{port}", proc)


def start_echo_chain(stack: ExitStack, reply_bytes: int) -> str:
    """The two echo hops (tools.bench.echo); returns the first hop's HOST:PORT."""
    p1, p2 = free_port(), free_port()
    start_grpc_proc(stack, [PYTHON, "-m", "tools.bench.echo", "--port", p2,
                            "--reply-bytes", reply_bytes], p2)  # fmt: skip
    start_grpc_proc(stack, [PYTHON, "-m", "tools.bench.echo", "--port", p1,
                            "--next", f"127.0.0.1:{p2}"], p1)  # fmt: skip
    return f"127.0.0.1:{p1}"


def measure_span(stack: ExitStack, url: str, pngs, sizes: dict, args) -> dict:
    """The C=1 device span and the echo chain in alternating blocks (paired_blocks): the
    figures of the C=1 span target, free of the machine's drift between sweep levels. A
    cache probe after every round (tools.bench.contention) says which rounds were quiet;
    their figures are reported beside those of all rounds."""
    target = start_echo_chain(stack, sizes["reply_bytes"])
    run = asyncio.run(
        paired_blocks({"ours": url}, target, echo.ECHO_METHOD, pngs,
                      bytes(sizes["request_bytes"]), args.span_rounds, SPAN_BLOCK, SPAN_WARMUP,
                      args.timeout_s, probe=lambda: cache_probe().ratio)
    )  # fmt: skip
    records = run.records["ours"]
    span = {
        "method": f"alternating blocks of {SPAN_BLOCK} device requests ({LIGHT_HTTP}) and "
        f"{SPAN_BLOCK} echo calls ({PYTHON_GRPC}), C=1, first {SPAN_WARMUP} of each block "
        "dropped",
        "rounds": args.span_rounds,
        **_span_block(records, run.echo_s),
        "cache_probe": {
            "what": f"a {PROBE_MIB} MiB array re-read after {PROBE_SLEEP_S * 1e3:g} ms asleep "
            "over its immediate re-read, after every round (tools.bench.contention); about "
            "1.0-1.1 when nothing outside the stack evicts the cache",
            "quiet_max": QUIET_MAX,
            "per_round": run.probes,
            "p50": float(np.median(run.probes)) if run.probes else None,
        },
    }
    span["per_round"] = _per_round(records, run)
    span["cache_probe"]["span_correlation"] = _correlation(
        [r["probe"] for r in span["per_round"]], [r["device_span_p50_s"] for r in span["per_round"]]
    )
    quiet = {r for r, ratio in enumerate(run.probes) if ratio <= QUIET_MAX}
    if quiet:
        echo_quiet = [s for s, r in zip(run.echo_s, run.echo_rounds, strict=True) if r in quiet]
        span["quiet"] = {
            "rounds": len(quiet),
            **_span_block([r for r in records if r["round"] in quiet], echo_quiet),
        }
    total_p50 = span.get("stages_s", {}).get("total", {}).get("p50")  # none if all failed
    print(f"  span C=1 (paired): device span p50 {_ms(total_p50)} ms, "
          f"echo p50 {_ms(span['echo_s']['p50'])} ms; cache probe p50 "
          f"{span['cache_probe']['p50']:.2f}, quiet rounds {len(quiet)}/{args.span_rounds}",
          flush=True)  # fmt: skip
    return span


def _correlation(x: list[float], y: list[float]) -> float | None:
    """Pearson's r of x and y; None for fewer than 5 points or a constant series."""
    if len(x) < 5 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _per_round(records: list[dict], run) -> list[dict]:
    """Each round's cache probe, device span p50 and echo p50 (s); rounds without an
    answered request are left out."""
    spans_by_round: dict[int, list[float]] = {}
    for x in records:
        if x["ok"]:
            spans_by_round.setdefault(x["round"], []).append(x["stages"]["total"])
    echo_by_round: dict[int, list[float]] = {}
    for s, r in zip(run.echo_s, run.echo_rounds, strict=True):
        echo_by_round.setdefault(r, []).append(s)
    rows = []
    for r, probe in enumerate(run.probes):
        spans, echo_s = spans_by_round.get(r), echo_by_round.get(r)
        if spans and echo_s:
            rows.append({"probe": probe, "device_span_p50_s": float(np.median(spans)),
                         "echo_p50_s": float(np.median(echo_s))})  # fmt: skip
    return rows


def _span_block(records: list[dict], echo_s: list[float]) -> dict:
    """Counts and percentiles of paired device records and echo latencies."""
    ok = [r for r in records if r["ok"]]
    return {
        "requests": len(records),
        "errors": len(records) - len(ok),
        "accuracy": float(np.mean([r["correct"] for r in ok])) if ok else None,
        "accuracy_n": len(ok),
        "echo_calls": len(echo_s),
        "echo_s": percentiles(echo_s),
        "http_s": percentiles([r["latency_s"] for r in ok]),
        **(stage_summary(ok) if ok else {}),
    }


def start_stack(stack: ExitStack, model_dir: Path, psnr_db: float, edge_flags=()) -> str:
    """Edge, channel, device on free loopback ports (tools.stack); returns the device URL."""
    live = stack.enter_context(
        Stack(model_dir, psnr_db, edge_flags=edge_flags, device_flags=["--log-level", "warning"])
    )
    live.start()
    return live.url


# --- the HTTP part: Python or hey -----------------------------------------------------------------
class HttpLoad:
    """Runs one closed-loop level against the device with the chosen generator.

    ``python``: httpx async, every request a different test image; stages and accuracy from
    every reply. ``hey``: one PNG body from hey's workers; throughput and latency from hey,
    the replies' stages and accuracy from a paced Python probe (``probe_rate`` req/s of
    different images) running beside it.
    """

    def __init__(self, generator: str, samples, timeout_s: float, probe_rate: float):
        self.samples, self.timeout_s, self.probe_rate = samples, timeout_s, probe_rate
        self.generator = generator
        self._body: Path | None = None
        if generator == "hey":
            if hey_path() is None:
                print("bench: --generator hey but hey is not on PATH (apt-get install hey); "
                      "using the Python generator", flush=True)  # fmt: skip
                self.generator = "python"
            else:
                handle = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".png", delete=False)
                handle.write(samples[0][0])
                handle.close()
                self._body = Path(handle.name)
        self.name = hey_version() if self.generator == "hey" else PYTHON_HTTP

    def close(self) -> None:
        if self._body is not None:
            self._body.unlink(missing_ok=True)

    def level(self, kind: str, url: str, c: int, duration_s: float) -> dict:
        if self.generator == "python":
            records, elapsed = asyncio.run(
                device_level(url, self.samples, c, duration_s, self.timeout_s)
            )
            return summarise_level(kind, c, elapsed, records, PYTHON_HTTP)

        async def both():
            return await asyncio.gather(
                hey_level(url, self._body, c, duration_s, self.timeout_s),
                paced_device_probe(url, self.samples[1:], self.probe_rate, duration_s,
                                   self.timeout_s),
            )  # fmt: skip

        async def alone():  # C=1 means one request in flight: the probe waits for hey
            hey = await hey_level(url, self._body, c, duration_s, self.timeout_s)
            probe = await paced_device_probe(
                url,
                self.samples[1:],
                0.0,
                PROBE_ALONE_S,
                self.timeout_s,
                max_requests=PROBE_ALONE_N,
            )
            return hey, probe

        (records, elapsed), probe = asyncio.run(alone() if c == 1 else both())
        row = summarise_level(kind, c, elapsed, records, self.name)
        probe_ok = [r for r in probe if r["ok"]]
        judged = [r["correct"] for r in probe_ok]
        row["accuracy"] = float(np.mean(judged)) if judged else None
        if probe_ok:
            row.update(stage_summary(probe_ok))
            row["stages_generator"] = (
                f"{PYTHON_HTTP} probe, alone after hey (one request in flight)"
                if c == 1
                else f"{PYTHON_HTTP} probe beside hey"
            )
        row["probe"] = {
            "generator": PYTHON_HTTP,
            "rate_per_s": None if c == 1 else self.probe_rate,
            "alone": c == 1,
            "requests": len(probe),
            "errors": len(probe) - len(probe_ok),
            "throughput_per_s": len(probe_ok) / elapsed if elapsed else 0.0,
        }
        return row


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


def run_bench(args: argparse.Namespace) -> dict:
    model_dir = resolve_model(args.model, not args.no_train, args.data_dir)
    images, labels = load_test_set(args.data_dir, args.samples)
    pngs = [(png_bytes(img), int(lab)) for img, lab in zip(images, labels, strict=True)]
    raws = [(img.tobytes(), int(lab)) for img, lab in zip(images, labels, strict=True)]
    http_load = HttpLoad(args.generator, pngs, args.timeout_s, args.probe_rate)
    settings = {k: (repo_relative(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    results: dict[str, Any] = {
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
    sweep = results["sweep"]

    def record(row: dict) -> dict:
        sweep.append(row)
        print(f"  {row['kind']:<12} C={row['concurrency']:<3} {row['throughput_per_s']:8.1f} "
              f"req/s  errors {row['errors']:<4} p50 {_ms(row['latency_s']['p50'])} ms  p99 "
              f"{_ms(row['latency_s']['p99'])} ms  ({row['generator']})", flush=True)  # fmt: skip
        return row

    def grpc_row(kind: str, c: int, coro) -> dict:
        records, elapsed = asyncio.run(coro)
        return record(summarise_level(kind, c, elapsed, records, PYTHON_GRPC))

    try:
        with ExitStack() as stack:
            url = args.url or start_stack(stack, model_dir, args.psnr)
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
                record(http_load.level("ours", url, c, args.duration))
            sizes = message_sizes(model_dir, int(probe["symbols_sent"]), args.psnr)
            results["message_sizes"] = sizes
            if 1 in args.concurrency and not args.no_echo and args.span_rounds > 0:
                results["span_c1"] = measure_span(stack, url, pngs, sizes, args)
            stack.close()  # stop our stack before the references so they do not share CPU

            if not args.no_echo:
                target = start_echo_chain(stack, sizes["reply_bytes"])
                payload = [(bytes(sizes["request_bytes"]), None)]
                for c in args.concurrency:
                    grpc_row("echo", c, grpc_level(target, echo.ECHO_METHOD, payload, c,
                                                   args.duration, args.timeout_s))  # fmt: skip
                stack.close()
            if not args.no_edge_only:
                port = free_port()
                start_grpc_proc(stack, [PYTHON, str(REPO / "scripts" / "edge_only.py"), "serve",
                                        "--model", model_dir, "--port", port, "--beta",
                                        knobs["beta"]], port)  # fmt: skip

                def judge(reply: bytes) -> int:
                    return int(np.argmax(np.frombuffer(reply, dtype=np.float32)))

                for c in args.concurrency:
                    grpc_row("edge-only", c, grpc_level(f"127.0.0.1:{port}", EDGE_ONLY_METHOD,
                                                        raws, c, args.duration, args.timeout_s,
                                                        judge))  # fmt: skip
                stack.close()
            if not args.no_batching_compare and not args.url:
                c = max(args.concurrency)
                url = start_stack(stack, model_dir, args.psnr, ["--max-batch-size", 1])
                record(http_load.level("ours-nobatch", url, c, args.duration))
                stack.close()
    finally:
        http_load.close()

    if not args.no_encoder:
        snr = float(knobs["snr_db_range"][1])
        ort = time_ort_encoder(model_dir, knobs["beta"], snr, args.encoder_calls)
        torch_times = time_torch_encoder(model_dir, knobs["beta"], snr, args.encoder_calls)
        results["encoder"] = {
            "batch": 1, "threads": 1, "calls": args.encoder_calls,
            "ort_p50_s": float(np.median(ort)), "ort_p99_s": percentiles(ort)["p99"],
            "torch_p50_s": None if torch_times is None else float(np.median(torch_times)),
            "torch_p99_s": None if torch_times is None else percentiles(torch_times)["p99"],
        }  # fmt: skip

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
