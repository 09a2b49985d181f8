"""Choosing a hyper model's setting without the test set: hold out the last training examples,
train the VIB grid and one hyper model per candidate setting on the rest, and score every model
on each view (the held-out examples, the test set). loss-weight-scan (Fashion-MNIST) and
ranging-knee-scan (the ranging channels) share it."""

from __future__ import annotations

import dataclasses

from trainer.experiments import beta_sweep
from trainer.experiments.common import HYPER_EPOCH_FACTOR, RunSettings, evaluate, train_one


def split(data, held_out: int) -> tuple:
    """(training part, validation view): the last ``held_out`` training examples become the
    validation view's test set; the training part keeps the rest. The test set is untouched."""
    if not 0 < held_out < len(data.x_train):
        raise ValueError(f"held_out must be in (0, {len(data.x_train)}), got {held_out}")
    keep = len(data.x_train) - held_out
    train = dataclasses.replace(data, x_train=data.x_train[:keep], y_train=data.y_train[:keep])
    validation = dataclasses.replace(train, x_test=data.x_train[keep:], y_test=data.y_train[keep:])
    return train, validation


def train_and_score(
    settings: RunSettings,
    train,
    views: dict,
    betas: list[float],
    common: dict,
    grid_options: dict,
    candidates: dict[str, dict],
    better,
    tag: str = "",
) -> tuple[dict, dict]:
    """Train one VIB model per β (``common`` and ``grid_options``) and one hyper model over
    [min β, max β] per candidate (``common`` and its options, HYPER_EPOCH_FACTOR × the epochs)
    on ``train``; evaluate each on every view at PSNR ``common["fixed_snr"]`` (the grid model
    at its own β, a hyper model at every β). Returns (grid, hypers): the grid's
    :func:`beta_sweep.curve_over_beta` per view and its training time; per candidate its
    options, training time and curve per view. ``better`` is max (accuracy) or min (MSE)."""
    snr = common["fixed_snr"]

    def curves(model, label: str, at: list[float]) -> dict[str, list[dict]]:
        return {view: [evaluate(model, data, settings, b, snr, f"{tag}{label} {view}")
                       for b in at]
                for view, data in views.items()}  # fmt: skip

    grid_points: dict[str, list[dict]] = {view: [] for view in views}
    grid_wall = 0.0
    for k, beta in enumerate(betas):
        model, info = train_one(
            f"{tag}VIB beta={beta:.0e}", settings, train, f"[{tag}grid {k + 1}]",
            fixed_beta=beta, **grid_options, **common,
        )  # fmt: skip
        grid_wall += info["train_wall_s"]
        for view, points in curves(model, "grid", [beta]).items():
            grid_points[view] += points
    grid = {view: beta_sweep.curve_over_beta(grid_points[view], betas, better) for view in views}
    hypers = {}
    for name, options in candidates.items():
        model, info = train_one(
            f"{tag}hyper-VIB, {name}", settings, train, f"[{tag}{name}]",
            epochs=settings.epochs * HYPER_EPOCH_FACTOR, beta_range=(min(betas), max(betas)),
            **common, **options,
        )  # fmt: skip
        points = curves(model, f"hyper {name}", betas)
        hypers[name] = {
            "options": options,
            "train_wall_s": info["train_wall_s"],
            **{view: beta_sweep.curve_over_beta(points[view], betas, better) for view in views},
        }
    return {**grid, "train_wall_total_s": grid_wall}, hypers


def train_and_score_with(
    settings: RunSettings,
    train,
    views: dict,
    at: list[float],
    common: dict,
    label: str,
    options: dict,
    model_options: dict,
    epoch_factor: float,
    better,
) -> dict:
    """One hyper model as :func:`train_and_score` trains its candidates, with model fields
    beyond the training options (``model_options``, ``common.train_one_with``), over
    [min ``at``, max ``at``] for ``epoch_factor`` × the epochs, and scored on every view at
    each β of ``at``: its options, model options, β points, training time and curve per view.
    (A separate body: ``train_and_score`` is reached by stored runs that this must not stale.)"""
    from trainer.experiments.common import train_one_with

    snr = common["fixed_snr"]
    model, info = train_one_with(
        f"hyper-VIB, {label}", settings, train, model_options, f"[{label}]",
        epochs=max(1, round(settings.epochs * epoch_factor)), beta_range=(min(at), max(at)),
        **common, **options,
    )  # fmt: skip
    curves = {
        view: beta_sweep.curve_over_beta(
            [evaluate(model, data, settings, b, snr, f"hyper {label} {view}") for b in at],
            at, better,
        )
        for view, data in views.items()
    }  # fmt: skip
    return {
        "options": options,
        "model_options": model_options,
        "betas": at,
        "train_wall_s": info["train_wall_s"],
        **curves,
    }
