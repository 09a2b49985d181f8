"""Load bench of the co-inference stack, with two reference chains (no PyTorch here).

    python -m device.client bench                                  # start a stack, full run
    python -m device.client bench --duration 5 --concurrency 1,4,16,64
    python -m device.client bench --url http://127.0.0.1:8080 --no-edge-only  # existing stack

What one run measures (all latencies in seconds in the JSON, milliseconds in the tables):

1. **ours**: a concurrency sweep against the device's ``POST /v1/infer`` (PNG bodies of
   Fashion-MNIST test images, closed loop: each of C workers sends its next image as soon as
   the previous answer arrives) for ``--duration`` seconds per level: throughput, p50/p90/
   p95/p99 of the HTTP round trip and of every stage in the reply's ``latency_s``, accuracy,
   symbols and bits per image.
2. **echo**: a bare gRPC echo through the same two hops as device -> channel -> edge
   (bench client -> hop1 -> hop2 -> back), generic raw-bytes methods, with the request and
   reply sizes of a real ``Transmission`` / ``InferenceReply`` of this model.
3. **edge-only**: the raw image (784 uint8 pixels) sent over one gRPC hop to an edge that
   runs the whole model (encoder + decoder, no channel noise) in PyTorch eager at batch 1
   (``scripts/edge_only.py serve``, started as a subprocess because it needs torch).
4. **encoder**: the device's ONNX Runtime encoder vs PyTorch eager ``model.encode`` at
   batch 1, 1 thread each (``scripts/edge_only.py time-encoder`` for the torch side).
5. **batching**: the top concurrency level again with the edge's ``--max-batch-size 1``.

Bytes on the wire and air-time per image (the convention, also written in the JSON):
``payload bits`` are what the radio must carry: ours ``n_active symbols x bits_per_symbol``
(4 for a 4-bit model, 32 for float symbols), edge-only ``784 pixels x 8 bits``.
Air-time is modelled at ``--baud`` symbols/s (9,600 Bd) with the *same* bits per symbol for
both: ours ``n_active / baud``, edge-only ``(784 x 8 / bits_per_symbol) / baud``. The
serialised protobuf request sizes (what loopback gRPC actually carried) are reported too.

Writes ``results.json``, ``sweep.csv`` and ``tables.md`` under ``--out`` (reports/bench).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from device.client import png_bytes
from device.idx import load_test_set

REPO = Path(__file__).resolve().parents[1]
PERCENTILES = (50, 90, 95, 99)
STAGE_KEYS = (
    "preprocess", "encode", "device_to_channel", "channel", "channel_to_edge", "edge_queue",
    "decode", "edge_total", "channel_total", "rpc", "total",
)  # fmt: skip
ECHO_SERVICE, ECHO_METHOD = "bench.Echo", "/bench.Echo/Call"
EDGE_ONLY_METHOD = "/bench.EdgeOnly/Classify"
DEFAULT_BAUD = 9600.0


# --- statistics -------------------------------------------------------------------------------
def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p95/p99 in seconds (None when empty)."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not arr.size:
        return {f"p{p}": None for p in PERCENTILES}
    values = np.percentile(arr, PERCENTILES)
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, values, strict=True)}


def summarise_level(kind: str, concurrency: int, duration_s: float, records: list[dict]) -> dict:
    """One sweep level: throughput, latency percentiles (total and per stage), accuracy."""
    ok = [r for r in records if r["ok"]]
    judged = [r["correct"] for r in ok if r.get("correct") is not None]
    row: dict[str, Any] = {
        "kind": kind,
        "concurrency": concurrency,
        "duration_s": duration_s,
        "requests": len(records),
        "errors": len(records) - len(ok),
        "throughput_per_s": len(ok) / duration_s if duration_s > 0 else 0.0,
        "latency_s": percentiles([r["latency_s"] for r in ok]),
        "accuracy": float(np.mean(judged)) if judged else None,
    }
    if ok and "stages" in ok[0]:
        row["stages_s"] = {
            key: percentiles([r["stages"].get(key) for r in ok]) for key in STAGE_KEYS
        }
        row["mean_symbols"] = float(np.mean([r["symbols"] for r in ok]))
        row["mean_bits"] = float(np.mean([r["bits"] for r in ok]))
    return row


# --- closed-loop load generators ------------------------------------------------------------
async def _closed_loop(concurrency: int, duration_s: float, one) -> tuple[list[dict], float]:
    """C workers call ``await one(i)`` back to back for ``duration_s``; returns the records
    of requests *started* in the window and the window's real length."""
    records: list[dict] = []
    start = time.perf_counter()
    stop_at = start + duration_s
    counter = iter(range(10**12))

    async def worker():
        while time.perf_counter() < stop_at:
            records.append(await one(next(counter)))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records, time.perf_counter() - start


