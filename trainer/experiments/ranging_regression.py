"""Hyper-VIB on regression (wireless ranging): Hyper-VIB's ranging task, MSE vs β (Fig. 4 style).

For each channel profile (Bluetooth, Wi-Fi; simulated, trainer.ranging) one Hyper-VIB model
over β ∈ [1e-5, 1] against the 11-model VIB grid, all at PSNR 20 dB (``fixed_snr=20``),
20k training examples. Metric: MSE of the line-of-sight delay in ns².

Loss weight w(β) = 1/β (the loss distortion/β + KL): on the normalised regression target the
distortion is ~100x smaller than a class cross-entropy, so 1/(1 + d·β) still lets the
large-β draws dominate (best Wi-Fi MSE 39 vs the grid's 28.7 in a 20-epoch check). With 1/β
the one model matches the grid's best MSE, but its rate hardly moves with β (see the KL row).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from trainer.experiments.common import Check, RunSettings, plot_lines
from trainer.experiments.train_once_vs_grid import (
    grid_betas,
    run_beta_sweep,
    sweep_rows,
)

NAME = "ranging-regression"
PAPER = "Hyper-VIB ranging (regression) task, MSE vs β"
FULL_EPOCHS = 10
PROFILES = ("bluetooth", "wifi")
QUICK_SUBSET = 3000
MSE_RATIO_TARGET = 1.10  # ours: the brief gives no number for ranging
LOSS_WEIGHT = "inverse-beta"


def run(settings: RunSettings, out_dir: Path) -> dict:
    if settings.quick:
        settings = replace(
            settings, train_subset=min(settings.train_subset or QUICK_SUBSET, QUICK_SUBSET)
        )
    sweeps = {
        profile: run_beta_sweep(
            settings, f"ranging-{profile}", grid_betas(settings.quick), loss_weight=LOSS_WEIGHT
        )
        for profile in PROFILES
    }
    series = {}
    for profile, sweep in sweeps.items():
        series[f"{profile}: Hyper-VIB"] = (sweep["betas"], sweep["hyper"]["values"])
        series[f"{profile}: VIB grid"] = (sweep["betas"], sweep["grid"]["values"])
    plot_lines(out_dir / "mse_vs_beta.png", series, "β", "MSE (ns²)", "ranging, 20 dB", logx=True)
    return {
        "design": "per profile: hyper over β in [1e-5, 1] and VIB grid, both fixed_snr=20; "
        f"loss weight {LOSS_WEIGHT}",
        "settings": asdict(settings),
        "sweeps": sweeps,
        "plots": ["mse_vs_beta.png"],
    }


def checks(results: dict) -> list[Check]:
    out = []
    for profile, sweep in results["sweeps"].items():
        out.append(Check(
            f"{profile}: hyper best MSE / grid best MSE",
            sweep["hyper"]["best_value"] / sweep["grid"]["best_value"], "<=", MSE_RATIO_TARGET, "",
            "Hyper-VIB: one model matches the grid search on ranging (our 10% margin)",
        ))  # fmt: skip
        out.append(Check(
            f"{profile}: grid/hyper training wall-time ratio",
            sweep["wall_ratio_grid_over_hyper"], ">=", 4.5, "x",
            "Hyper-VIB Table I: 4.5x on MNIST (hyper trained 2x a grid model's epochs)",
        ))  # fmt: skip
    return out


def summary_rows(results: dict) -> list[tuple[str, str]]:
    return [
        (f"{profile}: {name}", value)
        for profile, sweep in results["sweeps"].items()
        for name, value in sweep_rows(sweep)
    ]


def notes(results: dict) -> str:
    parts = []
    for profile, sweep in results["sweeps"].items():
        kl = sweep["hyper"]["kl_nats"]
        parts.append(f"{profile}: hyper KL {kl[0]:.1f} → {kl[-1]:.1f} nats over β")
    return (
        "The ranging channels are our own simulation (trainer/ranging.py), not the paper's "
        "measured data, so absolute MSEs are not comparable; the 10% MSE margin is ours. "
        f"Loss weight w(β) = {LOSS_WEIGHT}: it matches the grid's best MSE, but the one model's "
        "rate hardly follows β (" + "; ".join(parts) + "), so at large β it does not trade rate "
        "for MSE as the grid models do."
    )
