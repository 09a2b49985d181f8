"""python -m trainer {train, export, eval, parity} — see README "Training"."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import NoReturn

DEFAULT_LINK_DROPOUT = 0.15
QUICK = {"epochs": 4, "batch_size": 128, "lr": 2e-3}
FULL = {"epochs": 30, "batch_size": 128, "lr": 1e-3}


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse names the flag in the usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


# (flag, default, choices, help) of the flags that pick one of a few named modes
MODEL_MODES = (
    ("--conv-gate", "channel", ("channel", "kernel"),
     "CNN β gates: per output channel, or per kernel block + bias (Hyper-VIB eq. 14)"),
    ("--kl-bound", "eq14", ("eq14", "mixture"),
     "quantized rate term: QML-IB eq. 14, or its tighter mixture term"),
)  # fmt: skip


def train_modes() -> tuple:
    """The run's mode flags, as MODEL_MODES: β and SNR draws, the loss, fading."""
    from shared.fading import FADING_KINDS
    from shared.nn.losses import LOSS_WEIGHTS

    return (
        ("--beta-dist", None, ("log-uniform", "uniform"),
         "default log-uniform (uniform with --objective paper)"),
        ("--objective", "weighted", ("weighted", "paper"),
         "weighted: β per example and the weight w(β) (default); paper: Hyper-VIB eq. (15)-(17), "
         "one β ~ U[a, b] per minibatch, no weight"),
        ("--beta-per", "example", ("example", "minibatch"),
         "one β per example, or one per minibatch as Hyper-VIB Alg. 1 (--objective paper)"),
        ("--loss-weight", None, LOSS_WEIGHTS,
         "per-example weight w(β) of the loss: 1, 1/(1+d·β), 1/β or 1/(1+β/knee) "
         "(default inverse-d-beta; none with --objective paper)"),
        ("--snr-dist", "uniform-db", ("uniform-db", "uniform-noise-var"),
         "training SNR draw: uniform in dB, or σ² uniform (VL-VFE §IV-B)"),
        ("--rate-scale", "none", ("none", "inverse-sigma"),
         "β of the rate term as it is, or β·0.1/σ at each example's SNR (VL-VFE's code)"),
        ("--fading", "none", FADING_KINDS,
         "block fading in place of AWGN (zero forcing with perfect CSI; shared/fading.py)"),
        ("--fading-feedback", "average", ("average", "instantaneous"),
         "the SNR the encoder's gates get under fading"),
    )  # fmt: skip


def add_modes(p: argparse.ArgumentParser, modes) -> None:
    """One flag per (flag, default, choices, help)."""
    for flag, default, choices, text in modes:
        p.add_argument(flag, default=default, choices=choices, help=text)


