"""`python -m trainer train-image`: train an image JSCC model and export it for the live path.

Writes ``encoder.onnx``, ``decoder.pt`` and ``manifest.json`` (task "reconstruction", power
"average") into ``--out``; the manifest's metrics hold PSNR / SSIM at a few test SNRs and the
ONNX Runtime / PyTorch parity of the encoder on test images.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from trainer.subcommands import add_subcommand

QUICK = {"epochs": 2, "train_subset": 20000, "filters": 8}
EVAL_SNRS = (0.0, 5.0, 10.0, 20.0)


def ratio_arg(text: str) -> float:
    """A bandwidth ratio as a fraction ("1/12") or a decimal ("0.0833")."""
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"not a ratio: {text!r} (e.g. 1/12)") from exc
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"ratio must be in (0, 1], got {text!r}")
    return value


def onnx_parity(model, model_dir, images: np.ndarray, snr_db: float) -> float:
    """Largest |ONNX Runtime − PyTorch| over the encoder's symbols for ``images``."""
    import torch

    from trainer.parity import run_onnx_encoder

    onnx = run_onnx_encoder(model_dir, images, 1.0, snr_db)["symbols"]
    with torch.no_grad():
        ref = model.encoder(torch.from_numpy(images), torch.full((len(images), 1), snr_db))
    return float(np.max(np.abs(onnx - ref.numpy())))


def cmd_train_image(args) -> int:
    import torch

    from shared.manifest import MANIFEST_NAME
    from trainer.data import load_images
    from trainer.image_export import write_image_artifacts
    from trainer.image_jscc import ImageTrainConfig, evaluate_image_point, train_image_jscc

    torch.set_num_threads(args.threads)
    quick = QUICK if args.quick else {}
    snr_range = (args.snr_min, args.snr_max if args.adaptation != "none" else args.snr_min)
    cfg = ImageTrainConfig(
        ratio=args.ratio, adaptation=args.adaptation, snr_range=snr_range,
        filters=args.filters or quick.get("filters", 16),
        epochs=args.epochs or quick.get("epochs", 6),
        train_subset=args.train_subset or quick.get("train_subset"),
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=not args.no_progress,
    )  # fmt: skip
    x_train, x_test = load_images(args.task, args.data_dir)
    model, log = train_image_jscc(cfg, x_train)
    x_eval = x_test[: args.n_eval]
    points = {
        f"{s:g}": evaluate_image_point(model, x_eval, s, draws=1, seed=args.seed)
        for s in EVAL_SNRS
        if snr_range[0] <= s <= snr_range[1] or args.adaptation == "none"
    }
    metrics = {
        "test": points,
        "n_eval": len(x_eval),
        "train_wall_s": log["train_wall_s"],
        "train": log["config"],
    }
    manifest = write_image_artifacts(model, args.task, snr_range, args.out, metrics)
    parity = onnx_parity(model, args.out, x_test[:64], float(np.mean(snr_range)))
    manifest["metrics"]["onnx_parity_max_abs"] = parity
    (Path(args.out) / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    print(
        f"wrote {args.out} (model {manifest['model_id']}, d = {manifest['d']} real symbols, "
        f"R = {model.ratio:.4g}); PSNR "
        + ", ".join(f"{k} dB: {v['psnr_db']:.2f}" for k, v in points.items())
        + f"; ONNX parity {parity:.2e}"
    )
    return 0


def add_parsers(sub) -> None:
    p = add_subcommand(
        sub,
        "train-image",
        "train an image JSCC model (Hyper-AJSCC) and export it for the live path",
        cmd_train_image,
    )
    p.add_argument("--out", required=True, help="output folder, e.g. artifacts/image")
    p.add_argument("--task", default="fashion-mnist",
                   choices=("fashion-mnist", "mnist", "cifar10"))  # fmt: skip
    p.add_argument("--data-dir", default=None)
    p.add_argument("--ratio", type=ratio_arg, default=1 / 12,
                   help="bandwidth ratio R = complex channel uses per pixel value")  # fmt: skip
    p.add_argument(
        "--adaptation",
        default="hyper",
        choices=("hyper", "attention", "none"),
        help="hyper: Hyper-AJSCC; attention: ADJSCC; none: BDJSCC at --snr-min",
    )
    p.add_argument("--snr-min", type=float, default=0.0, help="dB")
    p.add_argument("--snr-max", type=float, default=20.0, help="dB")
    p.add_argument("--filters", type=int, default=None, help="default 16 (8 with --quick)")
    p.add_argument("--epochs", type=int, default=None, help="default 6 (1 with --quick)")
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-eval", type=int, default=1000, help="test images for the metrics")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help=f"small run for tests/demos: {QUICK}")
    p.add_argument("--no-progress", action="store_true")
