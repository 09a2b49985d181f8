"""Entropy-coded digital transmission: fine-tune a quantized model with its code length.

Starting from a trained quantized model (``python -m trainer train --bits 4 ...``), this
fits a :class:`LearnedIndexPrior` (a categorical per dimension over the 2^bits levels,
conditioned on β) and trains encoder, decoder and prior jointly with

    w(β)·[distortion + β·ln2·R(x)],  R = expected code length in bits (entropy_model.py),

the Hyper-VIB loss (eq. 16) with the rate counted in real bits instead of the KL bound of
QML-IB eq. (14). The prior starts from the empirical index frequencies at each grid β.
``distill`` > 0 adds distillation to the frozen base model, w·λ·T²·KL(teacher || student) at
temperature T (Hinton et al., 2015), so that the fine-tune trades bits without losing the
base model's accuracy at small β; ``freeze_encoder`` fits the entropy model alone to the
base model's hard indices.
``python -m trainer digital --base artifacts/quick --out artifacts/quick-digital`` writes the
usual artifacts plus ``manifest.json["entropy_model"]`` (the table both ends code with).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from shared.nn.entropy_model import LN2, LearnedIndexPrior
from shared.nn.losses import beta_weight, distortion, vib_loss
from shared.nn.model import CoInferenceModel
from shared.nn.variable_length import active_mask, apply_mask
from shared.nn.zoo import load_model
from trainer.evaluate import encode_dataset
from trainer.loop import batch_sums, run_epochs, save_run

PROB_FLOOR = 1e-6  # empirical-frequency init: no level starts at probability 0


@dataclass
class DigitalConfig:
    epochs: int = 2
    batch_size: int = 128
    lr: float = 2e-3
    prior_lr: float = 1e-2
    train_subset: int | None = None
    freeze_encoder: bool = False  # True: fit only the prior (the encoder's rate stays as is)
    distill: float = 0.0  # weight of the distillation term to the frozen base model
    distill_temperature: float = 2.0
    n_grid: int = 9
    seed: int = 0
    progress: bool = True


def train_config_of(model_dir: Path):
    """The base model's TrainConfig (β/SNR ranges, loss weight) from its train_log.json."""
    from trainer.train import TrainConfig

    log = json.loads((Path(model_dir) / "train_log.json").read_text())
    return TrainConfig.from_dict(log["train_config"])


def level_distribution(model: CoInferenceModel, mu, theta, hard: bool = False) -> torch.Tensor:
    """p(k | x) [N, d, K]: QML-IB eq. (10)-(11) for a Gaussian head, one-hot of the sent
    index otherwise or when ``hard`` (a frozen encoder: the prior fits the coded indices)."""
    if model.config.head == "gaussian" and not hard:
        return model.quantizer.level_probabilities(mu, theta.clamp_min(1e-4))
    n_levels = 2**model.config.bits
    return torch.nn.functional.one_hot(model.quantizer.indices(mu), n_levels).to(mu.dtype)


