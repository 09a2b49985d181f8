"""The service core shared by device, channel and edge (torch-free).

- :mod:`shared.service.settings`: settings from CLI flags with environment fallbacks
  (pydantic-settings), strict booleans, usage errors (exit 2) instead of tracebacks;
- :mod:`shared.service.errors`: :class:`ServiceError`, a failure carrying its gRPC status;
- :mod:`shared.service.metrics`: one Prometheus prefix (``coinference_``) and latency buckets;
- :mod:`shared.service.grpc_server`: the ``grpc.aio`` server helper (options, health,
  reflection, metrics/error wrapper of each method, graceful shutdown on SIGTERM/SIGINT);
- :mod:`shared.service.security`: TLS credentials for servers and clients, the admin token
  (bearer parsing, constant-time comparison);
- :mod:`shared.service.logs`: logging set-up;
- :mod:`shared.service.startup`: the start every service's ``main`` shares (settings, logging,
  the load that exits 2 on a bad model, serving in the chosen event loop);
- :mod:`shared.service.checks`: range checks of a component's numeric arguments.
"""
