"""Start the live stack (edge server, channel proxy, device) as real processes on free
loopback ports, wait until each is ready, and always stop them: one way for the tests, the
bench and the demo.

    with running_stack("artifacts/quick", psnr_db=20.0) as stack:
        httpx.post(f"{stack.url}/v1/infer", ...)          # device URL
        grpc.insecure_channel(stack.channel_target)       # channel HOST:PORT
        stack.stop("edge"); stack.start_edge()            # restart one service, same port

    with running_stack("artifacts/quick", edge_replicas=2) as stack:
        stack.edge_target                                 # ipv4:127.0.0.1:p1,127.0.0.1:p2
        stack.kill("edge-1")                              # SIGKILL replica 1 (a crash)

Each service is started with the flags it always had here (``--host 127.0.0.1``, a free
``--port``, ``--metrics-port 0`` unless ``metrics_ports=True`` picks free ones); anything
else goes in ``edge_flags`` / ``channel_flags`` / ``device_flags``. Readiness: the standard
gRPC health check for edge and channel, ``GET /readyz`` for the device (``device_ready_path``).
With ``edge_replicas=N`` the edge runs as N processes named ``edge``, ``edge-1``, ...
(replica ids the same), each on its own port, and the channel reaches them all through a
static ``ipv4:`` address list (round_robin, health-checked; see channel/edge_client.py).
Processes get SIGTERM on exit (SIGKILL if they hang); a failed start raises with the
process's output.

A multi-link (QML-IB) model runs ``n_devices`` = K devices, named ``device`` (link 0),
``device1`` ... ``device<K-1>``, each started with its ``--link-index``; ``stack.urls`` lists
their base URLs in link order. ``edge_replicas`` = R edge processes (``edge``, ``edge-1``,
...) behind one ``ipv4:`` target the channel balances over.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from shared.service.checks import check_at_least
from tools.processes import (
    HOST,
    PYTHON,
    REPO,
    ServiceProcess,
    free_port,
    wait_for_grpc_health,
    wait_for_http,
)

SERVICES = ("edge", "channel", "device")  # start order; stopped in reverse


def repo_relative(path: str | Path) -> str:
    """``path`` as a report shows it: relative to the repository when inside it, else only
    its last part (a report names no path of the machine that wrote it)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return f"(outside the repository)/{Path(path).name}"


def replica_name(index: int) -> str:
    """The process name of edge replica ``index``: ``edge``, ``edge-1``, ``edge-2``, ..."""
    return "edge" if index == 0 else f"edge-{index}"


