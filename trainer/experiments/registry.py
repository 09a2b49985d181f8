"""The experiments, by name. Each module follows the ``Experiment`` protocol; a module that
misses part of it fails here, at import, not halfway through a report."""

from __future__ import annotations

from types import ModuleType

from trainer.experiments import (
    cnn,
    digital,
    fading,
    image_jscc,
    loss_weight_scan,
    multi_device,
    quantizer_bits,
    ranging_knee_scan,
    ranging_regression,
    snr_adaptivity,
    train_once_vs_grid,
    variable_length,
    vl_vfe,
    vl_vfe_threshold,
)

# what every experiment module defines (see trainer/experiments/common.py)
PROTOCOL = ("NAME", "PAPER", "FULL_EPOCHS", "run", "checks", "summary_rows", "notes")


def check_protocol(module: ModuleType) -> ModuleType:
    missing = [name for name in PROTOCOL if not hasattr(module, name)]
    if missing:
        raise TypeError(f"experiment module {module.__name__} lacks {missing}")
    return module


EXPERIMENTS: dict[str, ModuleType] = {
    m.NAME: check_protocol(m)
    for m in (
        train_once_vs_grid,
        loss_weight_scan,
        snr_adaptivity,
        quantizer_bits,
        variable_length,
        vl_vfe,
        vl_vfe_threshold,
        ranging_regression,
        ranging_knee_scan,
        cnn,
        digital,
        multi_device,
        image_jscc,
        fading,
    )
}