def add_values(p: argparse.ArgumentParser, values) -> None:
    """One flag per (flag, type, default, help)."""
    for flag, kind, default, text in values:
        p.add_argument(flag, type=kind, default=default, help=text)


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The data set and the architecture: what goes into the model's ModelConfig."""
    from trainer.data import TASKS

    p.add_argument("--task", default="fashion-mnist", choices=TASKS)
    p.add_argument("--data-dir", default=None, help="folder with the dataset files")
    p.add_argument("--arch", default="mlp", choices=("mlp", "cnn"))
    p.add_argument("--d", type=int, default=64, help="feature dimension = max symbols")
    p.add_argument("--hidden", type=int, default=512, help="MLP device hidden width")
    p.add_argument(
        "--head",
        default=None,
        choices=("gaussian", "deterministic"),
        help="default: gaussian, or deterministic with --variable-length/log-uniform",
    )
    p.add_argument("--prior", default="gaussian", choices=("gaussian", "log-uniform"))
    p.add_argument("--bits", type=int, default=0, choices=(0, 1, 2, 4, 8), help="0 = no quantizer")
    p.add_argument("--quantizer-train", default="soft", choices=("soft", "ste"))
    p.add_argument("--variable-length", action="store_true")
    add_modes(p, MODEL_MODES)
    p.add_argument(
        "--n-links", type=int, default=1, choices=(1, 2, 4),
        help="QML-IB devices K, each seeing one equal sub-image (2: halves, 4: quadrants)",
    )  # fmt: skip
    p.add_argument("--overlap", type=int, default=0, help="pixels each view extends (K > 1)")
    add_values(p, (
        ("--link-dropout", float, None,
         "training: probability a link is dropped (default 0.15 when K > 1, else 0)"),
        ("--beta-gate-scale", float, 1.0,
         "the β modules' parameters stored as s·(u', v'): with Adam a learning rate s times the "
         "model's for the hypernetwork alone (1 = Hyper-VIB eq. 13 as written; 10 is "
         "train-once-vs-grid's fast-gates option)"),
        ("--family", str, None,
         "model family of the zoo (shared/nn/zoo.py, docs/OWN_MODEL.md); default hyper-vib, "
         "multi-link with --n-links > 1; a family of your own needs --model-module"),
    ))  # fmt: skip


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The model's flags (add_model_flags), then the run's: β and SNR draws, the loss, fading,
    the schedule."""
    add_model_flags(p)
    p.add_argument("--beta-min", type=float, default=1e-5)
    p.add_argument("--beta-max", type=float, default=1.0)
    p.add_argument("--fixed-beta", type=float, default=None, help="plain VIB baseline at one β")
    p.add_argument("--snr-min", type=float, default=0.0)
    p.add_argument("--snr-max", type=float, default=25.0)
    p.add_argument("--fixed-snr", type=float, default=None, help="baseline trained at one SNR")
    add_values(p, (
        ("--snr-margin", float, 3.0,
         "dB: training draws SNR from [snr-min - margin, snr-max + margin]"),
        ("--beta-draws", positive_int, 1,
         "with one β per minibatch: T draws of β per update, each for n/T of the examples "
         "(Hyper-VIB Alg. 1's T; eq. 17 averages the T losses)"),
        ("--weight-knee", float, None, "the knee β of --loss-weight knee: w(β) = 1/(1 + β/knee)"),
        ("--k-factor", non_negative_float, 0.0, "Rician K (linear)"),
        ("--coherence", positive_int, None,
         "complex symbols per fading block (default: one block per transmission)"),
    ))  # fmt: skip
    add_modes(p, train_modes())
    p.add_argument("--kl-warmup-epochs", type=float, default=0.0, help="β·KL ramps up over these")
    p.add_argument(
        "--kl-delay-epochs",
        type=float,
        default=0.0,
        help="cross-entropy only for these epochs, before the β·KL ramp",
    )
    p.add_argument("--epochs", type=int, default=None, help="default 30 (4 with --quick)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument("--lr", type=float, default=None, help="default 1e-3 (2e-3 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-subset", type=int, default=None, help="first N training examples")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quick", action="store_true", help=f"small run for tests/demos: {QUICK}")
    p.add_argument("--no-progress", action="store_true")


def train_config_from(args):
    from trainer.train import TrainConfig

    head = args.head or (
        "deterministic" if args.variable_length or args.prior == "log-uniform" else "gaussian"
    )
    cfg = dict(
        task=args.task, data_dir=args.data_dir, arch=args.arch, d=args.d, hidden=args.hidden,
        head=head, prior=args.prior, bits=args.bits or None,
        quantizer_train=args.quantizer_train, variable_length=args.variable_length,
        conv_gate=args.conv_gate, kl_bound=args.kl_bound, n_links=args.n_links,
        overlap=args.overlap, link_dropout=(
            args.link_dropout if args.link_dropout is not None
            else (DEFAULT_LINK_DROPOUT if args.n_links > 1 else 0.0)
        ),
        beta_range=(args.beta_min, args.beta_max), objective=args.objective,
        beta_dist=args.beta_dist or ("uniform" if args.objective == "paper" else "log-uniform"),
        fixed_beta=args.fixed_beta, snr_range=(args.snr_min, args.snr_max),
        fixed_snr=args.fixed_snr, snr_margin_db=args.snr_margin,
        loss_weight=args.loss_weight or ("none" if args.objective == "paper" else "inverse-d-beta"),
        weight_knee=args.weight_knee, beta_per=args.beta_per, beta_draws=args.beta_draws,
        snr_dist=args.snr_dist, rate_scale=args.rate_scale,
        fading=args.fading, k_factor=args.k_factor, coherence=args.coherence,
        fading_feedback=args.fading_feedback,
        kl_warmup_epochs=args.kl_warmup_epochs, kl_delay_epochs=args.kl_delay_epochs,
        seed=args.seed, device=args.device,
        train_subset=args.train_subset, family=args.family,
        progress=not args.no_progress,
    )  # fmt: skip
    # explicit flags win over --quick, which wins over the full defaults
    for name, value in (QUICK if args.quick else FULL).items():
        explicit = getattr(args, name)
        cfg[name] = value if explicit is None else explicit
    built = TrainConfig.from_options(**cfg)
    # a model field beyond trainer.train.MODEL_OPTIONS (adding it there would change the code
    # of every stored experiment run)
    return replace(built, model=replace(built.model, beta_gate_scale=args.beta_gate_scale))


def headline_metrics(model, data, cfg) -> dict:
    """A few grid points for the manifest (the full grid is `trainer eval`)."""
    from trainer.evaluate import evaluate_point
    from trainer.multi_link_eval import evaluate_fused

    lo, hi = cfg.trained_beta_range
    betas = sorted({min(max(b, lo), hi) for b in (1e-4, 1e-2)})
    s_lo, s_hi = cfg.trained_snr_range
    snrs = sorted({min(max(s, s_lo), s_hi) for s in (10.0, 20.0)})
    out = {}
    for beta in betas:
        for snr in snrs:
            if model.config.n_links > 1:
                point = evaluate_fused(model, data, beta, snr, n=2000)
                point |= {"value": point["accuracy"], "n_active": float(model.config.d)}
            else:
                point = evaluate_point(model, data, beta, snr, draws=1)
            out[f"beta={beta:g},snr_db={snr:g}"] = point
    return out


def cmd_train(args) -> int:
    """Train (on every rank under torchrun), then evaluate and export on rank 0."""
    from trainer import distributed

    cfg = train_config_from(args)
    ranks = distributed.init_from_env(cfg.device)
    try:
        code = train_and_export(args, cfg, ranks)
    finally:
        distributed.shutdown()
    if ranks.world_size > 1:
        exit_rank(code)
    return code


def exit_rank(code: int) -> NoReturn:
    """End a torchrun rank now, with ``code``, once its work is written and its output flushed.

    Gloo's C++ transport can abort a rank after Python has finished, while static objects are
    destroyed ("terminate called without an active exception", no Python frame on the stack),
    even after the process group was destroyed: 2 runs in 40 of the two-rank CLI test on a
    loaded 2-core machine. torchrun then reports that rank as failed and stops the others, so a
    finished run fails. Each rank therefore leaves with ``os._exit`` once nothing is left to
    write, skipping that teardown.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os._exit(code)


