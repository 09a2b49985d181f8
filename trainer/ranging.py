"""Simulated wireless ranging (Hyper-VIB regression task), generated from a seed.

Each sample is a band-limited multipath channel impulse response (CIR): a line-of-sight
path at delay tau_0 = distance / c plus L non-LoS paths arriving later with exponentially
decaying power (a saleh-valenzuela-like profile), sampled at the channel's bandwidth and
observed in complex AWGN. Input: real and imaginary parts, shape (2, n_taps). Target: the
LoS propagation time tau_0 in nanoseconds.

Profiles: "bluetooth" (2 MHz bandwidth, indoor distances 1-30 m) and "wifi" (40 MHz).
"""

from __future__ import annotations

import numpy as np

from trainer.dataset import Dataset

SPEED_OF_LIGHT = 299_792_458.0
PROFILES = {
    # bandwidth (Hz), taps, max distance (m), rms delay spread (s), CIR SNR (dB)
    "bluetooth": dict(bandwidth=2e6, n_taps=32, max_distance=30.0, spread=50e-9, snr_db=20.0),
    "wifi": dict(bandwidth=40e6, n_taps=64, max_distance=30.0, spread=30e-9, snr_db=20.0),
}


def simulate_cir(profile: str, n: int, rng: np.random.Generator):
    """Return (cir [n, 2, n_taps] float32, tau_0_ns [n] float32)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {tuple(PROFILES)}, got {profile!r}")
    p = PROFILES[profile]
    ts = 1.0 / p["bandwidth"]
    taps = np.arange(p["n_taps"]) * ts  # sample times (s)
    distance = rng.uniform(1.0, p["max_distance"], size=n)
    tau0 = distance / SPEED_OF_LIGHT
    n_paths = 6
    excess = rng.exponential(p["spread"], size=(n, n_paths))
    delays = np.concatenate([tau0[:, None], tau0[:, None] + np.cumsum(excess, axis=1)], axis=1)
    power = np.exp(-(delays - tau0[:, None]) / p["spread"])
    power[:, 0] *= rng.uniform(0.3, 1.0, size=n)  # LoS may be weaker than the first echo
    phase = rng.uniform(0, 2 * np.pi, size=delays.shape)
    gains = np.sqrt(power) * np.exp(1j * phase)
    # band-limited (sinc) pulse at each path delay
    pulses = np.sinc((taps[None, None, :] - delays[:, :, None]) / ts)
    cir = (gains[:, :, None] * pulses).sum(axis=1)
    cir = cir / np.abs(cir).max(axis=1, keepdims=True)
    noise_std = np.sqrt(10 ** (-p["snr_db"] / 10) / 2)
    cir = cir + noise_std * (rng.standard_normal(cir.shape) + 1j * rng.standard_normal(cir.shape))
    x = np.stack([cir.real, cir.imag], axis=1).astype(np.float32)
    return x, (tau0 * 1e9).astype(np.float32)


def make_ranging_dataset(
    profile: str, n_train: int = 20000, n_test: int = 5000, seed: int = 0
) -> Dataset:
    rng = np.random.default_rng(seed)
    x_train, y_train = simulate_cir(profile, n_train, rng)
    x_test, y_test = simulate_cir(profile, n_test, rng)
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
