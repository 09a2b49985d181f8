"""Joint training of both halves over sampled β and SNR (Hyper-VIB Alg. 1, Hyper-AJSCC Alg. 1).

Each example draws its own β (log-uniform on [β_lo, β_hi] by default, uniform as in
Hyper-VIB eq. (15), or one fixed value for the plain-VIB baseline) and its own SNR
(uniform in dB, or fixed for the single-SNR baseline). The channel is a non-trainable
AWGN layer inside the model, or Rayleigh/Rician block fading (``fading``, shared/fading.py)
with zero forcing, the encoder told the average or the instantaneous SNR
(``fading_feedback``) and the decoder the receiver's instantaneous SNR.
Loss: w(β)·[distortion + β·KL], Hyper-VIB eq. (16) with a per-example weight w(β) > 0
(``loss_weight``, shared.nn.losses.beta_weight) that keeps the large-β draws from dominating
the shared weights (it also moves the shared solution: the optimum of
each β is kept only by a model with separate parameters per β).
``objective="paper"`` trains with eq. (15)-(17) as written instead: one β ~ U[a, b] per
minibatch and no weight.
The SNR is drawn from the range widened by ``snr_margin_db`` on both sides, so the ends of the
served range are interior points of the training distribution (Hyper-AJSCC's models are
weakest at the edges of their training range).
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from shared.fading import FEEDBACK_MODES, NO_FADING, Fading, check_feedback, feedback_snr_db
from shared.fading import draw as draw_fading
from shared.nn.accelerator import pick_device
from shared.nn.fading import apply_fading
from shared.nn.losses import LOSS_WEIGHTS, beta_weight, distortion, vib_loss
from shared.nn.model import ModelConfig
from shared.nn.zoo import build
from trainer import distributed
from trainer.dataset import Dataset
from trainer.loop import batch_sums, run_epochs, save_run

BETA_DISTS = ("log-uniform", "uniform")
# "weighted": β per example (log-uniform by default) and the loss weight w(β), the project's
# default; "paper": Hyper-VIB eq. (15)-(17) and Alg. 1 as written, one β ~ U[a, b] per
# minibatch (the paper samples β^(t), then a minibatch of M examples for it), no weight.
OBJECTIVES = ("weighted", "paper")
# β per example (the default) or one β per minibatch as Hyper-VIB Alg. 1 draws it (the paper
# objective always does); with one β per batch eq. (14)'s kernel gates run as one plain conv
BETA_PER = ("example", "minibatch")
# how training draws the SNR: uniform in dB (the default), or the noise variance σ² uniform
# over the range (VL-VFE §IV-B: "we sample the channel variance σ² from the uniform
# distribution p(σ²)"), which puts more draws at low SNR
SNR_DISTS = ("uniform-db", "uniform-noise-var")
# the rate term's weight per example: β as it is, or β·0.1/σ at the example's training SNR
# (σ² = 10^(-SNR/10)): not in VL-VFE's text, but its authors' code trains VL-VFE so (the rate
# weighs less at low SNR, where the features need the room, and more at high SNR)
RATE_SCALES = ("none", "inverse-sigma")


# ModelConfig fields a user chooses; the data set fills task/input_shape/n_outputs and the
# target scale, and the baselines switch the gates off (see model_config_for)
MODEL_OPTIONS = (
    "arch", "d", "hidden", "head", "prior", "bits", "quantizer_train", "variable_length",
    "gamma0", "prune", "conv_gate", "kl_bound", "n_links", "overlap", "link_dropout", "family",
)  # fmt: skip


@dataclass
class TrainConfig:
    """One training run: the data set, the architecture (``model``) and the schedule.

    Build it from flat options with :meth:`from_options` (``bits=4, epochs=10, ...``)."""

    task: str = "fashion-mnist"  # the data set, one of trainer.data.TASKS
    data_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    beta_range: tuple[float, float] = (1e-5, 1.0)
    beta_dist: str = "log-uniform"
    fixed_beta: float | None = None
    snr_range: tuple[float, float] = (0.0, 25.0)
    snr_margin_db: float = 3.0  # training draws SNR from [lo - margin, hi + margin]
    fixed_snr: float | None = None
    loss_weight: str = "inverse-d-beta"  # w(β): one of LOSS_WEIGHTS
    weight_knee: float | None = None  # the knee β of loss_weight="knee": w = 1/(1 + β/knee)
    beta_per: str = "example"  # one of BETA_PER
    # Hyper-VIB Alg. 1's T with one β per minibatch: T draws of β per update, each shared by
    # its own n/T examples of the minibatch (eq. 17 averages the T losses); 1 = one β per batch
    beta_draws: int = 1
    snr_dist: str = "uniform-db"  # one of SNR_DISTS
    rate_scale: str = "none"  # one of RATE_SCALES
    objective: str = "weighted"  # one of OBJECTIVES
    kl_warmup_epochs: float = 0.0  # β·KL ramps linearly from 0 over this many epochs
    kl_delay_epochs: float = 0.0  # cross-entropy only for this many epochs before the ramp
    # block fading in place of AWGN (shared/fading.py): "none" | "rayleigh" | "rician"
    fading: str = "none"
    k_factor: float = 0.0  # Rician K (linear)
    coherence: int | None = None  # complex symbols per block; None = one per transmission
    fading_feedback: str = "average"  # the SNR the encoder's gates get: FEEDBACK_MODES
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    train_subset: int | None = None  # first N training examples (quick runs)
    device: str = "auto"
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.beta_dist not in BETA_DISTS:
            raise ValueError(f"beta_dist must be one of {BETA_DISTS}, got {self.beta_dist!r}")
        lo, hi = self.beta_range
        if not (0 < lo <= hi):
            raise ValueError(f"beta range must satisfy 0 < lo <= hi, got {self.beta_range}")
        if self.snr_range[0] > self.snr_range[1]:
            raise ValueError(f"snr range must satisfy lo <= hi, got {self.snr_range}")
        if self.fixed_beta is not None and self.fixed_beta <= 0:
            raise ValueError(f"--fixed-beta must be > 0, got {self.fixed_beta}")
        if self.loss_weight not in LOSS_WEIGHTS:
            raise ValueError(f"loss_weight must be one of {LOSS_WEIGHTS}, got {self.loss_weight!r}")
        if self.loss_weight == "knee" and not (self.weight_knee or 0) > 0:
            raise ValueError(f"loss_weight 'knee' needs weight_knee > 0, got {self.weight_knee}")
        if self.beta_per not in BETA_PER:
            raise ValueError(f"beta_per must be one of {BETA_PER}, got {self.beta_per!r}")
        if self.snr_dist not in SNR_DISTS:
            raise ValueError(f"snr_dist must be one of {SNR_DISTS}, got {self.snr_dist!r}")
        if self.rate_scale not in RATE_SCALES:
            raise ValueError(f"rate_scale must be one of {RATE_SCALES}, got {self.rate_scale!r}")
        if self.beta_draws < 1:
            raise ValueError(f"beta_draws must be >= 1, got {self.beta_draws}")
        if self.beta_draws > 1 and self.beta_per != "minibatch" and self.objective != "paper":
            raise ValueError(
                "beta_draws > 1 draws β per part of a minibatch: it needs "
                "beta_per 'minibatch' or objective 'paper'"
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.objective == "paper" and (self.beta_dist, self.loss_weight) != ("uniform", "none"):
            raise ValueError(
                "objective 'paper' is Hyper-VIB eq. (15)-(17): β uniform on [a, b], no loss "
                f"weight; got beta_dist={self.beta_dist!r}, loss_weight={self.loss_weight!r}"
            )
        self.fading_channel()  # raises ValueError naming the bad field
        check_feedback(self.fading_feedback)
        if self.fading_feedback == "stale":
            raise ValueError(f"training feedback must be one of {FEEDBACK_MODES[:2]}")
        if self.fading != "none" and self.model.n_links > 1:
            raise ValueError("fading trains single-device models only (n_links 1)")
        if min(self.snr_margin_db, self.kl_warmup_epochs, self.kl_delay_epochs) < 0:
            raise ValueError("snr_margin_db, kl_warmup_epochs and kl_delay_epochs must be >= 0")

    @classmethod
    def from_options(cls, **options) -> TrainConfig:
        """Flat keyword options, as the CLI and the experiments give them: the architecture
        options (MODEL_OPTIONS) go to ``model``, the rest to the run."""
        model = {k: options.pop(k) for k in MODEL_OPTIONS if k in options}
        if options.get("objective") == "paper":
            options.setdefault("beta_dist", "uniform")
            options.setdefault("loss_weight", "none")
        return cls(model=ModelConfig(**model), **options)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        """From ``train_log.json``'s ``train_config`` (nested, or flat as older logs wrote)."""
        names = {f.name for f in fields(cls)} | set(MODEL_OPTIONS)
        options = {k: v for k, v in raw.items() if k in names and k != "model"}
        options.update({k: v for k, v in (raw.get("model") or {}).items() if k in MODEL_OPTIONS})
        for key in ("beta_range", "snr_range"):
            if key in options:
                options[key] = tuple(options[key])
        return cls.from_options(**options)

    @property
    def trained_beta_range(self) -> tuple[float, float]:
        if self.fixed_beta is not None:
            return (self.fixed_beta, self.fixed_beta)
        return tuple(self.beta_range)

    def fading_channel(self) -> Fading:
        """The training channel's fading (NO_FADING for AWGN)."""
        if self.fading == "none":
            if self.k_factor or self.coherence is not None:
                raise ValueError("k_factor and coherence need fading rayleigh or rician")
            return NO_FADING
        return Fading(self.fading, k_factor=self.k_factor, coherence=self.coherence)

    @property
    def trained_snr_range(self) -> tuple[float, float]:
        if self.fixed_snr is not None:
            return (self.fixed_snr, self.fixed_snr)
        return tuple(self.snr_range)


