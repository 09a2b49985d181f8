"""Entropy coding of the quantizer's level indices (NumPy + constriction, no torch).

The learned entropy model (``shared/nn/entropy_model.py`` trains it) is a table of logits
L[g, j, k] on a grid of log β: per feature dimension j a categorical distribution over the
2^bits levels k. At a β between two grid points the logits are interpolated linearly in
log β, then P(k | j, β) = softmax_k(L). Both ends read the same table from the manifest
(``manifest.json["entropy_model"]``), so both compute the same probabilities; the device
range-codes the indices with them and the edge decodes. The ideal code length of one image is
sum_j -log2 P(k_j | j, β) bits (``predicted_bits``).

The wire format is the range coder's output as a big-endian byte string, cut to as few
bytes as still decode (``encode_indices``). A range coder's output is a number S = 0.w_1 w_2
... in the final interval [L, L + R) of the message; constriction seals the stream with one
whole 32-bit word (S = L rounded up to a word) and its decoder reads zero words past the end
of the data. Any number in [L, L + R) decodes to the same indices, so the encoder sends the
shortest byte prefix whose round-up c_j = ceil(S, 2^-8j) still lies in the interval: it needs
2^-8j <= R roughly, i.e. at most about 8 bits above -log2 R = the ideal code length (plus
constriction's 24-bit probability quantisation), instead of up to 32 with whole words. The
decoder pads the bytes with zeros to whole words. Since c_j falls as j grows and c_j ∈
[L, L + R) is monotone in j, the encoder searches j from the ideal length ceil(bits / 8) up,
each candidate checked by decoding it; the full sealed stream is always valid.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np

ENTROPY_KEY = "entropy_model"
WORD_BYTES = 4  # constriction's compressed words are uint32, sent big-endian


class EntropyCodingError(ValueError):
    """Coded bytes that cannot be decoded (wrong length, too long) or indices out of range."""


class ChecksumError(EntropyCodingError):
    """Coded bytes that fail the CRC-32 the device sent with them (corrupted on the way)."""


def payload_crc32(payload: bytes) -> int:
    """CRC-32 (zlib, the IEEE 802.3 polynomial) of the coded bytes, as an unsigned 32-bit int."""
    return zlib.crc32(payload) & 0xFFFFFFFF


def check_crc32(payload: bytes, expected: int) -> None:
    """Raise :class:`ChecksumError` unless ``payload`` has the CRC-32 ``expected``."""
    got = payload_crc32(payload)
    if got != expected:
        raise ChecksumError(
            f"coded payload fails its CRC-32 (got {got:08x}, the device sent {expected:08x}): "
            "corrupted on the way"
        )


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
        self._code_lengths = functools.lru_cache(maxsize=256)(self._compute_code_lengths)

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

    def _compute_code_lengths(self, beta: float) -> np.ndarray:
        return -np.log2(self.probabilities(beta).astype(np.float64))

    def probabilities(self, beta: float) -> np.ndarray:
        """[d, K] float32, rows sum to 1 (cached per β)."""
        return self._probabilities(float(beta))

    def predicted_bits(self, indices: np.ndarray, beta: float) -> float:
        """Ideal code length sum_j -log2 P(k_j | j, β) of the first len(indices) dimensions."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self._code_lengths(float(beta))  # [d, K], -log2 P, cached per β
        return float(lengths[np.arange(len(indices)), indices].sum())


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


def _sealed_bytes(model: IndexEntropyModel, indices: np.ndarray, beta: float) -> bytes:
    """constriction's sealed range code of the indices, words big-endian (the number S)."""
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(indices.astype(np.int32), _family(), model.probabilities(beta)[: len(indices)])
    return encoder.get_compressed().astype(">u4").tobytes()


def round_up_prefix(stream: bytes, n_bytes: int) -> bytes | None:
    """ceil(S, 2^-8·n_bytes) as bytes, trailing zero bytes dropped (the decoder pads zeros);
    None when rounding up overflows (S > 1 - 2^-8·n_bytes, never a valid code)."""
    head = bytearray(stream[:n_bytes])
    if any(stream[n_bytes:]):
        k = n_bytes - 1
        while k >= 0 and head[k] == 0xFF:
            head[k] = 0
            k -= 1
        if k < 0:
            return None
        head[k] += 1
    return bytes(head).rstrip(b"\0")


