"""The device half of the model: ``encoder.onnx`` in ONNX Runtime (no PyTorch).

Contract (docs/ARCHITECTURE.md): inputs ``x`` float32 [N, *input_shape] (normalised),
``beta`` float32 [N, 1] (linear), ``snr_db`` float32 [N, 1] (dB); outputs ``symbols``
float32 [N, d] (peak <= 1, zero past the active prefix), ``n_active`` int64 [N], and
``levels`` int64 [N, d] when the model is quantized.

A multi-link (QML-IB) model has one encoder per view (``encoder-link<k>.onnx``): the device
built with ``link_index=k`` runs link k's encoder on its own view, which it crops from the
full image (shared/views.py), so callers always pass whole images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.manifest import ENCODER_NAME, Manifest, ManifestError, load_manifest

UNQUANTIZED_BITS = 32  # an unquantized symbol counts as one float32


@dataclass(frozen=True)
class Encoded:
    """Encoder outputs for a batch of N inputs."""

    symbols: np.ndarray  # float32 [N, d]
    n_active: np.ndarray  # int64 [N], leading dimensions the encoder marks active
    levels: np.ndarray | None  # int64 [N, d] level indices, or None when unquantized


@dataclass(frozen=True)
class Transmit:
    """What one sample puts on the air."""

    symbols: np.ndarray  # float32 [n], the transmitted prefix (quantized amplitudes)
    n_symbols: int  # n = len(symbols)
    bits: int  # n × bits per symbol (32 per unquantized float)


class OnnxEncoder:
    """Runs ``encoder.onnx`` from a model folder and picks the prefix to transmit."""

    def __init__(
        self,
        model_dir: str | Path,
        manifest: Manifest | None = None,
        threads: int = 1,
        link_index: int | None = None,
    ):
        model_dir = Path(model_dir)
        self.manifest = manifest or load_manifest(model_dir)
        self.n_links = self.manifest.n_links
        self.link_index, self.view = None, None
        name = ENCODER_NAME
        if self.n_links > 1:
            if link_index is None:
                raise ManifestError(
                    f"{model_dir} is a {self.n_links}-link model: give this device its link "
                    f"(--link-index 0..{self.n_links - 1})"
                )
            try:
                name = self.manifest.link(link_index)["encoder"]
                self.view = self.manifest.view(link_index)
            except ValueError as exc:
                raise ManifestError(str(exc)) from None
            self.link_index = link_index
        elif link_index not in (None, 0):
            raise ManifestError(f"link index {link_index} given, but {model_dir} is single-device")
        path = model_dir / name
        if not path.is_file():
            raise ManifestError(f"no {name} in {model_dir}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name for i in self.session.get_inputs()}
        if inputs != {"x", "beta", "snr_db"}:
            raise ManifestError(f"{path}: inputs {sorted(inputs)}, expected x, beta, snr_db")
        self.output_names = [o.name for o in self.session.get_outputs()]
        for name in ("symbols", "n_active"):
            if name not in self.output_names:
                raise ManifestError(f"{path}: no output {name!r} (has {self.output_names})")
        self.quantized = self.manifest.bits is not None
        if self.quantized and "levels" not in self.output_names:
            raise ManifestError(f"{path}: quantized model without a 'levels' output")

    @property
    def bits_per_symbol(self) -> int:
        """Bits one transmitted symbol costs: the quantizer's bits, or 32 for a float."""
        return int(self.manifest.bits) if self.quantized else UNQUANTIZED_BITS

    def encode(self, x: np.ndarray, beta: float, snr_db: float) -> Encoded:
        """Encode a batch ``x`` [N, *input_shape] at one beta (linear) and SNR (dB)."""
        expected = tuple(self.manifest.input_shape)
        if np.shape(x)[1:] != expected:
            raise ValueError(
                f"x has shape {np.shape(x)}, expected [N, {', '.join(map(str, expected))}]"
            )
        if self.view is not None:
            x = self.view.crop(np.asarray(x))  # this device's view of the whole image
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = x.shape[0]
        feeds = {
            "x": x,
            "beta": np.full((n, 1), beta, dtype=np.float32),
            "snr_db": np.full((n, 1), snr_db, dtype=np.float32),
        }
        outputs = dict(zip(self.output_names, self.session.run(None, feeds), strict=True))
        levels = outputs.get("levels") if self.quantized else None
        return Encoded(
            symbols=np.asarray(outputs["symbols"], dtype=np.float32).reshape(n, -1),
            n_active=np.asarray(outputs["n_active"], dtype=np.int64).reshape(n),
            levels=None if levels is None else np.asarray(levels, dtype=np.int64).reshape(n, -1),
        )

    def transmit(self, encoded: Encoded, index: int, variable_length: bool) -> Transmit:
        """The symbols sample ``index`` puts on the air: the active prefix, or all d."""
        d = encoded.symbols.shape[1]
        n = int(np.clip(encoded.n_active[index], 0, d)) if variable_length else d
        return Transmit(
            symbols=encoded.symbols[index, :n],
            n_symbols=n,
            bits=n * self.bits_per_symbol,
        )
