"""Simulated wireless ranging (Hyper-VIB §IV's regression task), generated from a seed.

Hyper-VIB §IV: "simulated Bluetooth and WiFi ranging data ... generated based on the Bluetooth
two-way channel model [23] and the WiFi channel model [24], with the target output being the
estimated line-of-sight (LoS) propagation time between transceivers". Both profiles draw the
same multipath channel: a LoS path at delay τ0 = distance / c (distance uniform on 1-30 m)
plus 6 later paths with exponential excess delays and exponentially decaying power (a
Saleh-Valenzuela-like profile), the LoS up to 3.3x weaker than it would be. What each profile
observes of it:

- ``"wifi"`` (SpotFi [24]: the CSI of a 40 MHz channel): the band-limited channel impulse
  response sampled at 40 MHz, 64 taps, in complex AWGN (20 dB).
- ``"bluetooth"`` (Bluetooth channel sounding, phase-based ranging [23]): the initiator and the
  reflector exchange unmodulated tones on the 79 1-MHz channels 2402-2480 MHz; each measures
  the one-way channel response H(f_k) = Σ_l a_l·exp(−j2π f_k τ_l) with its own noise (20 dB per
  tone), and the product of the two measurements, the two-way response ≈ H(f_k)² (the channel
  is reciprocal), cancels both local oscillators' unknown phases. Its phase falls by 4π·τ per
  Hz, so the 78 MHz span resolves delays of ~6 ns (a 2 MHz impulse response, this profile's
  former model, resolves 500 ns, far more than the 3-100 ns LoS delays: no model could range).

Each input is normalised to peak magnitude 1 and given as real and imaginary parts, shape
(2, taps or tones). Target: τ0 in nanoseconds.
"""

from __future__ import annotations

import numpy as np

from trainer.dataset import Dataset

SPEED_OF_LIGHT = 299_792_458.0
N_PATHS = 6  # non-LoS paths
BLE_TONES_HZ = 2402e6 + 1e6 * np.arange(79)  # Bluetooth channel sounding: channels 0-78
PROFILES = {
    # what is observed, its size, max distance (m), rms delay spread (s), SNR (dB)
    "bluetooth": dict(observe="two-way-tones", n=len(BLE_TONES_HZ), max_distance=30.0,
                      spread=50e-9, snr_db=20.0),
    "wifi": dict(observe="impulse-response", bandwidth=40e6, n=64, max_distance=30.0,
                 spread=30e-9, snr_db=20.0),
}  # fmt: skip


def draw_paths(p: dict, n: int, rng: np.random.Generator):
    """(delays [n, 1 + N_PATHS] s, complex gains [n, 1 + N_PATHS]) of ``n`` channels; the LoS
    path first."""
    distance = rng.uniform(1.0, p["max_distance"], size=n)
    tau0 = distance / SPEED_OF_LIGHT
    excess = rng.exponential(p["spread"], size=(n, N_PATHS))
    delays = np.concatenate([tau0[:, None], tau0[:, None] + np.cumsum(excess, axis=1)], axis=1)
    power = np.exp(-(delays - tau0[:, None]) / p["spread"])
    power[:, 0] *= rng.uniform(0.3, 1.0, size=n)  # LoS may be weaker than the first echo
    phase = rng.uniform(0, 2 * np.pi, size=delays.shape)
    return delays, np.sqrt(power) * np.exp(1j * phase)


def complex_noise(shape, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Circular complex Gaussian noise of power 10^(−snr_db/10)."""
    std = np.sqrt(10 ** (-snr_db / 10) / 2)
    return std * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def impulse_response(p: dict, delays, gains, rng) -> np.ndarray:
    """The band-limited (sinc pulse) impulse response at ``p["n"]`` taps of 1/bandwidth,
    peak-normalised, plus AWGN [n, taps]."""
    ts = 1.0 / p["bandwidth"]
    taps = np.arange(p["n"]) * ts
    pulses = np.sinc((taps[None, None, :] - delays[:, :, None]) / ts)
    cir = (gains[:, :, None] * pulses).sum(axis=1)
    cir = cir / np.abs(cir).max(axis=1, keepdims=True)
    return cir + complex_noise(cir.shape, p["snr_db"], rng)


def two_way_tones(p: dict, delays, gains, rng) -> np.ndarray:
    """Bluetooth phase-based ranging: the two-way response at the 79 tones [n, 79], the product
    of the initiator's and the reflector's noisy one-way measurements, peak-normalised."""
    one_way = (gains[:, :, None] * np.exp(-2j * np.pi * BLE_TONES_HZ * delays[:, :, None])).sum(1)
    one_way = one_way / np.abs(one_way).max(axis=1, keepdims=True)
    initiator = one_way + complex_noise(one_way.shape, p["snr_db"], rng)
    reflector = one_way + complex_noise(one_way.shape, p["snr_db"], rng)
    two_way = initiator * reflector
    return two_way / np.abs(two_way).max(axis=1, keepdims=True)


OBSERVE = {"impulse-response": impulse_response, "two-way-tones": two_way_tones}


def simulate_ranging(profile: str, n: int, rng: np.random.Generator):
    """Return (observations [n, 2, taps or tones] float32, tau_0_ns [n] float32)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
    p = PROFILES[profile]
    delays, gains = draw_paths(p, n, rng)
    observed = OBSERVE[p["observe"]](p, delays, gains, rng)
    x = np.stack([observed.real, observed.imag], axis=1).astype(np.float32)
    return x, (delays[:, 0] * 1e9).astype(np.float32)


def make_ranging_dataset(
    profile: str, n_train: int = 20000, n_test: int = 5000, seed: int = 0
) -> Dataset:
    rng = np.random.default_rng(seed)
    x_train, y_train = simulate_ranging(profile, n_train, rng)
    x_test, y_test = simulate_ranging(profile, n_test, rng)
    mean, std = float(y_train.mean()), float(y_train.std())
    return Dataset(
        name=f"ranging-{profile}",
        task="regression",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        input_shape=tuple(x_train.shape[1:]),
        mean=(0.0,),
        std=(1.0,),
        target_mean=mean,
        target_std=std,
    )
