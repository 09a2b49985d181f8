"""The processes of a bench run: our stack (tools.stack), the two echo hops
(tools.bench.echo) and the edge-only reference (scripts/edge_only.py), each entered on an
``ExitStack`` so that closing it stops them."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from tools.processes import PYTHON, REPO, ServiceProcess, free_port, wait_for_grpc_ready
from tools.stack import Stack


def start_grpc_proc(stack: ExitStack, args: list, port: int) -> None:
    """A reference-chain process (no health service): wait until it accepts connections."""
    proc = stack.enter_context(ServiceProcess(args))
    wait_for_grpc_ready(f"127.0.0.1:{port}", proc)


def start_echo_chain(stack: ExitStack, reply_bytes: int) -> str:
    """The two echo hops (tools.bench.echo); returns the first hop's HOST:PORT."""
    p1, p2 = free_port(), free_port()
    start_grpc_proc(stack, [PYTHON, "-m", "tools.bench.echo", "--port", p2,
                            "--reply-bytes", reply_bytes], p2)  # fmt: skip
    start_grpc_proc(stack, [PYTHON, "-m", "tools.bench.echo", "--port", p1,
                            "--next", f"127.0.0.1:{p2}"], p1)  # fmt: skip
    return f"127.0.0.1:{p1}"


def start_stack(stack: ExitStack, model_dir: Path, psnr_db: float, edge_flags=()) -> str:
    """Edge, channel, device on free loopback ports (tools.stack); returns the device URL."""
    live = stack.enter_context(
        Stack(model_dir, psnr_db, edge_flags=edge_flags, device_flags=["--log-level", "warning"])
    )
    live.start()
    return live.url


def start_edge_only(stack: ExitStack, model_dir: Path, beta: float) -> str:
    """The edge-only reference (the whole model in PyTorch eager at the edge); returns its
    HOST:PORT."""
    port = free_port()
    command = [PYTHON, str(REPO / "scripts" / "edge_only.py"), "serve",
               "--model", model_dir, "--port", port, "--beta", beta]  # fmt: skip
    start_grpc_proc(stack, command, port)
    return f"127.0.0.1:{port}"
