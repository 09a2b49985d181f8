"""Edge replicas under compose: ``up --scale edge_server=N``, stream requests through
the published device port, read per-replica request counts from /metrics, stop one replica
under load and show that traffic continues on the others.

    COMPOSE=../shared/tools/compose-podman/compose.sh MODEL=quick python -m tools.compose_scale

The channel reaches the edge as ``dns:///edge_server:50052``: every replica's address,
balanced round_robin and health-checked (channel/edge_client.py). The run uses its own compose
project name (``--project``) and image tag (``IMAGE_TAG``, default ``scale``), so it neither
touches another compose project on the machine nor replaces its images. Timeline: load from
the start (closed-loop clients; every device reply names its ``edge_replica``); at
``--stop-after-s`` the per-replica counts are read from each replica's /metrics
(``coinference_requests_total``) and the channel's
(``coinference_channel_edge_replies_total{replica}``), then compose scales the edge down by
one (``docker stop``: SIGTERM, graceful); load for ``--after-s``; then it scales back up
and keeps the load for ``--rejoin-s``, long enough for the edge's maximum connection age
(30 s in docker-compose.yml) to make the channel re-resolve the name and find the new
replica. Writes
``reports/compose-scale/results.json``; exits 1 unless every replica served > 30% before the
stop, the remaining ones served everything after it and (with ``--rejoin-s``) the new replica
served again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tools import compose

METRICS_PORT = 9100  # EDGE_METRICS_PORT / CHANNEL_METRICS_PORT in docker-compose.yml
SCRAPE = (
    "import urllib.request; print(urllib.request.urlopen("
    f"'http://127.0.0.1:{METRICS_PORT}/metrics', timeout=5).read().decode())"
)


def samples(text: str, name: str) -> list[tuple[dict, float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def scrape(command: list[str], service: str, index: int = 1) -> str:
    """The /metrics text of one container of ``service`` (empty when it does not answer)."""
    result = compose.run(
        command, "exec", "-T", "--index", str(index), service, "python", "-c", SCRAPE,
        check=False, capture=True,
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else ""


def replies_by_replica(command: list[str]) -> dict[str, float]:
    """The channel's count of edge replies per replica id (hostname:port of the replica)."""
    text = scrape(command, "channel")
    return {
        labels["replica"]: value
        for labels, value in samples(text, "coinference_channel_edge_replies_total")
    }


def decodes_by_container(command: list[str], replicas: int) -> dict[str, float]:
    """Each replica's own count of Decode calls answered OK (container index -> count)."""
    with ThreadPoolExecutor(replicas) as pool:
        texts = list(pool.map(lambda i: scrape(command, "edge_server", i), range(1, replicas + 1)))
    return {
        f"edge_server_{index}": sum(
            value
            for labels, value in samples(text, "coinference_requests_total")
            if labels.get("method") == "Decode" and labels.get("code") == "OK"
        )
        for index, text in enumerate(texts, start=1)
    }


def by_replica(log: list, start_s: float, end_s: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t, status, replica in log:
        if start_s <= t < end_s and status == 200:
            counts[replica] = counts.get(replica, 0) + 1
    return dict(sorted(counts.items()))


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in sorted(set(after) | set(before))}


def scale_edge(command: list[str], replicas: int) -> None:
    """Compose's own way to change the number of edge replicas under load; scaling down
    stops one with ``docker stop`` (SIGTERM: the edge turns NOT_SERVING and finishes its
    in-flight calls, then it is removed)."""
    compose.run(command, "up", "-d", "--no-recreate", "--no-deps",
        "--scale", f"edge_server={replicas}", "edge_server")  # fmt: skip


@dataclass
class Timeline:
    """One run: every answer, when each step happened (s since the load started), and the
    per-replica counts read just before the stop."""

    log: list
    stopped_at: float
    scaled_at: float
    rejoin_at: float
    end_s: float
    replica_metrics: dict[str, float]
    channel_metrics: dict[str, float]