def sample_beta(n: int, cfg: TrainConfig, gen: torch.Generator, links: int = 1) -> torch.Tensor:
    """β per example and link [n, links]: log-uniform, uniform (Hyper-VIB eq. 15) or fixed;
    with ``objective="paper"`` or ``beta_per="minibatch"`` one draw for the whole minibatch
    (Hyper-VIB Alg. 1)."""
    if cfg.fixed_beta is not None:
        return torch.full((n, links), float(cfg.fixed_beta))
    lo, hi = cfg.beta_range
    if (cfg.objective == "paper" or cfg.beta_per == "minibatch") and cfg.beta_draws > 1:
        # T interleaved parts: example i takes draw i mod T (a minibatch is a random sample,
        # so which examples share a draw does not matter; interleaved, the grouped conv of
        # shared/nn/hyper.py needs no copies). A last minibatch of n < T examples: n draws.
        draws = min(cfg.beta_draws, n)
        u = torch.rand(draws, links, generator=gen).repeat(math.ceil(n / draws), 1)[:n]
    elif cfg.objective == "paper" or cfg.beta_per == "minibatch":
        u = torch.rand(1, links, generator=gen).expand(n, links)
    else:
        u = torch.rand(n, links, generator=gen)
    if cfg.beta_dist == "uniform":
        return lo + (hi - lo) * u
    return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)


