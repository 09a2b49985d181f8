"""Compose under faults: kill the edge container while a client streams, and
measure how the stack recovers with no manual step (restart policy + health checks).

    python -m tools.compose_faults                 # docker compose, or the podman wrapper
    COMPOSE=../shared/tools/compose-podman/compose.sh MODEL=quick python -m tools.compose_faults

Brings up edge_server, channel and device from docker-compose.yml, streams Fashion-MNIST
test images to the published device port, SIGKILLs the edge server's processes inside its
container after ``--kill-after-s`` (a crash: the restart policy brings it back), keeps
streaming until ``--duration-s``, then takes the stack down. Writes
reports/compose-faults/results.json; exits 1 unless requests succeed again afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PODMAN_WRAPPER = REPO.parent / "shared" / "tools" / "compose-podman" / "compose.sh"


def compose_command() -> list[str]:
    if os.environ.get("COMPOSE"):
        return shlex.split(os.environ["COMPOSE"])
    docker = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if docker.returncode == 0:
        return ["docker", "compose"]
    return [str(PODMAN_WRAPPER)]


def run(compose: list[str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    print("$", " ".join([*compose, *args]), flush=True)
    return subprocess.run([*compose, *args], cwd=REPO, check=check, text=True)


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


def stream(url: str, images: list[bytes], stop: threading.Event, log: list) -> None:
    """One client, closed loop: (seconds since start, HTTP status or 'error')."""
    start = time.monotonic()
    with httpx.Client(base_url=url, timeout=5.0) as client:
        k = 0
        while not stop.is_set():
            body = images[k % len(images)]
            try:
                status = client.post("/v1/infer", files={"file": ("x.png", body)}).status_code
            except httpx.HTTPError:
                status = "error"
            log.append((time.monotonic() - start, status))
            k += 1
            time.sleep(0.02)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.compose_faults", description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the published device port")
    p.add_argument("--kill-after-s", type=float, default=5.0)
    p.add_argument("--duration-s", type=float, default=40.0)
    p.add_argument("--service", default="edge_server", help="the compose service to kill")
    p.add_argument("--out", default=str(REPO / "reports" / "compose-faults"))
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args(argv)

    from client.http import png_bytes
    from shared.idx import load_test_set

    images = [png_bytes(image) for image in load_test_set(None, 200)[0]]
    compose = compose_command()
    up = ["up", "-d"] + ([] if args.no_build else ["--build"])
    run(compose, *up, "edge_server", "channel", "device")
    try:
        ready_s = wait_ready(args.url, 300)
        print(f"stack ready after {ready_s:.1f} s", flush=True)
        log: list = []
        stop = threading.Event()
        client = threading.Thread(target=stream, args=(args.url, images, stop, log))
        client.start()
        time.sleep(args.kill_after_s)
        killed_at = log[-1][0] if log else 0.0
        # a crash, not a manual stop: SIGKILL every process in the container but its init, so
        # the service exits with an error and the restart policy applies (`compose kill`
        # counts as a manual stop, after which no policy restarts a container)
        run(compose, "exec", "-T", args.service, "sh", "-c", "kill -9 -1", check=False)
        time.sleep(max(0.0, args.duration_s - args.kill_after_s))
        stop.set()
        client.join()
    finally:
        run(compose, "down", "-v", check=False)
    after = [(t, s) for t, s in log if t > killed_at]
    failures = [(t, s) for t, s in after if s != 200]
    last_failure = max((t for t, _ in failures), default=killed_at)
    served_after = [t for t, s in after if s == 200 and t > last_failure]
    statuses: dict[str, int] = {}
    for _, s in log:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    results = {
        "compose": " ".join(compose),
        "service_killed": args.service,
        "requests": len(log),
        "statuses": statuses,
        "killed_at_s": killed_at,
        "failed_after_kill": len(failures),
        "outage_s": last_failure - killed_at if failures else 0.0,
        "served_after_recovery": len(served_after),
        "recovered": bool(served_after),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0 if results["recovered"] else 1


if __name__ == "__main__":
    sys.exit(main())