def distillation(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    """T²·KL(softmax(t/T) || softmax(s/T)) per example [N] (Hinton et al., 2015): keeps
    the fine-tuned decoder's answers close to the base model's at every β."""
    t = torch.log_softmax(teacher_logits / temperature, dim=1)
    s = torch.log_softmax(student_logits / temperature, dim=1)
    return temperature**2 * (t.exp() * (t - s)).sum(dim=1)


def digital_forward(
    model: CoInferenceModel, prior: LearnedIndexPrior, x, beta, snr_db, hard: bool = False
) -> dict:
    """CoInferenceModel.forward with the rate in bits: {"outputs", "rate_bits", "mask"};
    ``hard``: the rate of the sent indices (see :func:`level_distribution`)."""
    from shared.nn.channel import awgn, noise_var_from_snr

    enc = model.encoder(x, beta, snr_db, noise_var_from_snr(snr_db))
    mu, theta = enc["mu"], enc["theta"]
    z = mu + theta * torch.randn_like(mu) if model.training else mu
    mask = (
        active_mask(enc["gamma"], model.config.gamma0)
        if model.config.variable_length
        else torch.ones_like(mu)
    )
    symbols = apply_mask(model.quantizer(z), mask)
    received = torch.where(mask > 0, awgn(symbols, snr_db), symbols)  # only the prefix is sent
    outputs = model.decoder(received, beta, snr_db)
    rate = prior.rate_bits(level_distribution(model, mu, theta, hard), beta, mask)
    return {"outputs": outputs, "rate_bits": rate, "mask": mask}


@torch.no_grad()
def hard_indices(model: CoInferenceModel, x: np.ndarray, beta: float, snr_db: float, batch=2500):
    """The device's level indices [N, d] and n_active [N] (torch path of encoder.onnx)."""
    return encode_dataset(model, x, beta, snr_db, batch, key="levels")


@torch.no_grad()
def init_prior_from_counts(prior, model, x, snr_range, rng: np.random.Generator) -> None:
    """Logits at each grid β = log of the empirical index frequencies (SNR drawn per batch)."""
    for g, log_beta in enumerate(prior.log_beta_grid.tolist()):
        snr = float(rng.uniform(*snr_range))
        idx, _ = hard_indices(model, x, math.exp(log_beta), snr)
        counts = torch.nn.functional.one_hot(idx, prior.logits.shape[-1]).float().mean(0)
        prior.logits[g] = torch.log(counts + PROB_FLOOR)


def train_digital(model: CoInferenceModel, data, base_cfg, cfg: DigitalConfig):
    """Fine-tune (model, prior) with the bit rate; returns (model, prior, log)."""
    from trainer.train import sample_beta, sample_snr, seed_everything, training_tensors

    if model.quantizer is None:
        raise ValueError("entropy coding needs a quantized model (train with --bits)")
    seed_everything(cfg.seed)
    x_all, y_all = training_tensors(data, cfg.train_subset)
    prior = LearnedIndexPrior(
        model.config.d, 2**model.config.bits, base_cfg.trained_beta_range, cfg.n_grid
    )
    rng = np.random.default_rng(cfg.seed)
    model.eval()
    teacher = copy.deepcopy(model).requires_grad_(False) if cfg.distill > 0 else None
    init_prior_from_counts(prior, model, x_all[:5000].numpy(), base_cfg.trained_snr_range, rng)
    groups = [{"params": prior.parameters(), "lr": cfg.prior_lr}]
    if not cfg.freeze_encoder:
        groups.append({"params": model.parameters(), "lr": cfg.lr})
    optimiser = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(cfg.seed)

    def order(epoch: int) -> torch.Tensor:
        model.train(not cfg.freeze_encoder)
        model.requires_grad_(not cfg.freeze_encoder)
        return torch.randperm(len(x_all), generator=gen)

    def step(idx: torch.Tensor, global_step: int) -> dict:
        x, y = x_all[idx], y_all[idx]
        beta = sample_beta(len(idx), base_cfg, gen)
        snr = sample_snr(len(idx), base_cfg, gen)
        out = digital_forward(model, prior, x, beta, snr, hard=cfg.freeze_encoder)
        dist = distortion(out["outputs"], y, data.task)
        if teacher is not None:
            with torch.no_grad():
                teacher.eval()  # the base model's own answer: z = μ, hard levels
                target = digital_forward(teacher, prior, x, beta, snr)["outputs"]
            dist = dist + cfg.distill * distillation(
                out["outputs"], target, cfg.distill_temperature
            )
        weight = beta_weight(beta, model.config.d, base_cfg.loss_weight)
        loss = vib_loss(dist, out["rate_bits"] * LN2, beta, weight)
        if cfg.freeze_encoder:  # only the prior learns: minimise the code length itself
            loss = out["rate_bits"].mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return batch_sums(
            data.task, out["outputs"], y, loss=loss, rate_bits=out["rate_bits"].mean()
        )

    start = time.perf_counter()
    steps = math.ceil(len(x_all) / cfg.batch_size)
    epochs = run_epochs(
        cfg.epochs, steps, cfg.batch_size, order, step, label="digital epoch", progress=cfg.progress
    )
    log = {"digital_config": asdict(cfg), "epochs": epochs}
    log["train_wall_s"] = time.perf_counter() - start
    return model.eval(), prior.eval(), log


def export_digital(model, prior, data, base_cfg, out_dir: Path, log: dict) -> dict:
    """The usual artifacts (encoder.onnx, decoder.pt, manifest) plus the entropy table."""
    from trainer.export import write_artifacts

    out_dir = save_run(model, {"train_config": asdict(base_cfg), **log}, out_dir)
    torch.save(prior.state_dict(), out_dir / "entropy_prior.pt")
    return write_artifacts(
        model, data, base_cfg.trained_beta_range, base_cfg.trained_snr_range, out_dir,
        extra={"entropy_model": prior.to_dict()},
    )  # fmt: skip


def add_parser(sub) -> None:
    """``python -m trainer digital``: the fine-tune's flags on the trainer's command line."""
    p = sub.add_parser(
        "digital", help="fine-tune a quantized model with its code length (entropy-coded link)"
    )
    p.add_argument("--base", required=True, help="a trained quantized model folder")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--freeze-encoder", action="store_true", help="fit the entropy model only")
    p.add_argument("--distill", type=float, default=0.0, help="distillation weight to the base")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=cmd_digital)


def cmd_digital(args) -> int:
    from trainer.data import load_dataset

    torch.set_num_threads(1)
    base, out = Path(args.base), Path(args.out)
    if out.resolve() == base.resolve():
        raise ValueError("--out must differ from --base")
    base_cfg = train_config_of(base)
    data = load_dataset(base_cfg.task, args.data_dir or base_cfg.data_dir, seed=base_cfg.seed)
    model = load_model(base)
    cfg = DigitalConfig(
        epochs=args.epochs, lr=args.lr, train_subset=args.train_subset,
        freeze_encoder=args.freeze_encoder, distill=args.distill, seed=args.seed,
        progress=not args.no_progress,
    )  # fmt: skip
    model, prior, log = train_digital(model, data, base_cfg, cfg)
    shutil.rmtree(out, ignore_errors=True)
    manifest = export_digital(model, prior, data, base_cfg, out, log)
    print(f"wrote {out} (model id {manifest['model_id']})")
    return 0
