"""Entropy coding of the quantizer's level indices (NumPy + constriction, no torch).

The learned entropy model (``shared/nn/entropy_model.py`` trains it) is a table of logits
L[g, j, k] on a grid of log β: per feature dimension j a categorical distribution over the
2^bits levels k. At a β between two grid points the logits are interpolated linearly in
log β, then P(k | j, β) = softmax_k(L). Both ends read the same table from the manifest
(``manifest.json["entropy_model"]``), so both compute the same probabilities; the device
range-codes the indices with them and the edge decodes. The ideal code length of one image is
sum_j -log2 P(k_j | j, β) bits (``predicted_bits``); the range coder adds at most one 32-bit
word on top of it.
"""

from __future__ import annotations

import functools

import numpy as np

ENTROPY_KEY = "entropy_model"
WORD_BITS = 32  # constriction's compressed words are uint32


class EntropyCodingError(ValueError):
    """Coded bytes that cannot be decoded (wrong length, too long) or indices out of range."""


def interpolation_weights(log_beta_grid: np.ndarray, beta: float) -> tuple[int, int, float]:
    """(i, i+1, f): log β lies a fraction f from grid point i to i+1 (clipped to the grid)."""
    grid = np.asarray(log_beta_grid, dtype=np.float64)
    if len(grid) == 1:
        return 0, 0, 0.0
    pos = float(np.interp(np.log(beta), grid, np.arange(len(grid), dtype=np.float64)))
    lo = min(int(np.floor(pos)), len(grid) - 2)
    return lo, lo + 1, pos - lo


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class IndexEntropyModel:
    """P(level index | dimension, β) from a logits table on a log-β grid (see module doc)."""

    def __init__(self, log_beta_grid, logits):
        self.log_beta_grid = np.asarray(log_beta_grid, dtype=np.float64)
        self.logits = np.asarray(logits, dtype=np.float32)  # [G, d, K]
        if self.logits.ndim != 3 or self.logits.shape[0] != len(self.log_beta_grid):
            raise ValueError(
                f"entropy model: logits {self.logits.shape} must be [G, d, K] with "
                f"G = {len(self.log_beta_grid)} grid points"
            )
        if np.any(np.diff(self.log_beta_grid) <= 0):
            raise ValueError("entropy model: log_beta_grid must be strictly ascending")
        self._probabilities = functools.lru_cache(maxsize=256)(self._compute)

    @property
    def d(self) -> int:
        return self.logits.shape[1]

    @property
    def n_levels(self) -> int:
        return self.logits.shape[2]

    @classmethod
    def from_dict(cls, raw: dict) -> IndexEntropyModel:
        return cls(raw["log_beta_grid"], raw["logits"])

    def to_dict(self) -> dict:
        return {
            "kind": "categorical per dimension, logits linear in log beta",
            "log_beta_grid": self.log_beta_grid.tolist(),
            "logits": np.round(self.logits.astype(np.float64), 5).tolist(),
        }

    @classmethod
    def from_manifest_raw(cls, raw: dict) -> IndexEntropyModel | None:
        """The model in a manifest's raw dict, or None when the model has none."""
        entry = raw.get(ENTROPY_KEY)
        return cls.from_dict(entry) if entry else None

    def _compute(self, beta: float) -> np.ndarray:
        lo, hi, frac = interpolation_weights(self.log_beta_grid, beta)
        logits = (1.0 - frac) * self.logits[lo] + frac * self.logits[hi]
        return softmax(logits.astype(np.float64)).astype(np.float32)

    def probabilities(self, beta: float) -> np.ndarray:
        """[d, K] float32, rows sum to 1 (cached per β)."""
        return self._probabilities(float(beta))

    def predicted_bits(self, indices: np.ndarray, beta: float) -> float:
        """Ideal code length sum_j -log2 P(k_j | j, β) of the first len(indices) dimensions."""
        indices = np.asarray(indices, dtype=np.int64)
        probs = self.probabilities(beta)[: len(indices)]
        return float(-np.log2(probs[np.arange(len(indices)), indices].astype(np.float64)).sum())


def _model_family():
    import constriction

    # perfect=False: every level keeps a non-zero probability after quantisation, so any
    # index can be coded (the model's smallest probabilities only cost extra bits)
    return constriction.stream.model.Categorical(perfect=False)


_FAMILY = None


def _family():
    global _FAMILY
    if _FAMILY is None:
        _FAMILY = _model_family()
    return _FAMILY


def encode_indices(model: IndexEntropyModel, indices: np.ndarray, beta: float) -> bytes:
    """Range-code the level indices of the first len(indices) dimensions; returns the bytes."""
    import constriction

    indices = np.asarray(indices)
    n = len(indices)
    if n > model.d:
        raise EntropyCodingError(f"{n} indices for a model of d = {model.d}")
    if n and (indices.min() < 0 or indices.max() >= model.n_levels):
        raise EntropyCodingError(f"level indices must lie in [0, {model.n_levels - 1}]")
    if n == 0:
        return b""
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(indices.astype(np.int32), _family(), model.probabilities(beta)[:n])
    return encoder.get_compressed().astype("<u4").tobytes()


def max_coded_bytes(model: IndexEntropyModel) -> int:
    """Upper bound on a valid payload: every index at the smallest quantised probability
    (constriction's 24-bit precision) plus two words."""
    return 4 * (2 + int(np.ceil(model.d * 24 / WORD_BITS)))


def decode_indices(model: IndexEntropyModel, coded: bytes, n: int, beta: float) -> np.ndarray:
    """Inverse of :func:`encode_indices`: the n level indices (int64)."""
    import constriction

    if not 0 <= n <= model.d:
        raise EntropyCodingError(f"n_coded must lie in [0, {model.d}], got {n}")
    if n == 0:
        if coded:
            raise EntropyCodingError("coded bytes sent for zero indices")
        return np.zeros(0, dtype=np.int64)
    if len(coded) == 0 or len(coded) % 4 or len(coded) > max_coded_bytes(model):
        raise EntropyCodingError(
            f"coded payload of {len(coded)} bytes is not a whole number of 32-bit words "
            f"in [4, {max_coded_bytes(model)}]"
        )
    words = np.frombuffer(coded, dtype="<u4").astype(np.uint32)
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        out = decoder.decode(_family(), model.probabilities(beta)[:n])
    except Exception as exc:  # constriction raises on inconsistent streams
        raise EntropyCodingError(f"coded payload does not decode: {exc}") from None
    return np.asarray(out, dtype=np.int64)
