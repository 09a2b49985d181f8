"""Edge replicas under compose (issue 12): ``up --scale edge_server=N``, stream requests through
the published device port, read per-replica request counts from /metrics, stop one replica
under load and show that traffic continues on the others.

    COMPOSE=../shared/tools/compose-podman/compose.sh MODEL=quick python -m tools.compose_scale

The channel reaches the edge as ``dns:///edge_server:50052``: every replica's address,
balanced round_robin and health-checked (channel/balancing.py). The run uses its own compose
project name (``--project``) and image tag (``IMAGE_TAG``, default ``scale``), so it neither
touches another compose project on the machine nor replaces its images. Timeline: load from
the start; at ``--stop-after-s`` one replica gets SIGTERM (graceful: health NOT_SERVING,
in-flight calls finish; its restart policy then brings it back); load until ``--duration-s``.
Counts come from the channel's ``coinference_channel_edge_replies_total{replica}`` (which
survives a replica's restart) and each replica's own ``coinference_requests_total``. Writes
``reports/compose-scale/results.json``; exits 1 unless both replicas served before the stop
and requests were answered after it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tools.compose_faults import compose_command, stream, wait_ready

REPO = Path(__file__).resolve().parents[1]
METRICS_PORT = 9100  # EDGE_METRICS_PORT / CHANNEL_METRICS_PORT in docker-compose.yml
SCRAPE = (
    "import urllib.request; print(urllib.request.urlopen("
    f"'http://127.0.0.1:{METRICS_PORT}/metrics', timeout=5).read().decode())"
)


def compose_run(compose: list[str], *args: str, check: bool = True, capture: bool = False):
    if not capture:
        print("$", " ".join([*compose, *args]), flush=True)
    return subprocess.run(
        [*compose, *args], cwd=REPO, check=check, text=True, capture_output=capture
    )


def samples(text: str, name: str) -> list[tuple[dict, float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def scrape(compose: list[str], service: str, index: int = 1) -> str:
    """The /metrics text of one container of ``service`` (empty when it does not answer)."""
    result = compose_run(
        compose, "exec", "-T", "--index", str(index), service, "python", "-c", SCRAPE,
        check=False, capture=True,
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else ""


def replies_by_replica(compose: list[str]) -> dict[str, float]:
    """The channel's count of edge replies per replica id (hostname:port of the replica)."""
    text = scrape(compose, "channel")
    return {
        labels["replica"]: value
        for labels, value in samples(text, "coinference_channel_edge_replies_total")
    }


def decodes_by_container(compose: list[str], replicas: int) -> dict[str, float]:
    """Each replica's own count of Decode calls answered OK (container index -> count)."""
    counts = {}
    for index in range(1, replicas + 1):
        text = scrape(compose, "edge_server", index)
        counts[f"edge_server_{index}"] = sum(
            value
            for labels, value in samples(text, "coinference_requests_total")
            if labels.get("method") == "Decode" and labels.get("code") == "OK"
        )
    return counts


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted(set(after) | set(before))}


def statuses(log: list, start_s: float, end_s: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t, status in log:
        if start_s <= t < end_s:
            counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.compose_scale", description=__doc__)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--project", default="hypervib-scale", help="compose project name")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the published device port")
    p.add_argument("--stop-after-s", type=float, default=10.0)
    p.add_argument("--duration-s", type=float, default=25.0)
    p.add_argument("--clients", type=int, default=4, help="concurrent streaming clients")
    p.add_argument("--out", default=str(REPO / "reports" / "compose-scale"))
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args(argv)
    if args.replicas < 2:
        p.error("--replicas must be >= 2 (one is stopped under load)")

    from device.client import png_bytes
    from device.idx import load_test_set

    os.environ.setdefault("IMAGE_TAG", "scale")
    images = [png_bytes(image) for image in load_test_set(None, 200)[0]]
    compose = [*compose_command(), "-p", args.project]
    up = ["up", "-d", "--scale", f"edge_server={args.replicas}"]
    up += [] if args.no_build else ["--build"]
    compose_run(compose, *up, "edge_server", "channel", "device")
    try:
        ready_s = wait_ready(args.url, 600)
        print(f"stack ready after {ready_s:.1f} s", flush=True)
        log: list = []
        stop = threading.Event()
        clients = [
            threading.Thread(target=stream, args=(args.url, images, stop, log))
            for _ in range(args.clients)
        ]
        replies_0 = replies_by_replica(compose)
        decodes_0 = decodes_by_container(compose, args.replicas)
        start = time.monotonic()
        for client in clients:
            client.start()
        time.sleep(args.stop_after_s)
        replies_1 = replies_by_replica(compose)
        decodes_1 = decodes_by_container(compose, args.replicas)
        stopped_at = time.monotonic() - start
        # SIGTERM to every process in the last replica but its init: a graceful stop
        compose_run(
            compose, "exec", "-T", "--index", str(args.replicas), "edge_server",
            "sh", "-c", "kill -TERM -1", check=False,
        )  # fmt: skip
        time.sleep(max(0.0, args.duration_s - args.stop_after_s))
        stop.set()
        for client in clients:
            client.join()
        end_s = time.monotonic() - start
        replies_2 = replies_by_replica(compose)
    finally:
        compose_run(compose, "down", "-v", check=False)
    before = delta(replies_1, replies_0)
    after = delta(replies_2, replies_1)
    total_before = sum(before.values()) or 1.0
    results = {
        "compose": " ".join(compose),
        "replicas": args.replicas,
        "clients": args.clients,
        "stopped_replica_index": args.replicas,
        "stopped_at_s": stopped_at,
        "duration_s": end_s,
        "replies_by_replica_before_stop": before,
        "share_before_stop": {k: v / total_before for k, v in before.items()},
        "replica_decodes_before_stop": delta(decodes_1, decodes_0),
        "replies_by_replica_after_stop": after,
        "statuses_before_stop": statuses(log, 0.0, stopped_at),
        "statuses_after_stop": statuses(log, stopped_at, end_s + 1),
        "answered_per_s_before": statuses(log, 0.0, stopped_at).get("200", 0) / stopped_at,
        "answered_per_s_after": statuses(log, stopped_at, end_s + 1).get("200", 0)
        / max(end_s - stopped_at, 1e-9),
    }
    served_both = len([v for v in before.values() if v > 0.3 * total_before]) >= 2
    served_after = results["statuses_after_stop"].get("200", 0) > 0
    results["ok"] = served_both and served_after
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
