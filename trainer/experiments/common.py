"""What every experiment shares: run settings, training one model, evaluation, plots, results.

An experiment module (registered in ``registry.py``) defines ``NAME``, ``PAPER`` (the
figure/table it reproduces), ``FULL_EPOCHS``, ``run(settings, out_dir) -> dict``,
``checks(results) -> list[Check]``, ``summary_rows(results) -> [(label, value)]`` and
``notes(results) -> str`` (the report's prose, built from the results). ``run`` never changes
the settings it is given: it returns ``"settings"`` in its dict when it adjusts them.
``run_experiment`` wraps ``run`` with the settings, the machine line and the wall time and
writes ``results.json``; ``python -m trainer report`` turns the checks into tables.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shared.provenance import code_version

QUICK_SETTINGS = {"epochs": 2, "train_subset": 10000, "n_eval": 2000, "draws": 1}
# The one hyper model gets this many times a grid model's epochs: it learns every β (or SNR)
# at once. Hyper-VIB's Table I implies 1.5-3x one grid model's time; the report gives the
# resulting wall-time ratio as measured.
HYPER_EPOCH_FACTOR = 2
FULL_DRAWS = 3


@dataclass
class RunSettings:
    """How big a run is. quick=True is the 1–3 minute smoke version of an experiment."""

    quick: bool = False
    epochs: int = 10
    train_subset: int | None = None  # first N training examples; None = all
    n_eval: int | None = None  # first N test examples; None = all
    draws: int = FULL_DRAWS  # noise draws per evaluation point
    seed: int = 0
    data_dir: str | None = None
    progress: bool = True  # per-epoch lines from trainer.train
    workers: int = 1  # processes the models are spread over (experiments.grid, multi-device)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


def settings_for(
    quick: bool, full_epochs: int, epochs: int | None = None, **overrides
) -> RunSettings:
    """Quick or full settings; an explicit ``epochs`` wins over both."""
    base = dict(QUICK_SETTINGS, progress=False) if quick else {"epochs": full_epochs}
    base.update({k: v for k, v in overrides.items() if v is not None})
    if epochs is not None:
        base["epochs"] = epochs
    return RunSettings(quick=quick, **base)


@dataclass
class Check:
    """One figure against its target: met when ``value <op> target`` (op is ">=" or "<=")."""

    figure: str
    value: float
    op: str
    target: float
    unit: str = ""
    paper: str = ""

    def __post_init__(self):
        if self.op not in (">=", "<="):
            raise ValueError(f"op must be '>=' or '<=', got {self.op!r}")

    @property
    def met(self) -> bool:
        return self.shortfall == 0.0

    TOLERANCE = 1e-9  # float noise in differences of stored numbers

    @property
    def shortfall(self) -> float:
        """How far the value is on the wrong side of the target (0 when met)."""
        gap = self.target - self.value if self.op == ">=" else self.value - self.target
        return gap if gap > self.TOLERANCE or gap != gap else 0.0  # NaN counts as missed

    def status(self) -> str:
        if self.met:
            return "met"
        return f"missed by {self.shortfall:.3g}{(' ' + self.unit) if self.unit else ''}"


@functools.cache
def load_data(task: str, data_dir: str | None = None, seed: int = 0):
    from trainer.data import load_dataset

    return load_dataset(task, data_dir, seed=seed)


def param_counts(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    # the encoder, or every link's encoder of a multi-link model ("links.<k>.encoder.")
    encoder = sum(p.numel() for k, p in model.named_parameters() if ".encoder." in f".{k}")
    return {"total": int(total), "encoder": int(encoder), "decoder": int(total - encoder)}


def warm_up(settings: RunSettings, data, **overrides) -> None:
    """Train a throw-away model on 256 examples so one-time start-up costs (allocator,
    kernels) do not land in the first timed model's wall time."""
    from trainer.train import TrainConfig, train

    cfg = TrainConfig.from_options(
        epochs=1, train_subset=256, seed=settings.seed, progress=False, **overrides
    )
    train(cfg, data)


def train_one(
    label: str, settings: RunSettings, data, step: str = "", epochs: int | None = None, **overrides
):
    """Train one model in-process with the run's subset/seed and its epochs (or ``epochs``);
    returns (model, info)."""
    from trainer.train import TrainConfig, train

    epochs = epochs or settings.epochs
    cfg = TrainConfig.from_options(
        data_dir=settings.data_dir,
        epochs=epochs,
        train_subset=settings.train_subset,
        seed=settings.seed,
        progress=settings.progress,
        **overrides,
    )
    print(f"{step} training {label} ({epochs} epochs) ...", flush=True)
    model, log = train(cfg, data)
    info = {
        "label": label,
        "train_wall_s": log["train_wall_s"],
        "train_cpu_s": log["train_cpu_s"],
        "params": param_counts(model),
        "final_loss": log["epochs"][-1]["loss"],
        "final_train_accuracy": log["epochs"][-1].get("train_accuracy"),
        "config": {
            k: v
            for k, v in asdict(cfg).items()
            if k not in ("data_dir", "progress", "extra", "device")
        },
        "machine": log["machine"],
    }
    print(
        f"{step} trained {label} in {log['train_wall_s']:.1f} s "
        f"({info['params']['total']:,} parameters, final loss {info['final_loss']:.4f})",
        flush=True,
    )
    return model, info


