"""What the compose tools share (tools.compose_faults, tools.compose_scale): the compose
command (``$COMPOSE``, ``docker compose`` or the podman wrapper), the stack brought up and
always taken down, closed-loop clients streaming test images to the published device port,
and the results written to ``<out>/results.json``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PODMAN_WRAPPER = REPO.parent / "shared" / "tools" / "compose-podman" / "compose.sh"
SERVICES = ("edge_server", "channel", "device")  # what the tools bring up
IMAGES = 200  # distinct test images the clients cycle through


def compose_command() -> list[str]:
    if os.environ.get("COMPOSE"):
        return shlex.split(os.environ["COMPOSE"])
    docker = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if docker.returncode == 0:
        return ["docker", "compose"]
    return [str(PODMAN_WRAPPER)]


def run(compose: list[str], *args: str, check: bool = True, capture: bool = False):
    """``compose *args`` in the repository (printed first unless its output is captured)."""
    if not capture:
        print("$", " ".join([*compose, *args]), flush=True)
    return subprocess.run(
        [*compose, *args], cwd=REPO, check=check, text=True, capture_output=capture
    )


def wait_ready(url: str, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url}/readyz not ready after {timeout_s} s")


@contextmanager
def stack_up(compose: list[str], url: str, up_args: Sequence[str], ready_timeout_s: float):
    """``compose up -d <up_args>`` of :data:`SERVICES`, wait until the device at ``url`` is
    ready; on exit always ``compose down -v``."""
    run(compose, "up", "-d", *up_args, *SERVICES)
    try:
        ready_s = wait_ready(url, ready_timeout_s)
        print(f"stack ready after {ready_s:.1f} s", flush=True)
        yield
    finally:
        run(compose, "down", "-v", check=False)


def load_images() -> list[bytes]:
    """PNG bodies of the first :data:`IMAGES` Fashion-MNIST test images."""
    from client.http import png_bytes
    from shared.idx import load_test_set

    return [png_bytes(image) for image in load_test_set(None, IMAGES)[0]]


def stream(url: str, images: list[bytes], stop: threading.Event, log: list, start: float,
           pause_s: float = 0.0) -> None:  # fmt: skip
    """One client, closed loop until ``stop``: (seconds since ``start``, HTTP status or
    'error', the replica that answered) per request, ``pause_s`` between requests."""
    with httpx.Client(base_url=url, timeout=5.0) as client:
        k = 0
        while not stop.is_set():
            replica = ""
            try:
                response = client.post(
                    "/v1/infer", files={"file": ("x.png", images[k % len(images)])}
                )
                status = response.status_code
                if status == 200:
                    replica = response.json().get("edge_replica") or ""
            except httpx.HTTPError:
                status = "error"
            log.append((time.monotonic() - start, status, replica))
            k += 1
            if pause_s:
                time.sleep(pause_s)


class Load:
    """``clients`` threads streaming to the device at ``url`` (:func:`stream`) from now until
    :meth:`stop`; :attr:`log` holds every answer, timed from :attr:`start`."""

    def __init__(self, url: str, images: list[bytes], clients: int = 1, pause_s: float = 0.0):
        self.log: list[tuple[float, int | str, str]] = []
        self._stop = threading.Event()
        self.start = time.monotonic()
        self._clients = [
            threading.Thread(target=stream, args=(url, images, self._stop, self.log, self.start,
                                                  pause_s))
            for _ in range(clients)
        ]  # fmt: skip
        for client in self._clients:
            client.start()

    def elapsed(self) -> float:
        """Seconds since the load started."""
        return time.monotonic() - self.start

    def stop(self) -> float:
        """Stop every client; returns when the load ended (s since its start)."""
        self._stop.set()
        for client in self._clients:
            client.join()
        return self.elapsed()


def statuses(log: list, start_s: float = 0.0, end_s: float = float("inf")) -> dict[str, int]:
    """How many answers of each status came in [start_s, end_s)."""
    counts: dict[str, int] = {}
    for t, status, _ in log:
        if start_s <= t < end_s:
            counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def write_results(out: str | Path, results: dict) -> None:
    """``<out>/results.json``, also printed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
