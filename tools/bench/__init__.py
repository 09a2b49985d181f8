"""Load bench of the co-inference stack, with two reference chains (no PyTorch here).

    python -m tools.bench                                   # start a stack, full run
    python -m tools.bench --duration 5 --concurrency 1,4,16,64
    python -m tools.bench --generator hey                   # hey drives the HTTP part
    python -m tools.bench --url http://127.0.0.1:8080 --no-edge-only  # a running device

Model: ``--model DIR``; without it the first of ``artifacts/quick`` and
``artifacts/test-quick`` that holds a manifest, else a quick 4-bit model is trained into
``artifacts/quick`` (``python -m trainer train --quick --bits 4 --out artifacts/quick``,
needs the torch extra; ``--no-train`` fails with this hint instead).

What one run measures (all latencies in seconds in the JSON, milliseconds in the tables):

1. **ours**: a concurrency sweep against the device's ``POST /v1/infer`` (PNG bodies of
   Fashion-MNIST test images, closed loop: each of C workers sends its next image as soon as
   the previous answer arrives) for ``--duration`` seconds per level: throughput, p50/p90/
   p95/p99 of the HTTP round trip and of every stage in the reply's ``latency_s``, accuracy,
   symbols and bits per image. The load generator (``--generator``): ``python`` (httpx async,
   every request a different image, stages from every reply) or ``hey`` (compiled, one PNG
   body, less CPU taken from the system under test; stages and accuracy then come from a
   paced Python probe of ``--probe-rate`` req/s running beside it, recorded under ``probe``).
2. **echo**: a bare gRPC echo through the same two hops as device -> channel -> edge
   (bench client -> hop1 -> hop2 -> back, ``python -m tools.bench.echo``), generic raw-bytes
   methods, with the request and reply sizes of a real ``Transmission`` / ``InferenceReply``.
3. **edge-only**: the raw image (784 uint8 pixels) sent over one gRPC hop to an edge that
   runs the whole model (encoder + decoder, no channel noise) in PyTorch eager at batch 1
   (``scripts/edge_only.py serve``, started as a subprocess because it needs torch).
4. **encoder**: the device's ONNX Runtime encoder vs PyTorch eager ``model.encode`` at
   batch 1, 1 thread each (``scripts/edge_only.py time-encoder`` for the torch side).
5. **batching**: the top concurrency level again with the edge's ``--max-batch-size 1``.
6. **span_c1**: the C=1 device span paired with the echo chain (when C=1 is in the sweep):
   after the sweep, with our stack still up, ``--span-rounds`` rounds of 100 device
   requests (a light HTTP/1.1 client) and 100 echo calls in turn, the first 10 of each
   block dropped, so both see the same machine. The C=1 span targets use it. A cache probe
   after every round (:mod:`tools.bench.contention`) tells quiet rounds from rounds when
   something outside the stack evicted the shared cache; ``span_c1["quiet"]`` has the
   quiet rounds' figures, reported beside those of all rounds.

The gRPC chains (echo, edge-only) are always driven by the Python grpc.aio generator. Every
sweep row names its ``generator``; ``results.json`` has ``generator: {http, grpc}``.

Bytes on the wire and air-time per image (the convention, also written in the JSON):
``payload bits`` are what the radio must carry: ours ``n_active symbols x bits_per_symbol``
(4 for a 4-bit model, 32 for float symbols), edge-only ``784 pixels x 8 bits``.
Air-time is modelled at ``--baud`` symbols/s (9,600 Bd) with the *same* bits per symbol for
both: ours ``n_active / baud``, edge-only ``(784 x 8 / bits_per_symbol) / baud``. The
serialised protobuf request sizes (what loopback gRPC actually carried) are reported too.

Writes ``results.json``, ``sweep.csv`` and ``tables.md`` under ``--out`` (reports/bench).
The stack is started with :mod:`tools.stack`, the same launcher the tests use.
"""
