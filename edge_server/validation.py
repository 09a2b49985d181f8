"""The edge's check of a transmission against its model's manifest, into a :class:`DecodeJob`.

The decoder sees the received symbols zero-filled to d (VL-VFE: inactive dimensions are
zero), the transmission's beta (linear) and an SNR in dB: by default the SNR the encoder
assumed (``decoder_snr="transmission"``), or the channel's applied PSNR (``"csi"``). Under
block fading the channel sends equalised symbols with the receiver's instantaneous SNR
(``receiver_snr_db``): the zero-forced symbols are AWGN at that SNR, so the decoder takes it
(clipped to the trained range, as the offline evaluation does) in either mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np

from edge_server.entropy_receiver import DIGITAL_MODES, ChecksumError, DigitalReceiver
from shared.manifest import POWER_CONVENTIONS, Manifest
from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError, failed_precondition
from shared.service.errors import invalid_argument as invalid

DECODER_SNR_MODES = ("transmission", "csi")
MAX_GROUP_ID_LENGTH = 128


@dataclass(frozen=True)
class DecodeJob:
    """One validated request as it waits in the batching queue."""

    received: np.ndarray  # float32 [n] received symbols (the active prefix)
    beta: float  # linear
    snr_db: float  # decoder's SNR input, dB
    entropy_decode_s: float = 0.0  # digital link: range decoding time, s


def fading_decoder_snr(receiver_snr_db: float, snr_range: tuple[float, float]) -> float:
    """The decoder's SNR for a faded transmission: the receiver's instantaneous SNR clipped
    to the trained range (NaN is refused: it is not an SNR)."""
    if np.isnan(receiver_snr_db):
        raise invalid("receiver_snr_db is NaN: not an SNR")
    lo, hi = snr_range
    return float(min(max(receiver_snr_db, lo), hi))


class TransmissionValidator:
    """Checks transmissions for the model of ``manifest``; raises :class:`ServiceError`
    (INVALID_ARGUMENT, FAILED_PRECONDITION, DATA_LOSS) for one the decoder cannot take.

    Received amplitudes are not bounded: channel noise can push them past 1."""

    def __init__(self, manifest: Manifest, decoder_snr: str, digital: DigitalReceiver) -> None:
        if decoder_snr not in DECODER_SNR_MODES:
            raise ValueError(f"decoder_snr must be one of {DECODER_SNR_MODES}, got {decoder_snr!r}")
        self.manifest = manifest
        self.decoder_snr = decoder_snr
        self.digital = digital  # entropy-coded transmissions

    def validate(self, transmission: pb.Transmission) -> DecodeJob:
        """The :class:`DecodeJob` of a transmission that fits the model."""
        self._validate_model(transmission)
        self._validate_power(transmission)
        self._validate_group(transmission)
        m = self.manifest
        if transmission.d and transmission.d != m.d:
            raise invalid(f"d={transmission.d} does not match the model's d={m.d}")
        if transmission.link_mode in DIGITAL_MODES:
            return self._digital_job(transmission)
        received = self._received(transmission)
        bits = transmission.bits_per_symbol
        if bits and bits != (m.bits or 0):
            raise invalid(
                f"bits_per_symbol={bits} but the model's quantizer has "
                f"{m.bits or 0} bits (0 = unquantized)"
            )
        try:
            m.check_beta(transmission.beta)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        try:
            m.check_snr_db(transmission.snr_db)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        return DecodeJob(received, float(transmission.beta), self._decoder_snr(transmission))

    def _validate_model(self, transmission: pb.Transmission) -> None:
        """The transmission names this edge's model."""
        m = self.manifest
        if not transmission.model_id:  # e.g. an empty message
            raise invalid(
                f"model_id is missing: a transmission names the model it was encoded for "
                f"(this edge serves {m.model_id!r}), with beta, snr_db and the symbols"
            )
        if transmission.model_id != m.model_id:
            raise failed_precondition(
                f"model id mismatch: transmission is for {transmission.model_id!r}, "
                f"this edge serves {m.model_id!r}",
            )

    def _received(self, transmission: pb.Transmission) -> np.ndarray:
        """The analog symbols (and pilots) checked: how many, and finite."""
        m = self.manifest
        n = len(transmission.symbols)
        if n == 0:
            raise invalid("no symbols: a transmission carries at least one symbol")
        if n > m.d:
            raise invalid(f"{n} symbols sent, more than the model's d={m.d}")
        if m.task == "reconstruction" and n != m.d:
            raise invalid(f"{n} symbols sent: an image transmission carries all d={m.d} symbols")
        received = np.asarray(transmission.symbols, dtype=np.float32)
        if not np.isfinite(received).all():
            raise invalid("symbols contain NaN or infinity")
        if transmission.pilots_received and not np.all(
            np.isfinite(np.asarray(transmission.pilots_received, dtype=np.float64))
        ):
            raise invalid("pilots_received contain NaN or infinity")
        return received

    def _decoder_snr(self, transmission: pb.Transmission) -> float:
        """The decoder's SNR input: the encoder's, the channel's (csi) or the receiver's
        under fading."""
        m = self.manifest
        snr_db = transmission.snr_db
        if self.decoder_snr == "csi":
            if not transmission.HasField("psnr_db"):
                raise failed_precondition(
                    "decoder SNR mode 'csi' needs the channel's psnr_db (send through the channel)",
                )
            snr_db = transmission.psnr_db
            try:
                m.check_snr_db(snr_db)
            except ValueError as exc:
                raise invalid(f"channel PSNR (CSI) unusable by the decoder: {exc}") from None
        if transmission.HasField("receiver_snr_db"):
            snr_db = fading_decoder_snr(transmission.receiver_snr_db, m.snr_db_range)
        return float(snr_db)

    def _validate_power(self, transmission: pb.Transmission) -> None:
        """The symbols' power convention must be the model's ("" reads as "peak")."""
        m, power = self.manifest, transmission.power or "peak"
        if power not in POWER_CONVENTIONS:
            raise invalid(f"power={transmission.power!r}: use one of {POWER_CONVENTIONS}")
        if power != m.power:
            raise invalid(
                f"power convention {power!r} does not fit this edge's {m.task} model, whose "
                f"symbols use {m.power!r} power: a {m.task} transmission sets power={m.power!r}"
            )

    def _validate_group(self, transmission: pb.Transmission) -> None:
        """The multi-device fields against the model's K (DESIGN §7)."""
        k, group_id = self.manifest.n_links, transmission.group_id
        if k == 1:
            if transmission.n_links > 1:
                raise invalid(f"n_links={transmission.n_links} but this edge serves a "
                              "single-device model (n_links 0 or 1)")  # fmt: skip
            return
        if not group_id:
            raise invalid(f"this edge serves a {k}-link model: a transmission needs a group_id "
                          f"(one per observation), its link_index and n_links={k}")  # fmt: skip
        if len(group_id) > MAX_GROUP_ID_LENGTH or not group_id.isprintable():
            raise invalid(f"bad group_id: at most {MAX_GROUP_ID_LENGTH} printable characters")
        if transmission.n_links != k:
            raise invalid(f"n_links={transmission.n_links} but the model has {k} links")
        if transmission.link_index >= k:
            raise invalid(f"link_index={transmission.link_index} outside 0..{k - 1}")

    def _digital_job(self, transmission: pb.Transmission) -> DecodeJob:
        """Coded bytes -> levels (edge_server/entropy_receiver.py); DATA_LOSS when the bytes fail
        their CRC-32, INVALID_ARGUMENT when unfit."""
        try:
            self.manifest.check_beta(transmission.beta)
            received, snr_db, decode_s = self.digital.received(transmission)
        except ChecksumError as exc:
            raise ServiceError(grpc.StatusCode.DATA_LOSS, str(exc)) from None
        except ValueError as exc:
            raise invalid(str(exc)) from None
        return DecodeJob(received, float(transmission.beta), snr_db, decode_s)