async def _device_level(url, samples, concurrency, duration_s, timeout_s) -> tuple[list, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

        async def one(i: int) -> dict:
            data, label = samples[i % len(samples)]
            t0 = time.perf_counter()
            try:
                response = await client.post(
                    "/v1/infer", content=data, headers={"Content-Type": "image/png"}
                )
            except httpx.HTTPError as exc:
                return {"ok": False, "error": repr(exc), "latency_s": None}
            latency = time.perf_counter() - t0
            if response.status_code != 200:
                return {"ok": False, "error": response.text[:200], "latency_s": latency}
            reply = response.json()
            return {
                "ok": True,
                "latency_s": latency,
                "stages": reply["latency_s"],
                "correct": reply.get("label") == label,
                "symbols": reply["symbols_sent"],
                "bits": reply["bits_sent"],
            }

        return await _closed_loop(concurrency, duration_s, one)


async def _grpc_level(target, method, payloads, concurrency, duration_s, timeout_s, judge=None):
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method)  # raw bytes both ways

        async def one(i: int) -> dict:
            payload, label = payloads[i % len(payloads)]
            t0 = time.perf_counter()
            try:
                reply = await call(payload, timeout=timeout_s)
            except grpc.RpcError as exc:
                return {"ok": False, "error": str(exc.code()), "latency_s": None}
            record = {"ok": True, "latency_s": time.perf_counter() - t0}
            if judge is not None:
                record["correct"] = judge(reply) == label
            return record

        return await _closed_loop(concurrency, duration_s, one)


# --- echo chain (torch-free; started as `python -m device.bench echo-hop`) --------------------
def echo_hop_main(argv: Sequence[str]) -> int:
    """One hop of the echo chain: forward to ``--next`` (hop1) or answer (hop2)."""
    parser = argparse.ArgumentParser(prog="python -m device.bench echo-hop")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--next", default=None, help="HOST:PORT of the next hop; none = answer")
    parser.add_argument("--reply-bytes", type=int, default=0, help="answer size (last hop)")
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args(argv)
    if args.next:
        channel = grpc.insecure_channel(args.next)
        forward = channel.unary_unary(ECHO_METHOD)

        def handle(request: bytes, _context) -> bytes:
            return forward(request, timeout=5.0)
    else:
        answer = bytes(args.reply_bytes)

        def handle(request: bytes, _context) -> bytes:
            return answer if args.reply_bytes else request

    handler = grpc.method_handlers_generic_handler(
        ECHO_SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(handle)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"echo hop on :{args.port} -> {args.next or 'answer'}", flush=True)
    server.wait_for_termination()
    return 0


