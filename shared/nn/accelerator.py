"""Which torch device a process runs its model on: the trainer's and the edge's one rule."""

from __future__ import annotations

import torch

TORCH_DEVICES = ("auto", "cpu", "cuda")


def pick_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` for a requested device (``"auto"``: CUDA when available);
    ValueError for an unknown name or for CUDA on a machine without it."""
    if device not in TORCH_DEVICES:
        raise ValueError(f"device must be one of {TORCH_DEVICES}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but CUDA is not available")
    return device