def sample_snr(n: int, cfg: TrainConfig, gen: torch.Generator, links: int = 1) -> torch.Tensor:
    """SNR in dB per example and link [n, links]: uniform over the range widened by the
    margin (each link its own draw), or fixed; with ``snr_dist="uniform-noise-var"`` the noise
    variance σ² = 10^(-SNR/10) is uniform over that range instead (VL-VFE §IV-B)."""
    if cfg.fixed_snr is not None:
        return torch.full((n, links), float(cfg.fixed_snr))
    lo, hi = cfg.snr_range[0] - cfg.snr_margin_db, cfg.snr_range[1] + cfg.snr_margin_db
    u = torch.rand(n, links, generator=gen)
    if cfg.snr_dist == "uniform-noise-var":
        var_lo, var_hi = 10.0 ** (-hi / 10.0), 10.0 ** (-lo / 10.0)
        return -10.0 * torch.log10(var_lo + (var_hi - var_lo) * u)
    return lo + (hi - lo) * u


def rate_ramp(epochs_done: float, delay: float, warmup: float) -> float:
    """The factor on β·KL after ``epochs_done`` epochs: 0 for the first ``delay`` epochs
    (cross-entropy only), then rising linearly to 1 over ``warmup`` epochs (1 at once when
    ``warmup`` is 0). VL-VFE's public code trains 5 epochs without the rate term, then ramps β
    over 10 (not in the paper's text)."""
    if epochs_done <= delay:
        return 0.0
    return min(1.0, (epochs_done - delay) / warmup) if warmup else 1.0


def rate_scale(cfg: TrainConfig, snr_db: torch.Tensor) -> torch.Tensor | float:
    """The factor on β in the rate term (``cfg.rate_scale``): 1, or 0.1/σ with σ the noise
    standard deviation at each example's training SNR, snr_db [N, links]."""
    if cfg.rate_scale == "inverse-sigma":
        return 0.1 * torch.pow(10.0, snr_db / 20.0)
    return 1.0


def fading_inputs(cfg: TrainConfig, fading: Fading, snr: torch.Tensor, d: int, rng) -> dict:
    """The keyword arguments of the model's forward under block fading: the SNR the encoder is
    told (``cfg.fading_feedback``) and the receiver's instantaneous SNR for the decoder, both
    clipped to the SNR range training draws from, and the fading channel itself."""
    fading_draw = draw_fading(fading, len(snr), d, snr[:, 0].cpu().numpy(), rng)
    lo, hi = cfg.snr_range[0] - cfg.snr_margin_db, cfg.snr_range[1] + cfg.snr_margin_db
    told = np.clip(feedback_snr_db(fading_draw, cfg.fading_feedback), lo, hi)
    heard = np.clip(fading_draw.instantaneous_snr_db(), lo, hi)

    def as_column(values):
        return torch.from_numpy(values.astype(np.float32))[:, None].to(snr.device)

    return {
        "snr_db": as_column(told) if cfg.fixed_snr is None else snr,
        "decoder_snr_db": as_column(heard) if cfg.fixed_snr is None else snr,
        "channel": lambda symbols: apply_fading(symbols, fading_draw),
    }


