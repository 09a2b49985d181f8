"""The edge's decoder runtime: one artifact folder in, decoded outputs out (DESIGN §4, §5).

The manifest is read once; the model comes from the model zoo (``shared.nn.zoo.load_model``,
the decoder's half in decoder.pt), whatever its family: the single-device model, the K-link
fusion decoder of QML-IB (eq. 15) or the image JSCC decoder of Hyper-AJSCC. What the caller
gets back depends on the manifest's task only.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from shared.manifest import Manifest, ManifestError, load_manifest
from shared.nn.accelerator import pick_device
from shared.nn.zoo import load_model

log = logging.getLogger(__name__)


class DecoderRuntime:
    """(received, beta, snr_db[, present]) -> NumPy outputs, on ``device``.

    Input: received float32 [N, d] (one link) or [N, K, d] (a K-link model; ``present``
    [N, K] marks the links that arrived, a missing link's row is ignored); beta (linear) and
    snr_db (dB) [N] or [N, K]. Output by the manifest's task: class probabilities [N, C]
    (classification), values in target units [N, 1] (regression), reconstructions
    [N, C·H·W] in [0, 1] flattened C-major (reconstruction; shape in the manifest).
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "auto",
        manifest: Manifest | None = None,
        trace: bool = False,
    ):
        self.manifest = manifest if manifest is not None else load_manifest(model_dir)
        self.device = pick_device(device)
        try:
            model = load_model(model_dir, decoder_only=True)
        except (FileNotFoundError, ValueError) as exc:
            raise ManifestError(str(exc)) from exc
        self.model = model.to(self.device)
        self.config = model.config
        self.n_links = self.manifest.n_links
        self.d = self.manifest.d
        self.decode = self.model.decode
        self.traced = trace and self._trace()

    def _trace(self) -> bool:
        """Run the model's decode as a frozen TorchScript trace (no Python module calls per
        layer; TorchScript is deprecated upstream in favour of torch.compile, which costs a
        compile per batch shape); kept only if it gives the eager outputs on batches of other
        sizes than the example, else the eager model stays (logged)."""
        eager = self.model.decode
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's, said below
                module = torch.jit.trace_module(self.model, {"decode": self._example(2)})
                traced = torch.jit.freeze(module.eval(), preserved_attrs=["decode"]).decode
                same = all(torch.allclose(traced(*self._example(n)), eager(*self._example(n)),
                                          rtol=1e-4, atol=1e-6) for n in (1, 5))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - any failure keeps the eager model
            log.warning("decoder trace failed (%s); decoding eagerly", exc)
            return False
        if not same:
            log.warning("traced decoder differs from the eager one; decoding eagerly")
            return False
        self.decode = traced
        return True

    def _example(self, n: int) -> list[torch.Tensor]:
        """Decoder inputs of ``n`` rows, each its own β and SNR within the trained ranges
        (seeded by ``n``, on the device)."""
        k, d = self.n_links, self.d
        rows = torch.Generator().manual_seed(n)
        (beta_low, beta_high), (snr_low, snr_high) = (np.log(self.manifest.beta_range),
                                                      self.manifest.snr_db_range)  # fmt: skip
        uniform = [torch.rand((n, k), generator=rows) for _ in range(2)]
        inputs = [torch.randn((n, k, d) if k > 1 else (n, d), generator=rows),
                  torch.exp(beta_low + (beta_high - beta_low) * uniform[0]),
                  snr_low + (snr_high - snr_low) * uniform[1]]  # fmt: skip
        if k > 1:
            inputs.append(torch.ones(n, k))
        return [tensor.to(self.device) for tensor in inputs]

    @torch.inference_mode()
    def __call__(self, received, beta, snr_db, present=None) -> np.ndarray:
        k, d = self.n_links, self.d
        received = np.asarray(received, dtype=np.float32)
        shape = (k, d) if k > 1 else (d,)
        if received.ndim != len(shape) + 1 or received.shape[1:] != shape:
            wanted = ", ".join(str(n) for n in ("N", *shape))
            raise ValueError(f"received must be [{wanted}], got {received.shape}")
        y = torch.from_numpy(received).to(self.device)
        tensors = [torch.as_tensor(np.asarray(a, np.float32).reshape(-1, k), device=self.device)
                   for a in (beta, snr_db)]  # fmt: skip
        if k > 1:
            ones = np.ones((len(received), k), np.float32) if present is None else present
            tensors.append(torch.as_tensor(np.asarray(ones, np.float32).reshape(-1, k),
                                           device=self.device))  # fmt: skip
        return self.finish(self.decode(y, *tensors))

    def finish(self, out: torch.Tensor) -> np.ndarray:
        """The model's output as the caller gets it, by the manifest's task."""
        task = self.manifest.task
        if task == "classification":
            out = torch.softmax(out, dim=1)
        elif task == "regression":
            out = out * self.config.target_std + self.config.target_mean
        else:  # reconstruction: [N, C, H, W] -> [N, C·H·W]
            out = out.flatten(1)
        return out.float().cpu().numpy()
