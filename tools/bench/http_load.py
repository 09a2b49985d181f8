"""The HTTP part of a bench level against the device: the Python generator (httpx async) or
hey with a paced Python probe beside it for the stages and the accuracy."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np

from tools.bench.hey import hey_level, hey_path, hey_version
from tools.bench.load import PYTHON_HTTP, device_level, paced_device_probe
from tools.bench.stats import stage_summary, summarise_level

# at C=1 the stages come from the probe run alone after hey's level (a probe beside hey
# would make it two requests in flight): this many sequential requests, at most this long
PROBE_ALONE_N, PROBE_ALONE_S = 300, 3.0


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
