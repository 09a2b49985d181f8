"""Serialised sizes of a representative ``Transmission`` and ``InferenceReply`` of a model:
what the echo chain sends, so that it carries the bytes a real call carries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_BAUD = 9600.0


def _message(cls, **fields):
    """``cls(**fields)`` keeping only the fields the current contract has."""
    known = cls.DESCRIPTOR.fields_by_name
    return cls(**{k: v for k, v in fields.items() if k in known})


def message_sizes(model_dir: Path, symbols: int, psnr_db: float) -> dict[str, int]:
    """Serialised sizes of a representative Transmission and InferenceReply of this model."""
    from shared.manifest import load_manifest
    from shared.rpc import coinference_pb2 as pb

    m = load_manifest(model_dir)
    bits = int(m.bits or 0)
    levels = b""
    if bits and "level_indices" in pb.Transmission.DESCRIPTOR.fields_by_name:
        try:  # only while the contract carries packed levels
            from shared.quantizer import pack_indices

            levels = pack_indices(np.arange(symbols) % (1 << bits), bits)
        except ImportError:
            levels = bytes((symbols * bits + 7) // 8)
    timings = pb.Timings(**{f: 1.234e-3 for f in pb.Timings.DESCRIPTOR.fields_by_name})
    request = _message(
        pb.Transmission, request_id="0" * 32, model_id=m.model_id, beta=1e-3, snr_db=psnr_db,
        bits_per_symbol=bits, d=m.d, symbols=[0.123] * symbols, level_indices=levels,
        timings=_message(pb.Timings, preprocess_s=1e-3, encode_s=1e-3),
    )  # fmt: skip
    reply = _message(
        pb.InferenceReply, request_id="0" * 32, model_id=m.model_id,
        probabilities=[0.1] * len(m.class_names), label=3,
        csi=_message(pb.ChannelState, psnr_db=psnr_db, noise_var=0.01, baud=DEFAULT_BAUD),
        n_symbols=symbols, airtime_s=symbols / DEFAULT_BAUD, timings=timings,
        decoder_snr_db=psnr_db,
    )  # fmt: skip
    return {"request_bytes": request.ByteSize(), "reply_bytes": reply.ByteSize()}
