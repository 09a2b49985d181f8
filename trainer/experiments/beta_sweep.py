"""The β sweep every Hyper-VIB experiment shares (train-once-vs-grid, cnn, ranging-regression):
one hyper model over [min β, max β] against one plain VIB model per β (Hyper-VIB Table I,
Fig. 4), more hyper models beside it (another loss weight, the paper's objective), the headline
pair over seeds, and the comparison at equal rate.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from trainer.experiments.common import (
    HYPER_EPOCH_FACTOR,
    RunSettings,
    evaluate,
    load_data,
    plot_lines,
    train_one,
    warm_up,
)
from trainer.experiments.grid import GridJob, train_grid

SNR_DB = 20.0
QUICK_BETAS = (1e-4, 1e-2, 1.0)


def grid_betas(quick: bool, step_decades: float = 0.5) -> list[float]:
    """1e-5..1 every ``step_decades`` decades (11 points at 0.5), or 3 points when quick."""
    if quick:
        return list(QUICK_BETAS)
    n = round(5 / step_decades)
    return [float(10 ** (-5 + k * step_decades)) for k in range(n + 1)]


def run_beta_sweep(
    settings: RunSettings,
    task: str,
    betas: list[float],
    arch: str = "mlp",
    snr_db: float = SNR_DB,
    loss_weight: str = "inverse-d-beta",
    hyper_options: dict | None = None,
) -> dict:
    """Hyper-VIB over [min β, max β] vs one VIB model per β, all at one SNR; JSON-ready dict.

    The hyper model trains for HYPER_EPOCH_FACTOR × the grid models' epochs; both use the
    loss weight w(β) = ``loss_weight`` (a constant for a grid model, so it changes nothing
    there but the step size Adam normalises away). ``hyper_options`` go to the hyper model only
    (and win over ``loss_weight``, e.g. ``{"loss_weight": "knee", "weight_knee": 3e-4}``).
    """
    data = load_data(task, settings.data_dir, settings.seed)
    better = max if data.task == "classification" else min
    shared = {"task": task, "arch": arch, "fixed_snr": snr_db, "loss_weight": loss_weight}
    hyper_info, hyper_points = train_hyper(settings, data, betas, shared, hyper_options or {})
    grid_infos, grid_points = train_vib_grid(settings, data, betas, shared)
    hyper = {
        "params": hyper_info["params"],
        "train_wall_s": hyper_info["train_wall_s"],
        **curve_over_beta(hyper_points, betas, better),
        "info": hyper_info,
    }
    grid_wall = sum(i["train_wall_s"] for i in grid_infos)
    grid = {
        "n_models": len(betas),
        "params_per_model": grid_infos[0]["params"],
        "params_total": sum(i["params"]["total"] for i in grid_infos),
        "train_wall_s": [i["train_wall_s"] for i in grid_infos],
        "train_wall_total_s": grid_wall,
        **curve_over_beta(grid_points, betas, better),
    }
    return {
        "task": task,
        "arch": arch,
        "metric": "accuracy" if data.task == "classification" else "mse_ns2",
        "snr_db": snr_db,
        "betas": betas,
        "hyper": hyper,
        "grid": grid,
        "cpu_ratio_grid_over_hyper": sum(i["train_cpu_s"] for i in grid_infos)
        / hyper_info["train_cpu_s"],
        "wall_ratio_grid_over_hyper": grid_wall / hyper_info["train_wall_s"],
        "wall_ratio_11_grid_over_hyper": (grid_wall / len(betas)) * 11 / hyper_info["train_wall_s"],
        "hyper_minus_grid": [h - g for h, g in zip(hyper["values"], grid["values"], strict=True)],
    }


def train_hyper(
    settings: RunSettings, data, betas: list[float], shared: dict, hyper_options: dict
) -> tuple[dict, list[dict]]:
    """Warm up, train the hyper model over [min β, max β] with the ``shared`` options (and
    ``hyper_options`` over them), and evaluate it at every β: (training info, points)."""
    beta_range = (min(betas), max(betas))
    warm_up(settings, data, beta_range=beta_range, **shared)
    model, info = train_one(
        f"{shared['task']} {shared['arch']} hyper-VIB", settings, data, f"[1/{len(betas) + 1}]",
        epochs=settings.epochs * HYPER_EPOCH_FACTOR, beta_range=beta_range,
        **{**shared, **hyper_options},
    )  # fmt: skip
    points = [evaluate(model, data, settings, b, shared["fixed_snr"], "hyper") for b in betas]
    return info, points


def train_vib_grid(
    settings: RunSettings, data, betas: list[float], shared: dict
) -> tuple[list[dict], list[dict]]:
    """One plain VIB model per β with the ``shared`` options, each evaluated at its own β:
    ([training info], [point])."""
    name, total = f"{shared['task']} {shared['arch']} VIB", len(betas) + 1
    jobs = [
        GridJob(f"{name} beta={beta:.0e}", f"[{k + 2}/{total}]",
                options={"fixed_beta": beta, **shared})
        for k, beta in enumerate(betas)
    ]  # fmt: skip
    trained = train_grid(jobs, settings)
    points = [
        evaluate(model, data, settings, beta, shared["fixed_snr"], "grid")
        for (model, _), beta in zip(trained, betas, strict=True)
    ]
    return [info for _, info in trained], points


def curve_over_beta(points: list[dict], betas: list[float], better) -> dict:
    """One model's (or the grid's) evaluation points at ``betas``, per key: the value with μ
    sent, active dimensions, std, KL (nats), the value with z sampled; and the ``better``
    (max or min) value with its β."""
    values = [p["value"] for p in points]
    best = better(range(len(betas)), key=lambda i: values[i])
    return {
        "values": values,
        "n_active": [p["n_active"] for p in points],
        "std": [p["std"] for p in points],
        "kl_nats": [p["kl"] for p in points],
        "values_sampled": [p["value_sampled"] for p in points],
        "best_value": values[best],
        "best_beta": betas[best],
    }


def plot_sweep(sweep: dict, path: Path, title: str) -> Path:
    return plot_lines(
        path,
        {
            f"Hyper-VIB (one model, {sweep['hyper']['train_wall_s']:.0f} s)": (
                sweep["betas"], sweep["hyper"]["values"]),
            f"VIB grid ({sweep['grid']['n_models']} models, "
            f"{sweep['grid']['train_wall_total_s']:.0f} s)": (
                sweep["betas"], sweep["grid"]["values"]),
        },
        "β",
        sweep["metric"] + (" (ns²)" if sweep["metric"] == "mse_ns2" else ""),
        title,
        logx=True,
    )  # fmt: skip


def best_of(metric: str):
    """max for accuracy, min for an error (MSE)."""
    return max if metric == "accuracy" else min


def repeat_seeds(
    settings: RunSettings, sweep: dict, n_seeds: int, hyper_options: dict | None = None
) -> dict:
    """The headline pair over ``n_seeds`` seeds (the sweep's own run is the first): the hyper
    model's best value over the β grid (trained with ``hyper_options``) and the grid model at
    the grid's best β."""
    data = load_data(sweep["task"], settings.data_dir, settings.seed)
    betas, best_beta = sweep["betas"], sweep["grid"]["best_beta"]
    common = {"task": sweep["task"], "arch": sweep["arch"], "fixed_snr": sweep["snr_db"]}
    better = best_of(sweep["metric"])
    hyper_best, grid_at_best = [sweep["hyper"]["best_value"]], [sweep["grid"]["best_value"]]
    seeds = [settings.seed + k for k in range(n_seeds)]
    for seed in seeds[1:]:
        run = replace(settings, seed=seed)
        hyper, _ = train_one(
            f"hyper-VIB seed {seed}", run, data, f"[seed {seed}]",
            epochs=run.epochs * HYPER_EPOCH_FACTOR, beta_range=(min(betas), max(betas)),
            **common, **(hyper_options or {}),
        )  # fmt: skip
        points = [evaluate(hyper, data, run, b, sweep["snr_db"])["value"] for b in betas]
        hyper_best.append(better(points))
        grid, _ = train_one(
            f"VIB beta={best_beta:.0e} seed {seed}", run, data, f"[seed {seed}]",
            fixed_beta=best_beta, **common,
        )  # fmt: skip
        grid_at_best.append(evaluate(grid, data, run, best_beta, sweep["snr_db"])["value"])
    return {
        "seeds": seeds,
        "grid_best_beta": best_beta,
        "hyper_best": hyper_best,
        "grid_at_best_beta": grid_at_best,
        "hyper_best_mean": float(np.mean(hyper_best)),
        "hyper_best_sd": float(np.std(hyper_best, ddof=1)),
        "grid_mean": float(np.mean(grid_at_best)),
        "grid_sd": float(np.std(grid_at_best, ddof=1)),
    }


def train_hyper_variant(settings: RunSettings, sweep: dict, label: str, **options) -> dict:
    """Another hyper model over the sweep's β range (e.g. ``objective="paper"``), evaluated
    at the sweep's β points like the first."""
    data = load_data(sweep["task"], settings.data_dir, settings.seed)
    betas = sweep["betas"]
    model, info = train_one(
        label, settings, data, "[variant]", epochs=settings.epochs * HYPER_EPOCH_FACTOR,
        beta_range=(min(betas), max(betas)), task=sweep["task"], arch=sweep["arch"],
        fixed_snr=sweep["snr_db"], **options,
    )  # fmt: skip
    points = [evaluate(model, data, settings, b, sweep["snr_db"], label) for b in betas]
    values = [p["value"] for p in points]
    best = best_of(sweep["metric"])(range(len(betas)), key=lambda i: values[i])
    return {
        "label": label,
        "options": options,
        "train_wall_s": info["train_wall_s"],
        "values": values,
        "kl_nats": [p["kl"] for p in points],
        "values_sampled": [p["value_sampled"] for p in points],
        "best_value": values[best],
        "best_beta": betas[best],
        "config": info["config"],
    }


def train_hyper_variant_with(
    settings: RunSettings,
    sweep: dict,
    label: str,
    model_options: dict,
    epoch_factor: float = HYPER_EPOCH_FACTOR,
    **options,
) -> dict:
    """:func:`train_hyper_variant` with model fields beyond the training options
    (``common.train_one_with``: e.g. ``{"beta_gate_scale": 10.0}``) and ``epoch_factor`` times
    a grid model's epochs; the dict also holds ``model_options`` and ``epochs``."""
    from trainer.experiments.common import train_one_with

    data = load_data(sweep["task"], settings.data_dir, settings.seed)
    betas = sweep["betas"]
    epochs = max(1, round(settings.epochs * epoch_factor))
    model, info = train_one_with(
        label, settings, data, model_options, "[variant]", epochs=epochs,
        beta_range=(min(betas), max(betas)), task=sweep["task"], arch=sweep["arch"],
        fixed_snr=sweep["snr_db"], **options,
    )  # fmt: skip
    points = [evaluate(model, data, settings, b, sweep["snr_db"], label) for b in betas]
    values = [p["value"] for p in points]
    best = best_of(sweep["metric"])(range(len(betas)), key=lambda i: values[i])
    return {
        "label": label,
        "options": options,
        "model_options": model_options,
        "epochs": epochs,
        "train_wall_s": info["train_wall_s"],
        "train_cpu_s": info["train_cpu_s"],
        "values": values,
        "kl_nats": [p["kl"] for p in points],
        "values_sampled": [p["value_sampled"] for p in points],
        "best_value": values[best],
        "best_beta": betas[best],
        "config": info["config"],
    }


def equal_rate(hyper: dict, grid: dict, log_scale: bool = False) -> tuple[dict, list]:
    """The hyper curve of its z-sampled value against KL (nats), interpolated at each grid
    model's KL inside the range both cover (in log value with ``log_scale``): the ranges as
    {hyper_kl_range, grid_kl_range, overlap_kl, at_grid_kl} and [(hyper value, grid value)]
    at those rates."""
    order = np.argsort(hyper["kl_nats"])
    kl = np.asarray(hyper["kl_nats"])[order]
    values = np.asarray(hyper["values_sampled"])[order]
    curve = np.log(values) if log_scale else values
    lo = max(kl[0], min(grid["kl_nats"]))
    hi = min(kl[-1], max(grid["kl_nats"]))
    rows = [(g, v) for g, v in zip(grid["kl_nats"], grid["values_sampled"], strict=True)
            if lo <= g <= hi]  # fmt: skip
    at = [float(np.interp(g, kl, curve)) for g, _ in rows]
    pairs = [(float(np.exp(h)) if log_scale else h, v) for h, (_, v) in zip(at, rows, strict=True)]
    ranges = {
        "hyper_kl_range": [float(kl[0]), float(kl[-1])],
        "grid_kl_range": [float(min(grid["kl_nats"])), float(max(grid["kl_nats"]))],
        "overlap_kl": [float(lo), float(hi)] if rows else None,
        "at_grid_kl": [g for g, _ in rows],
    }
    return ranges, pairs


def rate_gap(hyper: dict, grid: dict) -> dict:
    """The hyper model against the grid at equal rate (:func:`equal_rate` on accuracy);
    ``max_shortfall_points`` = the largest (grid − hyper) there, in points."""
    ranges, pairs = equal_rate(hyper, grid)
    gaps = [h - g for h, g in pairs]
    return {
        **ranges,
        "hyper_minus_grid": gaps,
        "max_shortfall_points": 100 * max(0.0, -min(gaps)) if gaps else math.nan,
    }


def equal_rate_text(gap: dict, worst: str) -> str:
    """A report cell: the KL ranges of hyper and grid, then ``worst`` over the shared range."""
    overlap = gap["overlap_kl"]
    where = f"{overlap[0]:.1f}–{overlap[1]:.1f} nats" if overlap else "no overlap"
    (hyper_lo, hyper_hi), (grid_lo, grid_hi) = gap["hyper_kl_range"], gap["grid_kl_range"]
    return (f"{hyper_lo:.1f}–{hyper_hi:.1f} / {grid_lo:.1f}–{grid_hi:.1f} nats; "
            f"{worst} over {where}")  # fmt: skip


def shortfall_text(gap: dict) -> str:
    """The worst of a :func:`rate_gap`: its largest shortfall below the grid, in points."""
    return f"{gap['max_shortfall_points']:.2f} points"


def equal_rate_rows(
    gaps: dict[str, dict],
    title: str = "equal rate, {name}: KL range hyper / grid; largest shortfall",
    worst=shortfall_text,
) -> list[tuple[str, str]]:
    """Report rows, one per hyper model: ``title`` with the model's ``{name}``, and
    :func:`equal_rate_text` of its gap with ``worst(gap)`` (default :func:`shortfall_text`)."""
    return [
        (title.format(name=name), equal_rate_text(gap, worst(gap))) for name, gap in gaps.items()
    ]