def _wait_grpc(target: str, proc, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive():
                raise RuntimeError(f"{proc.args} exited:\n{proc.output()}")
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
            except grpc.FutureTimeoutError:
                continue
    raise TimeoutError(f"{target} not reachable after {timeout_s} s")


# --- message sizes ------------------------------------------------------------------------------
def message_sizes(model_dir: Path, symbols: int, psnr_db: float) -> dict[str, int]:
    """Serialised sizes of a representative Transmission and InferenceReply of this model."""
    from shared.manifest import load_manifest
    from shared.quantizer import pack_indices
    from shared.rpc import coinference_pb2 as pb

    m = load_manifest(model_dir)
    bits = int(m.bits or 0)
    levels = pack_indices(np.arange(symbols) % (1 << bits), bits) if bits else b""
    timings = pb.Timings(**{f: 1.234e-3 for f in pb.Timings.DESCRIPTOR.fields_by_name})
    request = pb.Transmission(
        request_id="0" * 32,
        model_id=m.model_id,
        beta=1e-3,
        snr_db=psnr_db,
        bits_per_symbol=bits,
        d=m.d,
        symbols=[0.123] * symbols,
        level_indices=levels,
        timings=pb.Timings(preprocess_s=1e-3, encode_s=1e-3),
    )
    reply = pb.InferenceReply(
        request_id="0" * 32,
        model_id=m.model_id,
        probabilities=[0.1] * len(m.class_names),
        label=3,
        csi=pb.ChannelState(psnr_db=psnr_db, noise_var=0.01, baud=DEFAULT_BAUD),
        n_symbols=symbols,
        airtime_s=symbols / DEFAULT_BAUD,
        timings=timings,
        decoder_snr_db=psnr_db,
    )
    return {"request_bytes": request.ByteSize(), "reply_bytes": reply.ByteSize()}


# --- encoder timing -------------------------------------------------------------------------------
def time_ort_encoder(model_dir: Path, beta: float, snr_db: float, n: int) -> list[float]:
    from device.encoder import OnnxEncoder

    encoder = OnnxEncoder(model_dir, threads=1)
    shape = tuple(encoder.manifest.input_shape)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((n, *shape)).astype(np.float32)
    for i in range(min(100, n)):
        encoder.encode(xs[i : i + 1], beta, snr_db)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        encoder.encode(xs[i : i + 1], beta, snr_db)
        times.append(time.perf_counter() - t0)
    return times


def time_torch_encoder(model_dir: Path, beta: float, snr_db: float, n: int) -> list[float] | None:
    command = [sys.executable, str(REPO / "scripts" / "edge_only.py"), "time-encoder",
               "--model", str(model_dir), "--beta", str(beta), "--snr-db", str(snr_db),
               "--n", str(n)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        print(f"torch encoder timing failed (no torch?): {result.stderr[-500:]}", flush=True)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["torch_eager_s"]


# --- stack ---------------------------------------------------------------------------------------
def _procs():
    sys.path.insert(0, str(REPO))
    from tests import procs  # the repo's process helpers (free ports, SIGTERM clean-up)

    return procs


def start_stack(stack: ExitStack, model_dir: Path, psnr_db: float, max_batch_size: int | None):
    """Edge, channel, device on free loopback ports; returns the device URL."""
    procs = _procs()
    py = sys.executable
    edge_port, channel_port, device_port = procs.free_port(), procs.free_port(), procs.free_port()
    edge_args = [py, "-m", "edge_server", "--model", model_dir, "--host", "127.0.0.1",
                 "--port", edge_port, "--metrics-port", 0]  # fmt: skip
    if max_batch_size is not None:
        edge_args += ["--max-batch-size", max_batch_size]
    edge = stack.enter_context(procs.ServiceProcess(edge_args))
    procs.wait_for_grpc_health(f"127.0.0.1:{edge_port}", edge, timeout_s=120)
    channel = stack.enter_context(procs.ServiceProcess(
        [py, "-m", "channel", "--edge", f"127.0.0.1:{edge_port}", "--host", "127.0.0.1",
         "--port", channel_port, "--psnr", psnr_db, "--metrics-port", 0]
    ))  # fmt: skip
    procs.wait_for_grpc_health(f"127.0.0.1:{channel_port}", channel, timeout_s=60)
    device = stack.enter_context(procs.ServiceProcess(
        [py, "-m", "device", "--model", model_dir, "--channel", f"127.0.0.1:{channel_port}",
         "--port", device_port, "--log-level", "warning"]
    ))  # fmt: skip
    url = f"http://127.0.0.1:{device_port}"
    procs.wait_for_http(f"{url}/readyz", device, timeout_s=60)
    return url


def start_grpc_proc(stack: ExitStack, args: list, port: int) -> None:
    procs = _procs()
    proc = stack.enter_context(procs.ServiceProcess(args))
    _wait_grpc(f"127.0.0.1:{port}", proc)


# --- reporting ----------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.2f}"


def sweep_table(rows: list[dict]) -> str:
    head = "| chain | C | req/s | errors | p50 ms | p90 ms | p95 ms | p99 ms | accuracy |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lat = r["latency_s"]
        acc = "-" if r.get("accuracy") is None else f"{r['accuracy']:.4f}"
        lines.append(
            f"| {r['kind']} | {r['concurrency']} | {r['throughput_per_s']:.0f} | {r['errors']} | "
            f"{_ms(lat['p50'])} | {_ms(lat['p90'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | "
            f"{acc} |"
        )
    return "\n".join(lines)


def stage_table(rows: list[dict]) -> str:
    """p50 / p99 (ms) per stage for each level of our chain."""
    ours = [r for r in rows if "stages_s" in r]
    head = "| stage | " + " | ".join(f"{r['kind']} C={r['concurrency']}" for r in ours) + " |"
    lines = [head, "|" + "---|" * (len(ours) + 1)]
    for key in STAGE_KEYS:
        cells = [f"{_ms(r['stages_s'][key]['p50'])} / {_ms(r['stages_s'][key]['p99'])}"
                 for r in ours]  # fmt: skip
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    fields = ["kind", "concurrency", "duration_s", "requests", "errors", "throughput_per_s",
              "accuracy", "mean_symbols", "mean_bits"]  # fmt: skip
    with open(out / "sweep.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        stage_cols = [f"{k}_p{p}_s" for k in STAGE_KEYS for p in PERCENTILES]
        writer.writerow(fields + [f"latency_p{p}_s" for p in PERCENTILES] + stage_cols)
        for r in results["sweep"]:
            row = [r.get(f) for f in fields] + [r["latency_s"][f"p{p}"] for p in PERCENTILES]
            stages = r.get("stages_s", {})
            row += [stages.get(k, {}).get(f"p{p}") for k in STAGE_KEYS for p in PERCENTILES]
            writer.writerow(row)
    (out / "tables.md").write_text(results["tables_md"])


def evaluate_targets(results: dict) -> list[dict]:
    """The issue's targets, reported (not asserted): met / missed with the numbers."""
    targets = []
    sweep = results["sweep"]
    enc = results.get("encoder") or {}
    if enc.get("torch_p50_s") and enc.get("ort_p50_s"):
        speedup = enc["torch_p50_s"] / enc["ort_p50_s"]
        targets.append({"target": "ORT encoder >= 3x faster than torch eager at batch 1 (p50)",
                        "value": f"{speedup:.2f}x", "met": speedup >= 3})  # fmt: skip
    ours = {r["concurrency"]: r for r in sweep if r["kind"] == "ours"}
    echo = {r["concurrency"]: r for r in sweep if r["kind"] == "echo"}
    if 1 in ours and 1 in echo:
        o, e = ours[1], echo[1]
        bound = (e["latency_s"]["p50"] + o["stages_s"]["encode"]["p50"]
                 + o["stages_s"]["decode"]["p50"])  # fmt: skip
        total = o["stages_s"]["total"]["p50"]
        targets.append({
            "target": "device-span p50 at C=1 <= 1.3 x (echo p50 + encode p50 + decode p50)",
            "value": f"{total * 1e3:.2f} ms vs 1.3 x {bound * 1e3:.2f} ms = "
                     f"{1.3 * bound * 1e3:.2f} ms (ratio {total / bound:.2f}); HTTP round trip "
                     f"p50 {_ms(o['latency_s']['p50'])} ms "
                     f"(ratio {o['latency_s']['p50'] / bound:.2f})",
            "met": total <= 1.3 * bound,
        })  # fmt: skip
    if ours:
        top = ours[max(ours)]
        p99 = top["latency_s"]["p99"]
        targets.append(
            {
                "target": f">= 2,000 img/s at C={top['concurrency']} with p99 < 50 ms",
                "value": f"{top['throughput_per_s']:.0f} img/s, p99 {_ms(p99)} ms",
                "met": top["throughput_per_s"] >= 2000 and p99 is not None and p99 < 0.05,
            }
        )
    wire = results.get("wire")
    if wire and wire.get("edge_only_accuracy") is not None:
        acc_gap = (wire["edge_only_accuracy"] - wire["ours_accuracy"]) * 100
        ok = wire["bits_ratio"] >= 20 and wire["airtime_ratio"] >= 20 and acc_gap <= 1
        targets.append({
            "target": ">= 20x fewer bytes and air-time than edge-only within 1 point accuracy",
            "value": f"bytes {wire['bits_ratio']:.1f}x fewer, air-time "
                     f"{wire['airtime_ratio']:.1f}x less, accuracy {wire['ours_accuracy']:.4f}"
                     f" vs {wire['edge_only_accuracy']:.4f} ({acc_gap:+.2f} points)",
            "met": ok,
        })  # fmt: skip
    return targets


# --- main ---------------------------------------------------------------------------------------
def parse_levels(text: str) -> list[int]:
    levels = [int(v) for v in text.split(",") if v.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"--concurrency takes positive ints like 1,4,16: {text}")
    return levels


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m device.client bench", description=__doc__)
    p.add_argument("--model", type=Path, default=REPO / "artifacts" / "test-quick")
    p.add_argument("--url", default=None, help="bench this device instead of starting a stack")
    p.add_argument("--concurrency", type=parse_levels, default=[1, 4, 16, 64])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    p.add_argument("--psnr", type=float, default=20.0, help="channel PSNR, dB (started stack)")
    p.add_argument("--samples", type=int, default=2000, help="distinct test images cycled")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--baud", type=float, default=DEFAULT_BAUD, help="for modelled air-time")
    p.add_argument("--encoder-calls", type=int, default=2000)
    p.add_argument("--timeout-s", type=float, default=10.0)
    p.add_argument("--no-echo", action="store_true")
    p.add_argument("--no-edge-only", action="store_true")
    p.add_argument("--no-encoder", action="store_true")
    p.add_argument("--no-batching-compare", action="store_true")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    return p


def run_bench(args) -> dict:
    model_dir = args.model if args.model.is_absolute() else REPO / args.model
    images, labels = load_test_set(args.data_dir, args.samples)
    pngs = [(png_bytes(img), int(lab)) for img, lab in zip(images, labels, strict=True)]
    raws = [(img.tobytes(), int(lab)) for img, lab in zip(images, labels, strict=True)]
    results: dict[str, Any] = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "platform": platform.platform(),
        },  # fmt: skip
        "sweep": [],
    }
    sweep = results["sweep"]

    def level(kind: str, c: int, coro) -> dict:
        records, elapsed = asyncio.run(coro)
        row = summarise_level(kind, c, elapsed, records)
        sweep.append(row)
        print(f"  {kind:<10} C={c:<3} {row['throughput_per_s']:8.1f} req/s  errors "
              f"{row['errors']:<4} p50 {_ms(row['latency_s']['p50'])} ms  p99 "
              f"{_ms(row['latency_s']['p99'])} ms", flush=True)  # fmt: skip
        return row

    with ExitStack() as stack:
        url = args.url or start_stack(stack, model_dir, args.psnr, None)
        with httpx.Client(base_url=url, timeout=10) as http:
            knobs = http.get("/v1/knobs").json()
            model = http.get("/v1/model").json()
            for data, _ in pngs[:20]:  # warm-up
                http.post("/v1/infer", content=data, headers={"Content-Type": "image/png"})
            probe = http.post("/v1/infer", content=pngs[0][0],
                              headers={"Content-Type": "image/png"}).json()  # fmt: skip
        results["model"] = {**model, "beta": knobs["beta"], "snr_mode": knobs["snr_mode"]}
        print(f"bench: device {url}, model {model['model_id']} (bits={model['bits']}), "
              f"beta={knobs['beta']:g}, {args.duration:g} s per level", flush=True)  # fmt: skip
        for c in args.concurrency:
            level("ours", c, _device_level(url, pngs, c, args.duration, args.timeout_s))
        stack.close()  # stop our stack before the references so they do not share CPU with it

        sizes = message_sizes(model_dir, int(probe["symbols_sent"]), args.psnr)
        results["message_sizes"] = sizes
        if not args.no_echo:
            procs = _procs()
            p1, p2 = procs.free_port(), procs.free_port()
            start_grpc_proc(stack, [sys.executable, "-m", "device.bench", "echo-hop", "--port",
                                    p2, "--reply-bytes", sizes["reply_bytes"]], p2)  # fmt: skip
            start_grpc_proc(stack, [sys.executable, "-m", "device.bench", "echo-hop", "--port",
                                    p1, "--next", f"127.0.0.1:{p2}"], p1)  # fmt: skip
            payload = [(bytes(sizes["request_bytes"]), None)]
            for c in args.concurrency:
                level("echo", c, _grpc_level(f"127.0.0.1:{p1}", ECHO_METHOD, payload, c,
                                             args.duration, args.timeout_s))  # fmt: skip
            stack.close()
        if not args.no_edge_only:
            port = _procs().free_port()
            start_grpc_proc(stack, [sys.executable, str(REPO / "scripts" / "edge_only.py"),
                                    "serve", "--model", model_dir, "--port", port, "--beta",
                                    knobs["beta"]], port)  # fmt: skip

            def judge(reply: bytes) -> int:
                return int(np.argmax(np.frombuffer(reply, dtype=np.float32)))

            for c in args.concurrency:
                coro = _grpc_level(f"127.0.0.1:{port}", EDGE_ONLY_METHOD, raws, c,
                                   args.duration, args.timeout_s, judge)  # fmt: skip
                level("edge-only", c, coro)
            stack.close()
        if not args.no_batching_compare and not args.url:
            c = max(args.concurrency)
            url = start_stack(stack, model_dir, args.psnr, max_batch_size=1)
            level("ours-nobatch", c, _device_level(url, pngs, c, args.duration, args.timeout_s))
            stack.close()

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


def wire_comparison(results: dict, model: dict, baud: float) -> dict:
    """Payload bits and modelled air-time per image, ours vs edge-only (see module doc)."""
    ours_rows = [r for r in results["sweep"] if r["kind"] == "ours"]
    edge_rows = [r for r in results["sweep"] if r["kind"] == "edge-only"]
    bits_per_symbol = int(model["bits"] or 32)
    pixels = int(np.prod(model["input_shape"]))
    ours_bits = float(np.mean([r["mean_bits"] for r in ours_rows]))
    ours_symbols = float(np.mean([r["mean_symbols"] for r in ours_rows]))
    edge_bits = pixels * 8.0
    edge_symbols = edge_bits / bits_per_symbol

    def weighted_accuracy(rows):
        n = sum(r["requests"] - r["errors"] for r in rows if r["accuracy"] is not None)
        if not n:
            return None
        return sum(r["accuracy"] * (r["requests"] - r["errors"]) for r in rows
                   if r["accuracy"] is not None) / n  # fmt: skip

    sizes = results.get("message_sizes", {})
    return {
        "convention": "payload bits: ours n_active x bits_per_symbol, edge-only pixels x 8; "
        f"air-time: symbols / {baud:g} Bd with bits_per_symbol={bits_per_symbol} for both",
        "bits_per_symbol": bits_per_symbol,
        "baud": baud,
        "ours_symbols": ours_symbols,
        "ours_payload_bytes": ours_bits / 8,
        "ours_airtime_s": ours_symbols / baud,
        "ours_grpc_request_bytes": sizes.get("request_bytes"),
        "edge_only_payload_bytes": edge_bits / 8,
        "edge_only_symbols": edge_symbols,
        "edge_only_airtime_s": edge_symbols / baud,
        "edge_only_grpc_request_bytes": pixels,
        "bits_ratio": edge_bits / ours_bits if ours_bits else None,
        "airtime_ratio": edge_symbols / ours_symbols if ours_symbols else None,
        "ours_accuracy": weighted_accuracy(ours_rows),
        "edge_only_accuracy": weighted_accuracy(edge_rows),
    }


def render_tables(results: dict) -> str:
    parts = ["### Sweep (closed loop; latency = the client's round trip)\n",
             sweep_table(results["sweep"]), "",
             "### Per-stage latency of our chain, p50 / p99 ms (from the replies)\n",
             stage_table(results["sweep"]), ""]  # fmt: skip
    ours = {r["concurrency"]: r for r in results["sweep"] if r["kind"] == "ours"}
    ratio_lines = ["### Ours as ratios to the references (same concurrency)\n",
                   "| C | throughput / echo | p50 / echo | throughput / edge-only | "
                   "p50 / edge-only |", "|---|---|---|---|---|"]  # fmt: skip
    for kind_rows in [results["sweep"]]:
        echo = {r["concurrency"]: r for r in kind_rows if r["kind"] == "echo"}
        edge = {r["concurrency"]: r for r in kind_rows if r["kind"] == "edge-only"}
        for c, o in sorted(ours.items()):

            def ratio(ref, key, c=c, o=o):
                if c not in ref:
                    return "-"
                a = o[key] if key == "throughput_per_s" else o["latency_s"]["p50"]
                b = ref[c][key] if key == "throughput_per_s" else ref[c]["latency_s"]["p50"]
                return f"{a / b:.2f}" if a and b else "-"

            ratio_lines.append(f"| {c} | {ratio(echo, 'throughput_per_s')} | "
                               f"{ratio(echo, 'p50')} | {ratio(edge, 'throughput_per_s')} | "
                               f"{ratio(edge, 'p50')} |")  # fmt: skip
    parts += ratio_lines + [""]
    w = results.get("wire")
    if w:
        parts += [
            "### Bytes and air-time per image\n",
            f"Convention: {w['convention']}.\n",
            "| | payload bytes | symbols | air-time ms | gRPC request bytes | accuracy |",
            "|---|---|---|---|---|---|",
            f"| ours | {w['ours_payload_bytes']:.1f} | {w['ours_symbols']:.1f} | "
            f"{w['ours_airtime_s'] * 1e3:.2f} | {w['ours_grpc_request_bytes']} | "
            f"{_acc(w['ours_accuracy'])} |",
            f"| edge-only | {w['edge_only_payload_bytes']:.0f} | {w['edge_only_symbols']:.0f} | "
            f"{w['edge_only_airtime_s'] * 1e3:.2f} | {w['edge_only_grpc_request_bytes']} | "
            f"{_acc(w['edge_only_accuracy'])} |",
            f"| edge-only / ours | {_x(w['bits_ratio'])} | {_x(w['airtime_ratio'])} | "
            f"{_x(w['airtime_ratio'])} | | |",
            "",
        ]
    e = results.get("encoder")
    if e:
        speed = e["torch_p50_s"] / e["ort_p50_s"] if e["torch_p50_s"] else None
        parts += [
            "### Device encoder at batch 1, 1 thread\n",
            "| runtime | p50 µs | p99 µs |", "|---|---|---|",
            f"| ONNX Runtime | {e['ort_p50_s'] * 1e6:.1f} | {e['ort_p99_s'] * 1e6:.1f} |",
            f"| PyTorch eager | {_us(e['torch_p50_s'])} | {_us(e['torch_p99_s'])} |",
            f"\nspeed-up (p50): {_x(speed)}\n",
        ]  # fmt: skip
    nob = [r for r in results["sweep"] if r["kind"] == "ours-nobatch"]
    if nob and nob[0]["concurrency"] in ours:
        a, b = ours[nob[0]["concurrency"]], nob[0]
        parts += (
            [
                f"### Edge batching at C={b['concurrency']}\n",
                "| edge | req/s | p50 ms | p99 ms | edge_queue p50 ms | decode p50 ms |",
                "|---|---|---|---|---|---|",
            ]
            + [
                f"| {name} | {r['throughput_per_s']:.0f} | {_ms(r['latency_s']['p50'])} | "
                f"{_ms(r['latency_s']['p99'])} | {_ms(r['stages_s']['edge_queue']['p50'])} | "
                f"{_ms(r['stages_s']['decode']['p50'])} |"
                for name, r in (("batching on (default)", a), ("--max-batch-size 1", b))
            ]
            + [""]
        )
    parts += ["### Targets (reported, not asserted)\n", "| target | measured | |", "|---|---|---|"]
    for t in results.get("targets", []):
        parts.append(f"| {t['target']} | {t['value']} | {'met' if t['met'] else 'missed'} |")
    return "\n".join(parts) + "\n"


def _acc(v):
    return "-" if v is None else f"{v:.4f}"


def _x(v):
    return "-" if v is None else f"{v:.1f}x"


def _us(v):
    return "-" if v is None else f"{v * 1e6:.1f}"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "echo-hop":
        return echo_hop_main(argv[1:])
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    results = run_bench(args)
    results["wall_s"] = time.perf_counter() - start
    write_outputs(args.out, results)
    print()
    print(results["tables_md"])
    print(f"wrote {args.out}/results.json, sweep.csv, tables.md in {results['wall_s']:.0f} s")
    errors = sum(r["errors"] for r in results["sweep"])
    return 1 if errors and errors == sum(r["requests"] for r in results["sweep"]) else 0


if __name__ == "__main__":
    sys.exit(main())
