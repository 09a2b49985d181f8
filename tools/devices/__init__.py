"""Many-devices load mode: N simulated devices (up to thousands) as open-loop streams through
the channel proxy into one or more edge replicas.

    python -m tools.devices --devices 1000,2000 --rate 1 --edge-replicas 1 --edge-batching on,off
    python -m tools.devices --devices 1000 --concurrency 256 --edge-batching on,off  # saturation
    python -m tools.devices --devices 1000 --rate 1 --transport unary,stream  # streams

Each device has its own Poisson arrival rate, β and PSNR random walk
(:mod:`tools.devices.population`). The device encoder (``encoder.onnx`` in ONNX Runtime, as
the device process runs it) encodes a set of test images once per (β, SNR) grid point
(:mod:`tools.devices.symbols`), so the driver (:mod:`tools.devices.driver`) only sends
pre-encoded symbols over the channel's gRPC ``Transmit``, or, with ``--transport stream``,
over one long-lived ``TransmitStream`` per device (:mod:`tools.devices.transports`): a
thousand devices fit on a two-core box because no device process, HTTP hop or per-request
encode runs. Each
transmission asks the channel for its device's current PSNR (``link_psnr_db``).
:mod:`tools.devices.report` summarises throughput, latency, accuracy, per device and per
replica, and where the time goes (channel, edge queue, decode); the CLI adds the CPU per
answered request of every process (edge, channel, driver) and the mean batch sizes (the
channel's calls to the edge, the edge's decoder calls), for the channel's batching toward
the edge on and off in the same run. :mod:`tools.devices.plot` draws them,
:mod:`tools.devices.profile` runs py-spy on the channel and the edge under that load, and
:mod:`tools.devices.server_kinds` compares gRPC server kinds for the channel's unary path.
"""
