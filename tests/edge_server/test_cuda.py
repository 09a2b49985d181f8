"""The edge's CUDA path (skipped where CUDA is absent, as in CI): the decoders on ``cuda`` give
the CPU's outputs, ``--device auto`` picks the GPU, and the gRPC edge serves from it.

Run on a GPU machine with ``python -m pytest tests/edge_server/test_cuda.py`` (also part of
``python scripts/gpu_check.py``).
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

ATOL = 1e-4  # fp32 on both sides (TF32 is off by default for matmuls)


def random_inputs(d: int, n: int = 256, seed: int = 0, links: int | None = None):
    """Received symbols with noise past ±1, β over the manifest range, SNR over 0-25 dB."""
    rng = np.random.default_rng(seed)
    shape = (n, d) if links is None else (n, links, d)
    received = rng.normal(0, 0.8, size=shape).astype(np.float32)
    beta_shape = (n,) if links is None else (n, links)
    beta = (10 ** rng.uniform(-4.9, -0.1, size=beta_shape)).astype(np.float32)
    snr = rng.uniform(0, 25, size=beta_shape).astype(np.float32)
    return received, beta, snr


def test_decoder_on_cuda_matches_cpu(quick_model_dir) -> None:
    from edge_server.decoder import DecoderRuntime

    cpu = DecoderRuntime(quick_model_dir, device="cpu")
    gpu = DecoderRuntime(quick_model_dir, device="cuda")
    assert gpu.device == "cuda" and next(gpu.model.parameters()).is_cuda
    for n in (1, 7, 256):
        received, beta, snr = random_inputs(cpu.config.d, n, seed=n)
        want, got = cpu(received, beta, snr), gpu(received, beta, snr)
        assert got.shape == want.shape == (n, 10)
        np.testing.assert_allclose(got, want, atol=ATOL)
        assert (got.argmax(1) == want.argmax(1)).all()


def test_auto_picks_cuda(quick_model_dir) -> None:
    from edge_server.decoder import DecoderRuntime
    from shared.nn.accelerator import pick_device

    assert pick_device("auto") == "cuda"
    assert DecoderRuntime(quick_model_dir).device == "cuda"


def test_multi_link_decoder_on_cuda_matches_cpu(quick_multi_model_dir) -> None:
    from edge_server.decoder import DecoderRuntime

    cpu = DecoderRuntime(quick_multi_model_dir, device="cpu")
    gpu = DecoderRuntime(quick_multi_model_dir, device="cuda")
    k, d = cpu.config.n_links, cpu.config.d
    received, beta, snr = random_inputs(d, 64, seed=1, links=k)
    present = np.ones((64, k), np.float32)
    present[::3, 1] = 0  # every third group misses link 1
    np.testing.assert_allclose(
        gpu(received, beta, snr, present), cpu(received, beta, snr, present), atol=ATOL
    )


async def test_grpc_edge_serves_from_cuda(quick_model_dir) -> None:
    """`python -m edge_server --device cuda` as the server builds it: GetInfo says cuda and a
    Decode reply equals the CPU decoder's probabilities."""
    from edge_server.decoder import DecoderRuntime
    from edge_server.server import build_server, load_edge
    from edge_server.settings import EdgeSettings
    from shared.rpc import coinference_pb2 as pb
    from shared.rpc import coinference_pb2_grpc as pb_grpc
    from tests.procs import free_port

    settings = EdgeSettings(
        model=quick_model_dir, device="cuda", host="127.0.0.1", port=free_port()
    )
    edge = load_edge(settings)
    server = build_server(settings, edge)
    await server.start()
    await edge.start()
    cpu = DecoderRuntime(quick_model_dir, device="cpu")
    received, beta, snr = random_inputs(cpu.config.d, 8, seed=2)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
            stub = pb_grpc.EdgeStub(channel)
            info = await stub.GetInfo(pb.GetInfoRequest(), timeout=5)
            assert info.device == "cuda" and info.serving
            for i in range(len(received)):
                reply = await stub.Decode(
                    pb.Transmission(
                        request_id=f"r{i}", model_id=info.model_id, d=info.d,
                        beta=float(beta[i]), snr_db=float(snr[i]),
                        symbols=received[i].tolist(),
                    ),
                    timeout=5,
                )  # fmt: skip
                want = cpu(received[i : i + 1], beta[i : i + 1], snr[i : i + 1])[0]
                np.testing.assert_allclose(reply.probabilities, want, atol=ATOL)
                assert reply.label == int(np.argmax(want))
    finally:
        await server.server.stop(0)
        await edge.close()
