"""Service processes for the tests, the bench and the demo: a subprocess run from the
repository root with its output kept for a failed start (:class:`ServiceProcess`), free
loopback ports, and the waits until a process is ready (gRPC health, a gRPC connection, an
HTTP 200). :mod:`tools.stack` starts the whole live stack with them.
"""

from __future__ import annotations

import http.client
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
HOST = "127.0.0.1"


# Under pytest-xdist each worker takes its ports from its own block below Linux's ephemeral
# range (32768-60999 by default), which the kernel never hands out by itself: between
# free_port() and the service's own bind, another worker's service cannot take the port (a
# port the kernel picked, released, could be picked again for the other worker).
PORT_BLOCK_START, PORT_BLOCK_SIZE = 10_000, 1_000
# each process starts its turn at its own place in the block, so that a tool a test runs as a
# subprocess (it inherits the worker's name) does not walk the same ports as the test itself
_port_turn = itertools.count(os.getpid() % PORT_BLOCK_SIZE)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now: the kernel's pick, or under a
    pytest-xdist worker ("gw<i>") the next free one of that worker's block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None
    start = None if index is None else PORT_BLOCK_START + index * PORT_BLOCK_SIZE
    if start is not None and start + PORT_BLOCK_SIZE <= 32_768:
        for _ in range(PORT_BLOCK_SIZE):
            port = start + next(_port_turn) % PORT_BLOCK_SIZE
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _bindable(port: int) -> bool:
    """Whether a listening socket could bind ``port`` on HOST now (not in use, not in
    TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class ServiceProcess:
    """A subprocess run from the repo root with the repo on PYTHONPATH; a context manager.

    Its output goes to a temp file so that a failed start can show why.
    """

    def __init__(
        self,
        args: Sequence[object],
        env: Mapping[str, str] | None = None,
        cwd: str | Path = REPO,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.args = [str(a) for a in args]
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *filter(None, [full_env.get("PYTHONPATH")])]
        )
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        full_env.update(env or {})
        self.stop_timeout_s = stop_timeout_s
        self._log = tempfile.NamedTemporaryFile(prefix="proc-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            self.args, cwd=cwd, env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def cleanup(self) -> None:
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.cleanup()


def _exited(proc: ServiceProcess) -> RuntimeError:
    return RuntimeError(f"{proc.args} exited with {proc.proc.returncode}:\n{proc.output()}")


def grpc_tls_credentials(tls: Sequence[Path | str | None] | None):
    """Client credentials from ``(ca, cert, key)`` PEM paths (cert/key None without mutual
    TLS); None for plaintext."""
    import grpc

    if tls is None:
        return None
    ca, cert, key = (None if path is None else Path(path).read_bytes() for path in tls)
    return grpc.ssl_channel_credentials(ca, key, cert)


def wait_for_grpc_health(
    target: str,
    proc: ServiceProcess | None = None,
    timeout_s: float = 60.0,
    service: str = "",
    tls: Sequence[Path | str | None] | None = None,
) -> None:
    """Poll the standard gRPC health service until SERVING; fail early if ``proc`` exits.
    ``tls``: ``(ca, cert, key)`` for a TLS server (see :func:`grpc_tls_credentials`)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    last = "no answer"
    credentials = grpc_tls_credentials(tls)
    channel = (
        grpc.insecure_channel(target)
        if credentials is None
        else grpc.secure_channel(target, credentials)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive():
                raise _exited(proc)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last = exc.code().name
            time.sleep(0.1)
    output = proc.output() if proc is not None else ""
    raise TimeoutError(f"{target} not SERVING after {timeout_s} s (last: {last})\n{output}")


def wait_for_grpc_ready(
    target: str, proc: ServiceProcess | None = None, timeout_s: float = 60.0
) -> None:
    """Wait until a gRPC server without a health service accepts connections."""
    import grpc

    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        while time.monotonic() < deadline:
            if proc is not None and not proc.alive():
                raise _exited(proc)
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
            except grpc.FutureTimeoutError:
                continue
    output = proc.output() if proc is not None else ""
    raise TimeoutError(f"{target} not reachable after {timeout_s} s\n{output}")


def wait_for_http(url: str, proc: ServiceProcess | None = None, timeout_s: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise _exited(proc)
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
                last = str(response.status)
        except (OSError, http.client.HTTPException) as exc:  # not up, or not HTTP (yet)
            last = repr(exc)
        time.sleep(0.1)
    output = proc.output() if proc is not None else ""
    raise TimeoutError(f"{url} not ready after {timeout_s} s (last: {last})\n{output}")
