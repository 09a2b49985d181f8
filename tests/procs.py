"""Helpers for tests that run real service processes on loopback ports (re-exported from
tools/stack.py, which the bench and the demo share).

    with running_stack(quick_model_dir, psnr_db=20.0) as stack:
        httpx.get(f"{stack.url}/readyz")

    port = free_port()
    with ServiceProcess([PYTHON, "-m", "edge_server", "--port", port, ...]) as proc:
        wait_for_grpc_health(f"127.0.0.1:{port}", proc)

Processes are always stopped on exit (SIGTERM, wait, then SIGKILL if they hang).
"""

from tools.processes import wait_for_grpc_ready  # noqa: F401 (re-exported)
from tools.stack import (  # noqa: F401 (re-exported)
    PYTHON,
    REPO,
    SERVICES,
    ServiceProcess,
    Stack,
    free_port,
    running_stack,
    wait_for_grpc_health,
    wait_for_http,
)
