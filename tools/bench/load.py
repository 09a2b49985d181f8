"""Closed-loop load generators in Python: httpx (async) for the device's HTTP API and
grpc.aio for the gRPC reference chains. Each of C workers sends its next request as soon
as the previous answer arrives."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import grpc
import httpx

PYTHON_HTTP = "python-httpx"
PYTHON_GRPC = "python-grpc.aio"
LIGHT_HTTP = "python-asyncio-http1 (tools.bench.load.LightHttpClient)"


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
        return reply_record(response.json(), latency, label)

    return one


def reply_record(reply: dict, latency_s: float, label: int) -> dict:
    """The record of one answered ``/v1/infer``: its stages, symbols, bits, and whether it
    named the sample's label."""
    return {
        "ok": True,
        "latency_s": latency_s,
        "stages": reply["latency_s"],
        "correct": reply.get("label") == label,
        "symbols": reply["symbols_sent"],
        "bits": reply["bits_sent"],
    }


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


class LightHttpClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams for sequential POSTs: next to
    nothing runs between two requests, so the probe leaves the cores' caches to the system
    under test (httpx costs about 1 ms of Python per request; measured beside it, the
    device's stages came out 0.06-0.12 ms longer). Only what the device's replies need:
    ``Content-Length`` bodies, no redirects, no chunked encoding."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parsed = urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"LightHttpClient takes http://HOST:PORT URLs, got {url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """(status, body) of one POST; reconnects once if the server closed the connection."""
        return await asyncio.wait_for(self._post(path, body, content_type), self.timeout_s)

    async def _post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode("ascii") + body  # fmt: skip
        for attempt in (0, 1):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            try:
                self._writer.write(request)
                head = await self._reader.readuntil(b"\r\n\r\n")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                close = True
        if length is None:
            raise ValueError("reply without Content-Length (not supported by LightHttpClient)")
        data = await self._reader.readexactly(length)
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass
        self._reader = self._writer = None


def light_device_caller(client: LightHttpClient, samples: Sequence[tuple[bytes, int]]):
    """:func:`device_caller` over a :class:`LightHttpClient`: the same records."""

    async def one(i: int) -> dict:
        data, label = samples[i % len(samples)]
        t0 = time.perf_counter()
        try:
            status, body = await client.post("/v1/infer", data, "image/png")
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
            return {"ok": False, "error": repr(exc), "latency_s": None}
        latency = time.perf_counter() - t0
        if status != 200:
            return {"ok": False, "error": body[:200].decode(errors="replace"),
                    "latency_s": latency}  # fmt: skip
        return reply_record(json.loads(body), latency, label)

    return one


@dataclass
class PairedRun:
    """What :func:`paired_blocks` measured: device records by name (each with its
    ``round``), echo latencies (s) with the round of each, and one probe value per round."""

    records: dict[str, list[dict]]
    echo_s: list[float]
    echo_rounds: list[int]
    probes: list[float] = field(default_factory=list)


async def paired_blocks(
    urls: dict[str, str],
    echo_target: str,
    echo_method: str,
    samples,
    echo_payload: bytes,
    rounds: int,
    block: int,
    warmup: int,
    timeout_s: float,
    probe: Callable[[], float] | None = None,
) -> PairedRun:
    """C=1 against each device of ``urls`` (name -> base URL) and the echo chain in
    alternating blocks: ``rounds`` times, ``block`` requests to every device in turn (each
    a different sample, sent by a :class:`LightHttpClient`), then ``block`` echo calls
    (grpc.aio), the first ``warmup`` of every block dropped. All chains see the same
    machine, so ratios of their latencies do not drift with it. ``probe()``, when given, runs
    after every round with every chain idle (e.g. :func:`tools.bench.contention.cache_probe`)
    and its value is kept per round."""
    clients = {name: LightHttpClient(url, timeout_s) for name, url in urls.items()}
    run = PairedRun({name: [] for name in urls}, [], [])
    try:
        async with grpc.aio.insecure_channel(echo_target) as channel:
            callers = {name: light_device_caller(c, samples) for name, c in clients.items()}
            call = channel.unary_unary(echo_method)
            for r in range(rounds):
                for name, one in callers.items():
                    for i in range(block):
                        record = await one(r * block + i)
                        if i >= warmup:
                            record["round"] = r
                            run.records[name].append(record)
                for i in range(block):
                    t0 = time.perf_counter()
                    await call(echo_payload, timeout=timeout_s)
                    if i >= warmup:
                        run.echo_s.append(time.perf_counter() - t0)
                        run.echo_rounds.append(r)
                if probe is not None:
                    run.probes.append(probe())
    finally:
        for client in clients.values():
            await client.close()
    return run


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
