"""What the channel checks and converts at its boundary: a transmission's power convention
(VL-VFE's peak power 1 for the task models, mean power 1 for the image model, DESIGN §9) and
the fading settings to and from their proto."""

from __future__ import annotations

import grpc
import numpy as np

from shared.fading import CSI_MODES, EQUALIZERS, NO_FADING, Fading
from shared.manifest import POWER_CONVENTIONS
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError

# an "average"-power transmission may exceed mean power 1 by float rounding only
AVERAGE_POWER_TOLERANCE = 1e-3


def check_power(transmission: pb.Transmission, mode: str) -> None:
    """The transmission's power convention ("" = "peak"): known, and for "average" (the
    image model's) a mean power of at most 1 per real symbol over the analog link; the noise
    is N(0, 10^(-dB/10)) per real dimension under either convention."""
    power = transmission.power or "peak"
    if power not in POWER_CONVENTIONS:
        problem = f"power={transmission.power!r}: use one of {POWER_CONVENTIONS}"
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, problem)
    if power != "average":
        return
    if mode != "analog":
        raise ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the {mode} link carries entropy-coded task features; an average-power (image) "
            "transmission goes over the analog link (SetLinkMode analog)",
        )
    symbols = np.asarray(transmission.symbols, dtype=np.float64)
    if symbols.size:
        mean_power = float(np.mean(symbols**2))
        if not mean_power <= 1.0 + AVERAGE_POWER_TOLERANCE:  # NaN fails too
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"average-power transmission has mean power {mean_power:.4g} per real symbol, "
                "over its budget of 1",
            )


def fading_from_message(message: pb.FadingSettings) -> Fading:
    """A :class:`Fading` from its proto ("" fields take the defaults); ValueError if bad."""
    kind = message.kind or "none"
    if kind == "none":
        if message.k_factor or message.coherence:
            raise ValueError("k_factor and coherence need kind rayleigh or rician")
        return NO_FADING
    return Fading(kind, k_factor=message.k_factor, coherence=message.coherence or None,
                  csi=message.csi or CSI_MODES[0], pilots=message.pilots or 1,
                  equalizer=message.equalizer or EQUALIZERS[0])  # fmt: skip


def fading_to_message(fading: Fading) -> pb.FadingSettings:
    return pb.FadingSettings(kind=fading.kind, k_factor=fading.k_factor,
                             coherence=fading.coherence or 0, csi=fading.csi,
                             pilots=fading.pilots, equalizer=fading.equalizer)  # fmt: skip