def train_and_export(args, cfg, ranks) -> int:
    from trainer import distributed
    from trainer.data import load_dataset
    from trainer.export import write_artifacts
    from trainer.train import train

    if ranks.is_main:
        print("train settings:", json.dumps(asdict(cfg), default=str))
        if ranks.world_size > 1:
            print(f"distributed: {ranks.world_size} ranks, backend {ranks.backend}", flush=True)
    data = load_dataset(cfg.task, cfg.data_dir, seed=cfg.seed)
    model, log = train(cfg, data, args.out)
    # every rank leaves the group right after training's last collective (nothing below needs
    # it); the ranks then end through exit_rank, past gloo's C++ teardown
    distributed.shutdown()
    if not ranks.is_main:
        return 0
    metrics = headline_metrics(model, data, cfg)
    metrics["train_wall_s"] = log["train_wall_s"]
    manifest = write_artifacts(
        model, data, cfg.trained_beta_range, cfg.trained_snr_range, args.out, metrics,
        default_beta=args.default_beta,
    )  # fmt: skip
    print(f"trained in {log['train_wall_s']:.1f} s; model {manifest['model_id']} -> {args.out}")
    for key, point in metrics.items():
        if isinstance(point, dict):
            print(f"  {key}: {point['value']:.4f} ({point['n_active']:.1f} symbols)")
    return 0


def trained_run(model_dir):
    """(model, data set, train log) of a trained artifact folder."""
    from shared.nn.zoo import load_model
    from trainer.data import load_dataset

    log = json.loads((Path(model_dir) / "train_log.json").read_text())
    tc = log["train_config"]
    data = load_dataset(tc["task"], tc.get("data_dir"), seed=tc["seed"])
    return load_model(model_dir), data, log