class Stack:
    """Edge, channel and device processes on fixed free ports, started and stopped by name.

    ``model_dir`` is the device's model and, unless ``edge_model_dir`` is given, the edge's.
    ``psnr_db`` is the channel's ``--psnr`` (dB; None leaves the channel's default).
    ``grpc_tls`` = ``(ca, client cert, client key)``: how the readiness checks reach edge and
    channel when they serve TLS (their TLS flags go in ``edge_flags`` / ``channel_flags``).
    ``checkout`` runs the services from another checkout of the project (default: this one).
    """

    def __init__(
        self,
        model_dir: str | Path,
        psnr_db: float | None = 20.0,
        *,
        edge_model_dir: str | Path | None = None,
        edge_flags: Sequence[object] = (),
        channel_flags: Sequence[object] = (),
        device_flags: Sequence[object] = (),
        metrics_ports: bool = False,
        device_ready_path: str = "/readyz",
        start_timeout_s: Mapping[str, float] | None = None,
        grpc_tls: Sequence[Path | str | None] | None = None,
        edge_replicas: int = 1,
        n_devices: int = 1,
        checkout: str | Path = REPO,
    ) -> None:
        check_at_least("edge_replicas", edge_replicas, 1)
        self.grpc_tls = grpc_tls
        self.edge_replicas = edge_replicas
        self.replicas = [replica_name(i) for i in range(edge_replicas)]
        self.n_devices = n_devices
        self.device_names = ["device", *(f"device{k}" for k in range(1, n_devices))]
        self.services = (*self.replicas, "channel", *self.device_names)
        self.model_dir = Path(model_dir)
        self.edge_model_dir = Path(edge_model_dir) if edge_model_dir else self.model_dir
        self.psnr_db = psnr_db
        self.flags = {"edge": list(edge_flags), "channel": list(channel_flags),
                      "device": list(device_flags)}  # fmt: skip
        self.ports = {name: free_port() for name in self.services}
        self.metrics_ports = {
            name: free_port() if metrics_ports else 0 for name in (*self.replicas, "channel")
        }
        self.device_ready_path = device_ready_path
        self.start_timeout_s = {"edge": 120.0, "channel": 60.0, "device": 60.0}
        self.start_timeout_s.update(start_timeout_s or {})
        for name in self.device_names[1:]:
            self.start_timeout_s.setdefault(name, self.start_timeout_s["device"])
        self.procs: dict[str, ServiceProcess] = {}
        self.checkout = Path(checkout)

    # --- addresses ---
    @property
    def edge_target(self) -> str:
        """What the channel dials: HOST:PORT, or an ``ipv4:`` list of every replica."""
        if self.edge_replicas == 1:
            return self.replica_target("edge")
        return "ipv4:" + ",".join(self.replica_target(name) for name in self.replicas)

    def replica_target(self, name: str) -> str:
        """HOST:PORT of one edge replica (``edge``, ``edge-1``, ...)."""
        return f"{HOST}:{self.ports[name]}"

    @property
    def channel_target(self) -> str:
        return f"{HOST}:{self.ports['channel']}"

    @property
    def url(self) -> str:
        """The device's base URL (link 0's with several devices)."""
        return f"http://{HOST}:{self.ports['device']}"

    @property
    def urls(self) -> list[str]:
        """Every device's base URL, in link order."""
        return [f"http://{HOST}:{self.ports[name]}" for name in self.device_names]

    # --- commands ---
    def command(self, name: str) -> list[object]:
        """The command line that starts service ``name``."""
        if name in self.replicas:
            base = [PYTHON, "-m", "edge_server", "--model", self.edge_model_dir, "--host", HOST,
                    "--port", self.ports[name], "--replica-id", name,
                    "--metrics-port", self.metrics_ports[name]]  # fmt: skip
            return base + self.flags["edge"]
        elif name == "channel":
            base = [PYTHON, "-m", "channel", "--edge", self.edge_target, "--host", HOST,
                    "--port", self.ports["channel"],
                    "--metrics-port", self.metrics_ports["channel"]]  # fmt: skip
            if self.psnr_db is not None:
                base += ["--psnr", self.psnr_db]
        elif name in self.device_names:
            base = [PYTHON, "-m", "device", "--model", self.model_dir,
                    "--channel", self.channel_target,
                    "--host", HOST, "--port", self.ports[name]]  # fmt: skip
            if self.n_devices > 1:
                base += ["--link-index", self.device_names.index(name)]
            return base + self.flags["device"]
        else:
            raise ValueError(f"unknown service {name!r}; expected one of {self.services}")
        return base + self.flags[name]

    # --- life cycle ---
    def start_service(self, name: str) -> ServiceProcess:
        """Start ``name`` (stopping an earlier one first) and wait until it is ready."""
        proc = self._launch(name)
        self._wait_ready(name)
        return proc

    def _launch(self, name: str) -> ServiceProcess:
        self.stop(name)
        proc = self.procs[name] = ServiceProcess(self.command(name), cwd=self.checkout)
        return proc

    def _wait_ready(self, name: str) -> None:
        proc = self.procs[name]
        timeout_s = self.start_timeout_s["edge" if name in self.replicas else name]
        if name in self.device_names:
            url = f"http://{HOST}:{self.ports[name]}"
            wait_for_http(f"{url}{self.device_ready_path}", proc, timeout_s)
        else:
            target = self.channel_target if name == "channel" else self.replica_target(name)
            wait_for_grpc_health(target, proc, timeout_s, tls=self.grpc_tls)

    def start_edge(self) -> ServiceProcess:
        return self.start_service("edge")

    def start(self, services: Sequence[str] | None = None) -> Stack:
        """Start ``services`` (default all) in edge -> channel -> device order (the edge
        replicas side by side; ``"device"`` starts every device of a multi-link stack); on
        failure stop them all."""
        services = self.services if services is None else services
        if "device" in services:
            services = [*services, *self.device_names]
        try:
            if "edge" in services:
                for name in self.replicas:
                    self._launch(name)
                for name in self.replicas:
                    self._wait_ready(name)
            for name in ("channel", *self.device_names):
                if name in services:
                    self.start_service(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *names: str) -> dict[str, int | None]:
        """Stop the named services (all when none are named), device first; returns their
        exit codes (0 after a graceful SIGTERM shutdown)."""
        codes = {}
        for name in reversed(self._order()):
            if (not names or name in names) and name in self.procs:
                proc = self.procs.pop(name)
                codes[name] = proc.stop()
                proc.cleanup()
        return codes

    def kill(self, name: str) -> None:
        """SIGKILL one service (a crash: no graceful shutdown); it stays in :attr:`procs`."""
        self.procs[name].proc.kill()
        self.procs[name].proc.wait()

    def _order(self) -> list[str]:
        return list(self.services)

    def alive(self) -> bool:
        """Every started service still runs."""
        return all(proc.alive() for proc in self.procs.values())

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def running_stack(
    model_dir: str | Path,
    psnr_db: float | None = 20.0,
    *,
    services: Sequence[str] | None = None,
    **options,
) -> Iterator[Stack]:
    """Start ``services`` of a :class:`Stack` (options as its constructor), yield it, and
    always stop every process it started."""
    stack = Stack(model_dir, psnr_db, **options)
    try:
        stack.start(services)
        yield stack
    finally:
        stack.stop()