def run_timeline(command: list[str], args: argparse.Namespace, images: list[bytes]) -> Timeline:
    """Load from the start; read the counts and scale down by one at ``--stop-after-s``;
    after ``--after-s`` scale back up (unless ``--rejoin-s`` 0) for ``--rejoin-s``."""
    load = compose.Load(args.url, images, clients=args.clients)
    time.sleep(args.stop_after_s)
    # per-replica counts as each process exports them (cumulative), just before the stop,
    # read side by side (each read is a `compose exec`, seconds under the podman wrapper)
    with ThreadPoolExecutor(2) as pool:
        replica_read = pool.submit(decodes_by_container, command, args.replicas)
        channel_read = pool.submit(replies_by_replica, command)
        replica_metrics, channel_metrics = replica_read.result(), channel_read.result()
    stopped_at = load.elapsed()
    scale_edge(command, args.replicas - 1)
    scaled_at = load.elapsed()
    time.sleep(args.after_s)
    rejoin_at = load.elapsed()
    if args.rejoin_s > 0:  # scale back up: a new replica the channel must discover
        scale_edge(command, args.replicas)
        rejoin_at = load.elapsed()
        time.sleep(args.rejoin_s)
    end_s = load.stop()
    return Timeline(load.log, stopped_at, scaled_at, rejoin_at, end_s, replica_metrics,
                    channel_metrics)  # fmt: skip


def summarise(command: list[str], args: argparse.Namespace, run_: Timeline) -> dict:
    """results.json of a run; ``ok``: every replica served > 30% before the stop, the
    remaining ones everything after it and (with ``--rejoin-s``) the new one again."""
    log, stopped_at, scaled_at, rejoin_at, end_s = (
        run_.log, run_.stopped_at, run_.scaled_at, run_.rejoin_at, run_.end_s,
    )  # fmt: skip
    before = by_replica(log, 0.0, stopped_at)
    after = by_replica(log, scaled_at + 1.0, rejoin_at)
    total_before = sum(before.values()) or 1
    after_s = max(rejoin_at - scaled_at - 1.0, 1e-9)
    results = {
        "compose": " ".join(command),
        "replicas": args.replicas,
        "clients": args.clients,
        "stop_started_at_s": stopped_at,
        "stop_done_at_s": scaled_at,
        "duration_s": end_s,
        "answered_by_replica_before_stop": before,
        "share_before_stop": {k: v / total_before for k, v in before.items()},
        "replica_metrics_decodes_at_stop": run_.replica_metrics,
        "channel_metrics_replies_at_stop": run_.channel_metrics,
        "statuses_before_stop": compose.statuses(log, 0.0, stopped_at),
        "statuses_during_stop": compose.statuses(log, stopped_at, scaled_at + 1.0),
        "statuses_after_stop": compose.statuses(log, scaled_at + 1.0, rejoin_at),
        "answered_by_replica_after_stop": after,
        "answered_per_s_before": sum(before.values()) / stopped_at,
        "answered_per_s_after": sum(after.values()) / after_s,
    }
    if args.rejoin_s > 0:
        results["scaled_up_at_s"] = rejoin_at
        results["statuses_after_scale_up"] = compose.statuses(log, rejoin_at, end_s + 1)
        # when the new replica got its first request, and the split over the last 10 s
        first = [t for t, status, r in log if t >= rejoin_at and status == 200 and r not in after]
        results["new_replica_first_served_after_s"] = min(first) - rejoin_at if first else None
        results["answered_by_replica_last_10_s"] = by_replica(log, end_s - 10.0, end_s + 1)
    served_all = sum(1 for v in before.values() if v > 0.3 * total_before) == args.replicas
    results["ok"] = served_all and len(after) == args.replicas - 1 and sum(after.values()) > 0
    if args.rejoin_s > 0:
        results["ok"] = results["ok"] and results["new_replica_first_served_after_s"] is not None
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.compose_scale", description=__doc__)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--project", default="hypervib-scale", help="compose project name")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the published device port")
    p.add_argument("--stop-after-s", type=float, default=10.0)
    p.add_argument("--after-s", type=float, default=15.0, help="load after the stop, s")
    p.add_argument(
        "--rejoin-s",
        type=float,
        default=45.0,
        help="then scale back up and keep the load this long (> the edge's 30 s maximum "
        "connection age, after which the channel re-resolves and finds the new replica); "
        "0 = skip",
    )
    p.add_argument("--clients", type=int, default=4, help="concurrent streaming clients")
    p.add_argument("--out", default=str(compose.REPO / "reports" / "compose-scale"))
    p.add_argument("--no-build", action="store_true")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.replicas < 2:
        parser.error("--replicas must be >= 2 (one is stopped under load)")
    os.environ.setdefault("IMAGE_TAG", "scale")
    images = compose.load_images()
    command = [*compose.compose_command(), "-p", args.project]
    up = ["--scale", f"edge_server={args.replicas}"] + ([] if args.no_build else ["--build"])
    with compose.stack_up(command, args.url, up, 600):
        timeline = run_timeline(command, args, images)
    results = summarise(command, args, timeline)
    compose.write_results(args.out, results)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
