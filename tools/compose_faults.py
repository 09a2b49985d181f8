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
import sys
import time

from tools import compose


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.compose_faults", description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the published device port")
    p.add_argument("--kill-after-s", type=float, default=5.0)
    p.add_argument("--duration-s", type=float, default=40.0)
    p.add_argument("--service", default="edge_server", help="the compose service to kill")
    p.add_argument("--out", default=str(compose.REPO / "reports" / "compose-faults"))
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args(argv)

    images = compose.load_images()
    command = compose.compose_command()
    with compose.stack_up(command, args.url, [] if args.no_build else ["--build"], 300):
        load = compose.Load(args.url, images, pause_s=0.02)
        time.sleep(args.kill_after_s)
        killed_at = load.log[-1][0] if load.log else 0.0
        # a crash, not a manual stop: SIGKILL every process in the container but its init, so
        # the service exits with an error and the restart policy applies (`compose kill`
        # counts as a manual stop, after which no policy restarts a container)
        compose.run(command, "exec", "-T", args.service, "sh", "-c", "kill -9 -1", check=False)
        time.sleep(max(0.0, args.duration_s - args.kill_after_s))
        load.stop()
    log = load.log
    after = [(t, s) for t, s, _ in log if t > killed_at]
    failures = [(t, s) for t, s in after if s != 200]
    last_failure = max((t for t, _ in failures), default=killed_at)
    served_after = [t for t, s in after if s == 200 and t > last_failure]
    results = {
        "compose": " ".join(command),
        "service_killed": args.service,
        "requests": len(log),
        "statuses": compose.statuses(log),
        "killed_at_s": killed_at,
        "failed_after_kill": len(failures),
        "outage_s": last_failure - killed_at if failures else 0.0,
        "served_after_recovery": len(served_after),
        "recovered": bool(served_after),
    }
    compose.write_results(args.out, results)
    return 0 if results["recovered"] else 1


if __name__ == "__main__":
    sys.exit(main())
