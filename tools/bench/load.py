"""Closed-loop load generators in Python: httpx (async) for the device's HTTP API and
grpc.aio for the gRPC reference chains. Each of C workers sends its next request as soon
as the previous answer arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc
import httpx

PYTHON_HTTP = "python-httpx"
PYTHON_GRPC = "python-grpc.aio"


async def closed_loop(
    concurrency: int, duration_s: float, one: Callable[[int], Awaitable[dict]]
) -> tuple[list[dict], float]:
    """C workers call ``await one(i)`` back to back for ``duration_s`` seconds; returns the
    records of requests *started* in the window and the window's real length (s)."""
    records: list[dict] = []
    start = time.perf_counter()
    stop_at = start + duration_s
    counter = iter(range(10**12))

    async def worker():
        while time.perf_counter() < stop_at:
            records.append(await one(next(counter)))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records, time.perf_counter() - start


def device_caller(client: httpx.AsyncClient, samples: Sequence[tuple[bytes, int]]):
    """``one(i)``: POST sample i (PNG bytes, label) to /v1/infer and record the reply."""

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

    return one


async def device_level(
    url: str, samples, concurrency: int, duration_s: float, timeout_s: float
) -> tuple[list[dict], float]:
    """One closed-loop level against the device's ``POST /v1/infer``."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:
        return await closed_loop(concurrency, duration_s, device_caller(client, samples))


async def paced_device_probe(
    url: str,
    samples,
    rate_per_s: float,
    duration_s: float,
    timeout_s: float,
    max_requests: int | None = None,
) -> list[dict]:
    """One sequential client at most ``rate_per_s`` requests/s (0 = back to back) for
    ``duration_s`` or ``max_requests``, each a different sample: the replies' stages and
    labels (while another generator loads, or alone)."""
    records: list[dict] = []
    if rate_per_s < 0 or (rate_per_s == 0 and max_requests is None):
        return records
    period = 1.0 / rate_per_s if rate_per_s else 0.0
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s) as client:
        one = device_caller(client, samples)
        start = time.perf_counter()
        i = 0
        while time.perf_counter() - start < duration_s and i != max_requests:
            t0 = time.perf_counter()
            records.append(await one(i))
            i += 1
            await asyncio.sleep(max(0.0, period - (time.perf_counter() - t0)))
    return records


async def grpc_level(
    target: str,
    method: str,
    payloads: Sequence[tuple[bytes, int | None]],
    concurrency: int,
    duration_s: float,
    timeout_s: float,
    judge: Callable[[bytes], int] | None = None,
) -> tuple[list[dict], float]:
    """One closed-loop level of raw-bytes unary calls to ``method`` at ``target``."""
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

        return await closed_loop(concurrency, duration_s, one)
