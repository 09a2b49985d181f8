"""The measuring workers of ``scripts/gpu_check.py``, each run in its own subprocess
(``python scripts/gpu_check.py _decode|_edge|_nccl ...``) and answering one JSON line:
decoder throughput, the in-process edge service, and an nccl process group of one."""

from __future__ import annotations

import asyncio
import os
import time

BATCHES = (1, 8, 64, 256, 1024)


def decode_bench(model: str, device: str, threads: int | None, min_s: float) -> dict:
    import numpy as np
    import torch

    from edge_server.decoder import DecoderRuntime

    if threads:
        torch.set_num_threads(threads)
    decoder = DecoderRuntime(model, device=device)
    d = decoder.d
    rng = np.random.default_rng(0)
    rows = []
    for n in BATCHES:
        y = rng.normal(0, 0.8, size=(n, d)).astype(np.float32)
        beta = np.full(n, 1e-3, np.float32)
        snr = rng.uniform(0, 25, n).astype(np.float32)
        for _ in range(5):
            decoder(y, beta, snr)
        times = []
        start = time.perf_counter()
        while (time.perf_counter() - start < min_s or len(times) < 10) and len(times) < 20000:
            t0 = time.perf_counter()
            decoder(y, beta, snr)  # numpy in, numpy out: the edge's whole decoder call
            times.append(time.perf_counter() - t0)
        times = np.array(times)
        rows.append({
            "batch": n, "calls": len(times), "ms_p50": 1e3 * float(np.median(times)),
            "ms_mean": 1e3 * float(times.mean()), "images_per_s": n / float(times.mean()),
        })  # fmt: skip
    return {"device": device, "torch_threads": torch.get_num_threads(), "rows": rows}


def edge_bench(model: str, device: str, requests: int, in_flight: int, max_batch: int) -> dict:
    import numpy as np

    from edge_server.server import load_edge
    from edge_server.settings import EdgeSettings
    from shared.rpc import coinference_pb2 as pb

    settings = EdgeSettings(model=model, device=device, max_batch_size=max_batch)
    edge = load_edge(settings)
    m = edge.manifest
    rng = np.random.default_rng(0)
    symbols = rng.normal(0, 0.8, size=(256, m.d)).astype(np.float32)
    messages = [
        pb.Transmission(
            request_id=f"r{i}", model_id=m.model_id, d=m.d, beta=1e-3,
            snr_db=float(rng.uniform(0, 25)), symbols=symbols[i % 256].tolist(),
        )
        for i in range(requests)
    ]  # fmt: skip

    async def main() -> dict:
        await edge.start()
        gate = asyncio.Semaphore(in_flight)

        async def one(msg):
            async with gate:
                return await edge.decode(msg)

        try:
            await asyncio.gather(*(one(msg) for msg in messages[:512]))  # warm-up
            start = time.perf_counter()
            replies = await asyncio.gather(*(one(msg) for msg in messages))
            wall = time.perf_counter() - start
        finally:
            await edge.close()
        decode_s = np.array([r.timings.decode_s for r in replies])
        return {
            "device": device, "requests": requests, "in_flight": in_flight,
            "max_batch_size": max_batch, "wall_s": wall, "requests_per_s": requests / wall,
            "decode_s_p50_ms": 1e3 * float(np.median(decode_s)),
        }  # fmt: skip

    return asyncio.run(main())


def nccl_probe(model_dir: str, steps: int) -> dict:
    """Join an nccl process group of one (torchrun sets the rendezvous) and train DDP steps."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from shared.nn.zoo import load_model
    from trainer import distributed

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl")
    ranks = distributed.current()
    model = load_model(
        model_dir, decoder_only=True
    ).cuda()  # the decoder side is enough for a DDP step
    net = DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    d = model.config.d
    losses = []
    for _ in range(steps):
        y = torch.randn(128, d, device="cuda")
        b = torch.full((128, 1), 1e-3, device="cuda")
        s = torch.full((128, 1), 10.0, device="cuda")
        target = torch.randint(0, 10, (128,), device="cuda")
        loss = torch.nn.functional.cross_entropy(net.module.decode(y, b, s), target)
        # DDP's reducer runs only through forward(); all-reduce the grads through nccl here
        opt.zero_grad()
        loss.backward()
        for p in net.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
        opt.step()
        losses.append(loss.item())
    value = torch.tensor([1.0, 2.0], device="cuda")
    dist.all_reduce(value)
    out = {
        "backend": dist.get_backend(), "world_size": ranks.world_size, "rank": ranks.rank,
        "nccl_version": ".".join(map(str, torch.cuda.nccl.version())),
        "all_reduce": value.tolist(), "ddp_steps": steps,
        "loss_first_last": [losses[0], losses[-1]],
    }  # fmt: skip
    distributed.shutdown()
    return out
