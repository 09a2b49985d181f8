"""`hey` (a compiled Go HTTP load generator, Debian package ``hey``) as the closed-loop
generator of the device's HTTP API: it leaves more of the CPU to the system under test than
the Python generator does.

``hey -z <duration>s -c <C> -m POST -T image/png -D <png> -o csv <url>/v1/infer`` sends one
body from C workers back to back; its CSV has one line per answered request (seconds, 0.1 ms
resolution). Requests that got no HTTP answer (connection errors, hey's timeout) are not in
the CSV, so they are not counted as errors here.
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
from pathlib import Path


def hey_path() -> str | None:
    """The ``hey`` executable on PATH, or None."""
    return shutil.which("hey")


def hey_version() -> str:
    """``hey <Debian version>`` when dpkg knows it, else ``hey``."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "hey"], capture_output=True, text=True
        )
    except OSError:
        return "hey"
    version = result.stdout.strip() if result.returncode == 0 else ""
    return f"hey {version}".strip()


def parse_hey_csv(text: str) -> tuple[list[dict], float]:
    """Records (``ok``: HTTP 200, ``latency_s``, ``status``) and the window's length in
    seconds (the last answer's start offset plus its response time)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "response-time" not in rows[0]:
        raise ValueError(f"hey printed no CSV results:\n{text[-2000:]}")
    records, end_s = [], 0.0
    for row in rows:
        latency_s = float(row["response-time"])
        status = int(row["status-code"])
        end_s = max(end_s, float(row["offset"]) + latency_s)
        records.append({"ok": status == 200, "latency_s": latency_s, "status": status})
    return records, end_s


async def hey_level(
    url: str, body_file: Path, concurrency: int, duration_s: float, timeout_s: float
) -> tuple[list[dict], float]:
    """One closed-loop level of ``hey`` against ``POST {url}/v1/infer`` with a PNG body."""
    command = [
        hey_path() or "hey", "-z", f"{duration_s:g}s", "-c", str(concurrency), "-m", "POST",
        "-T", "image/png", "-D", str(body_file), "-t", str(max(1, round(timeout_s))),
        "-o", "csv", f"{url.rstrip('/')}/v1/infer",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {stderr.decode()}")
    return parse_hey_csv(stdout.decode())