def model_config_for(cfg: TrainConfig, data: Dataset) -> ModelConfig:
    """cfg.model completed from the data set; a fixed β or SNR switches its gates off."""
    return replace(
        cfg.model,
        task=data.task,
        input_shape=data.input_shape,
        n_outputs=data.n_outputs,
        beta_gate=cfg.fixed_beta is None,
        snr_scale=cfg.fixed_snr is None,
        target_mean=data.target_mean,
        target_std=data.target_std,
    )


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def machine_info(device: str) -> dict:
    info = {"device": device, "cpu_cores": os.cpu_count(), "platform": platform.platform()}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def training_tensors(data: Dataset, subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training inputs and targets as tensors: regression targets standardised with the
    data set's mean and std (the decoder predicts standard units), the first ``subset``
    examples only when given."""
    x_all = torch.from_numpy(data.x_train)
    y_all = torch.from_numpy(data.y_train)
    if data.task == "regression":
        y_all = (y_all - data.target_mean) / data.target_std
    if subset:
        x_all, y_all = x_all[:subset], y_all[:subset]
    return x_all, y_all


def train(cfg: TrainConfig, data: Dataset, out_dir: str | Path | None = None):
    """Train one model; returns (model, log dict). Writes checkpoint.pt and train_log.json.

    Inside a torch.distributed process group (torchrun, see trainer.distributed) every rank
    trains its shard of each epoch through DistributedDataParallel; the logged epoch metrics
    are summed over the ranks, and rank 0 alone writes the files.
    """
    ranks = distributed.current()
    seed_everything(distributed.rank_seed(cfg.seed, ranks.rank))
    device = pick_device(cfg.device)
    model = build(model_config_for(cfg, data)).to(device)
    links = model.config.n_links
    net = distributed.wrap(model, ranks, device)
    batch_size = distributed.batch_per_rank(cfg.batch_size, ranks)
    x_all, y_all = training_tensors(data, cfg.train_subset)
    gen = torch.Generator().manual_seed(distributed.rank_seed(cfg.seed, ranks.rank))
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = math.ceil(distributed.shard_size(len(x_all), ranks) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    fading = cfg.fading_channel()
    fading_rng = np.random.default_rng(distributed.rank_seed(cfg.seed, ranks.rank) + 7)

    def order(epoch: int) -> torch.Tensor:
        model.train()
        return distributed.epoch_indices(len(x_all), epoch, cfg.seed, ranks, gen)

    def step(idx: torch.Tensor, global_step: int) -> dict:
        x, y = x_all[idx].to(device), y_all[idx].to(device)
        beta = sample_beta(len(idx), cfg, gen, links).to(device)
        snr = sample_snr(len(idx), cfg, gen, links).to(device)
        if fading.active:
            out = net(x, beta, **fading_inputs(cfg, fading, snr, model.config.d, fading_rng))
        else:
            out = net(x, beta, snr)
        dist = distortion(out["outputs"], y, data.task)
        done = (global_step + 1) / steps_per_epoch  # epochs done, counting this step
        warmup = rate_ramp(done, cfg.kl_delay_epochs, cfg.kl_warmup_epochs)
        weight = beta_weight(beta, model.config.d, cfg.loss_weight, cfg.weight_knee)
        loss = vib_loss(dist, out["kl"], beta * warmup * rate_scale(cfg, snr), weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        kl = out["kl"].reshape(len(idx), -1).sum(dim=1).mean()
        return batch_sums(data.task, out["outputs"], y, loss=loss, distortion=dist.mean(), kl=kl)

    log = {"train_config": asdict(cfg), "model_config": model.config.to_dict()}
    log["machine"] = machine_info(device)
    log["world_size"] = ranks.world_size
    log["distributed"] = {"backend": ranks.backend, "batch_size_per_rank": batch_size}
    start, start_cpu = time.perf_counter(), time.process_time()
    log["epochs"] = run_epochs(
        cfg.epochs, steps_per_epoch, batch_size, order, step,
        progress=cfg.progress and ranks.is_main, reduce=distributed.sum_over_ranks,
    )  # fmt: skip
    log["train_wall_s"] = time.perf_counter() - start
    # CPU time of this process: what the wall time would be on an idle core with one torch
    # thread; on a machine shared with other jobs it varies far less than the wall time
    log["train_cpu_s"] = time.process_time() - start_cpu
    # the same summed over all ranks (equal to train_cpu_s for one process)
    log["train_cpu_s_all_ranks"] = distributed.sum_over_ranks({"s": log["train_cpu_s"]})["s"]
    model = model.cpu().eval()
    if out_dir is not None and ranks.is_main:
        save_run(model, log, out_dir)
    return model, log
