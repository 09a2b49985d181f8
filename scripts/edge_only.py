"""Reference chains for the bench that need PyTorch (kept out of the torch-free device package).

    python scripts/edge_only.py serve --model artifacts/test-quick --port 50070
    python scripts/edge_only.py time-encoder --model artifacts/test-quick --n 2000

``serve``: the "edge-only" baseline. A gRPC server (generic method
``/bench.EdgeOnly/Classify``, raw bytes in and out, no proto) that receives the raw image,
784 uint8 pixels for Fashion-MNIST, and runs the whole model on the edge: normalise, encoder,
decoder on the noiseless symbols (no channel), softmax. The reply is the float32
probabilities. One request, one model call (batch 1), PyTorch eager, 1 intra-op thread.

``time-encoder``: PyTorch eager ``model.encode`` at batch 1 on the same inputs the device's
ONNX Runtime encoder gets; prints JSON ``{"torch_eager_s": [...]}`` (seconds per call).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.manifest import load_manifest  # noqa: E402
from shared.nn.model import CoInferenceModel  # noqa: E402
from shared.nn.zoo import load_model  # noqa: E402
from tools.bench.echo import EDGE_ONLY_SERVICE, serve_raw  # noqa: E402


def load_full_model(model_dir: Path) -> CoInferenceModel:
    """Both halves from checkpoint.pt (decoder.pt holds only the decoder)."""
    return load_model(model_dir)


class FullPath:
    """uint8 pixels -> probabilities through encoder + decoder, no channel noise."""

    def __init__(self, model_dir: Path, beta: float | None, snr_db: float | None):
        self.manifest = load_manifest(model_dir)
        self.model = load_full_model(model_dir)
        m = self.manifest
        lo, hi = m.beta_range
        beta = beta if beta is not None else (getattr(m, "default_beta", None) or 1e-3)
        self.beta = torch.tensor([[min(max(beta, lo), hi)]], dtype=torch.float32)
        snr = snr_db if snr_db is not None else m.snr_db_range[1]
        self.snr = torch.tensor([[snr]], dtype=torch.float32)
        self.shape = tuple(m.input_shape)
        mean = np.asarray(m.input_mean, np.float32).reshape(-1, 1, 1)
        std = np.asarray(m.input_std, np.float32).reshape(-1, 1, 1)
        self.mean, self.std = mean, std

    def inputs(self, pixels: np.ndarray) -> torch.Tensor:
        x = pixels.astype(np.float32).reshape(self.shape) / 255.0
        return torch.from_numpy(((x - self.mean) / self.std)[None].astype(np.float32))

    @torch.inference_mode()
    def __call__(self, raw: bytes) -> bytes:
        x = self.inputs(np.frombuffer(raw, dtype=np.uint8))
        symbols = self.model.encode(x, self.beta, self.snr)["symbols"]
        logits = self.model.decode(symbols, self.beta, self.snr)
        return torch.softmax(logits, dim=1)[0].numpy().astype(np.float32).tobytes()


def serve(args) -> int:
    torch.set_num_threads(1)
    path = FullPath(args.model, args.beta, args.snr_db)
    path(bytes(int(np.prod(path.shape))))  # warm up

    def classify(request: bytes, _context) -> bytes:
        return path(request)

    banner = f"edge-only: {args.model} on 127.0.0.1:{args.port}"
    serve_raw(EDGE_ONLY_SERVICE, "Classify", classify, args.port, args.workers, banner)
    return 0


def time_encoder(args) -> int:
    torch.set_num_threads(1)
    path = FullPath(args.model, args.beta, args.snr_db)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(args.n, int(np.prod(path.shape))), dtype=np.uint8)
    times = []
    with torch.inference_mode():
        for i in range(args.n + args.warmup):
            x = path.inputs(raw[i % args.n])
            start = time.perf_counter()
            path.model.encode(x, path.beta, path.snr)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    print(json.dumps({"torch_eager_s": times, "threads": torch.get_num_threads()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "time-encoder"):
        p = sub.add_parser(name)
        p.add_argument("--model", type=Path, required=True)
        p.add_argument("--beta", type=float, default=None)
        p.add_argument("--snr-db", type=float, default=None, help="default: top of the range")
        if name == "serve":
            p.add_argument("--port", type=int, required=True)
            p.add_argument("--workers", type=int, default=64)
        else:
            p.add_argument("--n", type=int, default=2000)
            p.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)
    return serve(args) if args.command == "serve" else time_encoder(args)


if __name__ == "__main__":
    sys.exit(main())
