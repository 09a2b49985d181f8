"""Learned scalar quantizer, inference side (NumPy), QML-IB eq. (8)-(9).

A quantizer with ``bits`` bits has T = 2^bits - 1 sorted breakpoints b_1 < ... < b_T and
2^bits levels q_0 < ... < q_T in [-1, 1]. The hard step maps x to level index
k = #{t : x > b_t}, and to amplitude q_k. ``shared/nn/quantizer.py`` holds the trainable
twin; a test pins the two together.
"""

from __future__ import annotations

import numpy as np

ALLOWED_BITS = (1, 2, 4, 8)


def check_bits(bits: int) -> int:
    if bits not in ALLOWED_BITS:
        raise ValueError(f"bits must be one of {ALLOWED_BITS}, got {bits!r}")
    return bits


def level_indices(x: np.ndarray, breakpoints: np.ndarray) -> np.ndarray:
    """Hard step, QML-IB eq. (8): index of the level each element falls into (int64)."""
    breakpoints = np.asarray(breakpoints, dtype=np.float64)
    return np.searchsorted(breakpoints, np.asarray(x, dtype=np.float64), side="left").astype(
        np.int64
    )


def quantize(x: np.ndarray, breakpoints: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Hard quantizer output q_k, QML-IB eq. (9). Returns float32 like the symbols."""
    return np.asarray(levels, dtype=np.float32)[level_indices(x, breakpoints)]