def _words(coded: bytes) -> np.ndarray:
    """Bytes zero-padded to whole big-endian 32-bit words (at least one word)."""
    padded = coded + b"\0" * ((-len(coded)) % WORD_BYTES) if coded else b"\0" * WORD_BYTES
    return np.frombuffer(padded, dtype=">u4").astype(np.uint32)


def _decodes_to(model, coded: bytes | None, indices: np.ndarray, beta: float) -> bool:
    import constriction

    if coded is None:
        return False
    try:
        decoder = constriction.stream.queue.RangeDecoder(_words(coded))
        out = decoder.decode(_family(), model.probabilities(beta)[: len(indices)])
    except (AssertionError, ValueError):  # a point outside the final interval
        return False
    return np.array_equal(out, indices)


def encode_indices(model: IndexEntropyModel, indices: np.ndarray, beta: float) -> bytes:
    """Range-code the level indices of the first len(indices) dimensions: a byte prefix of
    the code that decodes, the ideal length rounded up to bytes when that decodes, else the
    shortest that does (module doc); 8·len(result) is the coded size in bits."""
    indices = np.asarray(indices)
    n = len(indices)
    if n > model.d:
        raise EntropyCodingError(f"{n} indices for a model of d = {model.d}")
    if n and (indices.min() < 0 or indices.max() >= model.n_levels):
        raise EntropyCodingError(f"level indices must lie in [0, {model.n_levels - 1}]")
    if n == 0:
        return b""
    indices = indices.astype(np.int32)
    stream = _sealed_bytes(model, indices, beta)
    # the shortest valid prefix length j* lies in (lo, hi]: lo = -1 (none shorter), hi = the
    # sealed stream. The ideal length g = ceil(predicted / 8) bytes is probed first and taken
    # when it decodes (then coded < predicted + 8 bits; a shorter, luckier prefix is not
    # searched for), else g + 1, then bisection of what is left
    lo, hi, best = -1, len(stream), stream.rstrip(b"\0")
    guess = int(np.ceil(model.predicted_bits(indices, beta) / 8))
    for j in (guess, guess + 1):
        if lo < j < hi:
            candidate = round_up_prefix(stream, j)
            if _decodes_to(model, candidate, indices, beta):
                return candidate
            lo = j
    while hi - lo > 1:
        mid = (lo + hi) // 2
        candidate = round_up_prefix(stream, mid)
        if _decodes_to(model, candidate, indices, beta):
            hi, best = mid, candidate
        else:
            lo = mid
    return best


def max_coded_bytes(model: IndexEntropyModel) -> int:
    """Upper bound on a valid payload: every index at the smallest quantised probability
    (constriction's 24-bit precision) plus two words."""
    return WORD_BYTES * (2 + int(np.ceil(model.d * 24 / (8 * WORD_BYTES))))


def decode_indices(model: IndexEntropyModel, coded: bytes, n: int, beta: float) -> np.ndarray:
    """Inverse of :func:`encode_indices`: the n level indices (int64)."""
    import constriction

    if not 0 <= n <= model.d:
        raise EntropyCodingError(f"n_coded must lie in [0, {model.d}], got {n}")
    if n == 0:
        if coded:
            raise EntropyCodingError("coded bytes sent for zero indices")
        return np.zeros(0, dtype=np.int64)
    if len(coded) > max_coded_bytes(model):
        raise EntropyCodingError(
            f"coded payload of {len(coded)} bytes is longer than the longest valid code "
            f"({max_coded_bytes(model)} bytes)"
        )
    try:
        decoder = constriction.stream.queue.RangeDecoder(_words(coded))
        out = decoder.decode(_family(), model.probabilities(beta)[:n])
    except Exception as exc:  # constriction raises on inconsistent streams
        raise EntropyCodingError(f"coded payload does not decode: {exc}") from None
    return np.asarray(out, dtype=np.int64)