def cmd_export(args) -> int:
    from trainer.export import write_artifacts
    from trainer.train import TrainConfig

    model, data, log = trained_run(args.model)
    cfg = TrainConfig.from_dict(log["train_config"])
    old = (
        json.loads((Path(args.model) / "manifest.json").read_text())
        if (Path(args.model) / "manifest.json").is_file()
        else {}
    )
    default_beta = args.default_beta if args.default_beta is not None else old.get("default_beta")
    manifest = write_artifacts(
        model, data, cfg.trained_beta_range, cfg.trained_snr_range, args.model, old.get("metrics"),
        default_beta=default_beta,
    )  # fmt: skip
    print(f"exported model {manifest['model_id']} -> {args.model}")
    return 0


def single_device_only(model, command: str) -> None:
    if getattr(model.config, "n_links", 1) > 1:
        raise ValueError(f"`trainer {command}` covers single-device models; a multi-link model is "
                         "evaluated by `trainer experiment multi-device` and its ONNX parity by "
                         "tests/trainer/test_multi_link_export.py")  # fmt: skip


def cmd_eval(args) -> int:
    from trainer.evaluate import evaluate_grid, plot_grid, write_report
    from trainer.parity import parity

    model, data, log = trained_run(args.model)
    single_device_only(model, "eval")
    print(f"evaluating {args.model}: {args.draws} noise draws per point")
    report = evaluate_grid(model, data, draws=args.draws, n=args.n)
    report["model_config"] = log["model_config"]
    report["train_wall_s"] = log.get("train_wall_s")
    report["machine"] = log.get("machine")
    lo, hi = log["train_config"]["beta_range"]
    fixed = log["train_config"].get("fixed_beta")
    beta = fixed if fixed else min(max(1e-4, lo), hi)
    report["parity"] = parity(model, args.model, data, beta, 20.0)
    path = write_report(report, args.model)
    plots = plot_grid(report, args.model)
    print(f"report: {path}; plots: {', '.join(str(p) for p in plots)}")
    print("best per PSNR:", json.dumps(report["best_per_psnr"]))
    print("parity:", json.dumps(report["parity"]))
    return 0


def cmd_parity(args) -> int:
    from trainer.parity import parity

    model, data, _ = trained_run(args.model)
    single_device_only(model, "parity")
    print(json.dumps(parity(model, args.model, data, args.beta, args.snr_db), indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a hypernetwork model and export it")
    add_train_flags(p_train)
    p_train.add_argument("--out", required=True, help="output folder artifacts/<name>")
    p_export = sub.add_parser("export", help="re-export encoder.onnx/decoder.pt/manifest")
    p_export.add_argument("--model", required=True)
    for p in (p_train, p_export):
        p.add_argument("--default-beta", type=float, default=None,
                       help="the device's start-up beta written to the manifest (linear, in "
                            "the trained range); default 1e-3 when in range, else the "
                            "range's geometric middle (export: the manifest's own)")  # fmt: skip
    p_eval = sub.add_parser("eval", help="β × PSNR grid -> report.json + plots")
    p_eval.add_argument("--model", required=True)
    p_eval.add_argument("--draws", type=int, default=5)
    p_eval.add_argument("--n", type=int, default=None, help="first N test examples only")
    p_par = sub.add_parser("parity", help="ONNX Runtime vs PyTorch encoder on the test set")
    p_par.add_argument("--model", required=True)
    p_par.add_argument("--beta", type=float, default=1e-4)
    p_par.add_argument("--snr-db", type=float, default=20.0)
    for p in (p_train, p_export, p_eval, p_par):
        p.add_argument(
            "--model-module", action="append", default=[],
            help="import this module first: it registers a model family of its own (repeatable)",
        )  # fmt: skip
    from trainer import entropy_finetune, image_cli

    image_cli.add_parsers(sub)
    entropy_finetune.add_parser(sub)
    try:
        from trainer.experiments import cli as experiments_cli
        from trainer.experiments import revalidate

        experiments_cli.add_parsers(sub)
        revalidate.add_parser(sub)
    except ImportError:
        pass
    args = parser.parse_args(argv)
    handlers = {"train": cmd_train, "export": cmd_export, "eval": cmd_eval, "parity": cmd_parity}
    handler = handlers.get(args.command) or args.handler
    try:
        if getattr(args, "model_module", None):
            from shared.nn.zoo import import_families

            import_families(args.model_module)
        return handler(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