def train_one_with(
    label: str,
    settings: RunSettings,
    data,
    model_options: dict,
    step: str = "",
    epochs: int | None = None,
    **overrides,
):
    """:func:`train_one` with model fields that ``TrainConfig.from_options`` does not take
    (``model_options``, e.g. ``{"beta_gate_scale": 10.0}``: shared.nn.model.ModelConfig fields
    outside trainer.train.MODEL_OPTIONS) set on the run's model config; returns (model, info).

    (``train_one`` is this with no model options; it stays a separate body because every
    stored experiment run reaches it, and changing it would mark all of them stale.)
    """
    from dataclasses import replace

    from trainer.train import TrainConfig, train

    epochs = epochs or settings.epochs
    cfg = TrainConfig.from_options(
        data_dir=settings.data_dir, epochs=epochs, train_subset=settings.train_subset,
        seed=settings.seed, progress=settings.progress, **overrides,
    )  # fmt: skip
    cfg = replace(cfg, model=replace(cfg.model, **model_options))
    print(f"{step} training {label} ({epochs} epochs, model {model_options}) ...", flush=True)
    model, log = train(cfg, data)
    dropped = ("data_dir", "progress", "extra", "device")
    info = {
        "label": label,
        "train_wall_s": log["train_wall_s"],
        "train_cpu_s": log["train_cpu_s"],
        "params": param_counts(model),
        "final_loss": log["epochs"][-1]["loss"],
        "final_train_accuracy": log["epochs"][-1].get("train_accuracy"),
        "config": {k: v for k, v in asdict(cfg).items() if k not in dropped},
        "machine": log["machine"],
    }
    print(f"{step} trained {label} in {log['train_wall_s']:.1f} s", flush=True)
    return model, info


def evaluate(
    model, data, settings: RunSettings, beta: float, snr_db: float, label: str = ""
) -> dict:
    """trainer.evaluate.evaluate_point (the device/edge inference path), with a progress line."""
    from trainer.evaluate import evaluate_point

    point = evaluate_point(model, data, beta, snr_db, draws=settings.draws, n=settings.n_eval)
    metric = "acc" if data.task == "classification" else "mse"
    print(
        f"    {label} beta={beta:.0e} snr={snr_db:g} dB: {metric} {point['value']:.4f} "
        f"({point['n_active']:.1f} symbols)",
        flush=True,
    )
    return point


def machine() -> dict:
    from shared.nn.accelerator import pick_device
    from trainer.train import machine_info

    return machine_info(pick_device("auto"))


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def default_out(name: str, quick: bool) -> Path:
    return Path("reports") / (f"{name}-quick" if quick else name)


def run_experiment(module, settings: RunSettings, out_dir: str | Path, command: str = "") -> dict:
    """Run one experiment module and write out_dir/results.json; returns the results."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "quick" if settings.quick else "full"
    print(f"experiment {module.NAME} ({mode}; {module.PAPER}) -> {out_dir}", flush=True)
    print("settings:", json.dumps(asdict(settings)), flush=True)
    code = code_version()  # before the run: the code it starts from
    if code["dirty"]:
        print(f"note: uncommitted changes in {len(code['dirty_paths'])} file(s)", flush=True)
    start = time.perf_counter()
    body = module.run(settings, out_dir)
    results = {
        "experiment": module.NAME,
        "paper": module.PAPER,
        "mode": mode,
        "command": command,
        "settings": asdict(settings),
        "machine": machine() | {"torch_threads": torch_threads()},
        "code": code,
        **body,
        "total_wall_s": time.perf_counter() - start,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results["checks"] = [asdict(c) | {"status": c.status()} for c in module.checks(results)]
    path = out_dir / "results.json"
    path.write_text(json.dumps(results, indent=2, default=_json_default))
    print(f"wrote {path} ({results['total_wall_s']:.0f} s total)")
    for c in results["checks"]:
        print(f"  {c['figure']}: {c['value']:.4g} {c['op']} {c['target']:.4g} -> {c['status']}")
    return results


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def new_axes():
    """(pyplot, figure, axes) of one 6 × 4 in figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    return plt, fig, ax


def finish_axes(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str = "") -> Path:
    """Labels, a light grid and the legend on ``ax``; the figure saved as PNG at ``path``
    (120 dpi) and closed."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_lines(
    path: Path,
    series: dict[str, tuple],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    styles: dict[str, dict] | None = None,
    logy: bool = False,
) -> Path:
    """One line per series {label: (x, y)}; PNG via the Agg backend; ``styles`` per label
    (matplotlib keywords, e.g. ``{"ls": "--"}``)."""
    plt, fig, ax = new_axes()
    for label, (x, y) in series.items():
        style = {"marker": "o", "ms": 3, **((styles or {}).get(label, {}))}
        ax.plot(x, y, label=label, **style)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    return finish_axes(plt, fig, ax, path, xlabel, ylabel, title)


def points(values: list[float]) -> list[float]:
    """Fractions -> percentage points."""
    return [100.0 * v for v in values]
