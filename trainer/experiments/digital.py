"""Entropy-coded digital transmission: what β buys in bits, and the link's cliff.

One 4-bit Hyper-VIB model over β ∈ [1e-5, 1] and SNR 0-25 dB is trained (``base``), then
fine-tuned with its code length as the rate (``trainer.entropy_finetune``: a learned categorical per
dimension conditioned on β, rate = expected -log2 P(index)). Fine-tuning options are compared
first (``FINETUNE_OPTIONS``: the entropy model alone on the frozen base, a plain joint
fine-tune, a gentle joint fine-tune distilled to the base) by accuracy and ideal code length
over β; ``CHOSEN`` is kept. Compared over β, with the features delivered without error (the
``ideal`` link):
- entropy-coded: bits = the range coder's output (constriction), accuracy;
- fixed-length 4-bit code: 256 bits at every β (the base model);
- QML-IB eq. (10)-(11): the base model's indices coded with the Gaussian-CDF level
  probabilities averaged over the test images (an oracle marginal; ideal code length);
- VL-VFE's digital baseline: a variable-length 4-bit model (log-uniform prior), bits =
  n_active × 4, air-time from the capacity formula VL-VFE eq. (13);
- analog: the same entropy-coded model sending its 64 symbols over AWGN (64/baud air-time).
Air-times at PSNR ``AIRTIME_PSNR_DB``. Over PSNR at one β: ``ideal``, ``ldpc-qam`` with the MCS
from the PSNR (shared.link.modes), ``ldpc-qam`` with one fixed MCS (the cliff) and analog.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from shared.channel import DEFAULT_BAUD, capacity_bits_per_symbol
from shared.entropy import IndexEntropyModel
from shared.link.modes import MCS_TABLE, ideal_airtime_s, mcs_for_psnr
from shared.nn.channel import sent_prefix
from trainer.entropy_finetune import DigitalConfig, hard_indices, train_digital
from trainer.experiments.common import Check, RunSettings, load_data, plot_lines, train_one
from trainer.experiments.digital_link_eval import (
    accuracy,
    analog_accuracy,
    coded_sizes,
    decode_levels,
    digital_snr,
    gaussian_cdf_bits,
    ldpc_accuracy,
    star_beta,
)

NAME = "digital"
PAPER = "digital link (Hyper-VIB β as bits; VL-VFE eq. 13; QML-IB eq. 10-11)"
FULL_EPOCHS = 10
BETAS = tuple(float(10 ** (e / 2)) for e in range(-10, 1))  # 1e-5 .. 1, half decades
QUICK_BETAS = (1e-5, 1e-3, 1e-2, 1e-1, 1.0)
AIRTIME_PSNR_DB = 10.0
PSNRS = (-6.0, -4.0, -2.0, 0.0, 2.0, 5.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0)
QUICK_PSNRS = (-4.0, 0.0, 5.0, 10.0, 20.0)
FIXED_MCS = next(m for m in MCS_TABLE if m.name == "16-QAM 1/2")
FIXED_BITS = 256
# fine-tuning options compared in every run (DigitalConfig fields); epochs are the full
# run's (quick: QUICK_FINETUNE_EPOCHS on the 10,000-image subset)
FINETUNE_OPTIONS = {
    "entropy model only (base frozen)": {"freeze_encoder": True, "epochs": 2},
    "joint, lr 5e-4": {"lr": 5e-4, "epochs": 2},
    "joint, lr 2e-4, distilled to the base (weight 3)": {"lr": 2e-4, "distill": 3.0, "epochs": 2},
}
CHOSEN = "joint, lr 2e-4, distilled to the base (weight 3)"
QUICK_FINETUNE_EPOCHS = 6
BASE_OPTIONS = {"bits": 4}
VL_OPTIONS = {"bits": 4, "variable_length": True, "prior": "log-uniform",
              "head": "deterministic", "kl_warmup_epochs": 1.0}  # fmt: skip


@torch.no_grad()
def option_summary(model, prior, x, y, betas, base_rows, dlog) -> dict:
    """One fine-tuning option: accuracy and mean ideal code length (bits) at each β, and the
    bits at β* against the base model's best accuracy."""
    table = IndexEntropyModel.from_dict(prior.to_dict())
    accs, bits = [], []
    for beta in betas:
        idx, _ = hard_indices(model, x, beta, AIRTIME_PSNR_DB)
        accs.append(accuracy(decode_levels(model, idx, beta, digital_snr(model)), y))
        bits.append(float(np.mean([table.predicted_bits(row, beta) for row in idx.numpy()])))
    base_best = max(r["accuracy"] for r in base_rows.values())
    beta_star = star_beta(list(betas), accs, base_best)
    k = list(betas).index(beta_star)
    return {
        "accuracy": accs, "predicted_bits": bits, "beta_star": beta_star,
        "accuracy_at_star": accs[k], "bits_at_star": bits[k],
        "train_wall_s": dlog["train_wall_s"],
        "verdict": f"β* {beta_star:.0e}: accuracy {accs[k]:.4f} (base best {base_best:.4f}), "
        f"{bits[k]:.1f} predicted bits; {bits[0]:.0f} -> {bits[-1]:.0f} bits over β",
    }  # fmt: skip


def run(settings: RunSettings, out_dir: Path) -> dict:
    data = load_data("fashion-mnist", settings.data_dir, settings.seed)
    n_eval = settings.n_eval or len(data.x_test)
    x, y = data.x_test[:n_eval], data.y_test[:n_eval]
    betas = QUICK_BETAS if settings.quick else BETAS
    psnrs = QUICK_PSNRS if settings.quick else PSNRS
    n_link = 300 if settings.quick else min(n_eval, 2000)
    base, base_info = train_one("base 4-bit hyper", settings, data, "[1/3]", **BASE_OPTIONS)
    vl, vl_info = train_one("VL-VFE 4-bit", settings, data, "[2/3]", **VL_OPTIONS)
    base_rows = fixed_length_rows(base, x, y, betas)
    print("[3/3] fine-tuning with the code length as the rate ...", flush=True)
    options, (model, prior, dlog) = compare_finetunes(base, data, settings, x, y, betas, base_rows)
    table = IndexEntropyModel.from_dict(prior.to_dict())
    rows, coded_us = beta_rows(model, table, vl, x, y, betas, base_rows)
    base_best = max(r["fixed_accuracy"] for r in rows)
    beta_star = star_beta([r["beta"] for r in rows], [r["accuracy"] for r in rows], base_best)
    rng = np.random.default_rng(settings.seed)
    psnr_rows = link_rows(model, table, x[:n_link], y[:n_link], beta_star, psnrs, rng)
    plots = make_plots(out_dir, rows, psnr_rows, beta_star)
    return {
        "design": f"base 4-bit hyper model, fine-tuned with its code length ({CHOSEN}); "
        f"features error-free on the ideal link; air-times at PSNR {AIRTIME_PSNR_DB:g} dB, "
        f"{DEFAULT_BAUD:g} baud",
        "beta_rows": rows,
        "base_best_accuracy": base_best,
        "beta_star": beta_star,
        "finetune_options": options,
        "finetune_chosen": CHOSEN,
        "psnr_rows": psnr_rows,
        "n_link_images": n_link,
        "fixed_mcs": FIXED_MCS.name,
        "entropy_coding_us_per_image": float(np.median(coded_us)),
        "digital_train": dlog,
        "train": {"base": base_info, "vl": vl_info},
        "plots": plots,
    }


def fixed_length_rows(base, x, y, betas) -> dict:
    """Before fine-tuning, per β: the fixed-length code's accuracy and the eq. (10)-(11)
    marginal's code length."""
    rows = {}
    for beta in betas:
        idx, _ = hard_indices(base, x, beta, AIRTIME_PSNR_DB)
        out = decode_levels(base, idx, beta, digital_snr(base))
        rows[beta] = {
            "accuracy": accuracy(out, y),
            "gaussian_cdf_bits": gaussian_cdf_bits(base, x, beta, AIRTIME_PSNR_DB),
        }
    return rows


def compare_finetunes(base, data, settings: RunSettings, x, y, betas, base_rows):
    """Every ``FINETUNE_OPTIONS`` entry fine-tuned from a copy of ``base``: ({label: summary},
    (model, prior, log) of ``CHOSEN``)."""
    from trainer.train import TrainConfig

    base_cfg = TrainConfig.from_options(**BASE_OPTIONS, train_subset=settings.train_subset)
    options, chosen = {}, None
    for label, option in FINETUNE_OPTIONS.items():
        option = dict(option, epochs=QUICK_FINETUNE_EPOCHS if settings.quick else option["epochs"])
        cfg = DigitalConfig(train_subset=settings.train_subset, seed=settings.seed,
                            progress=settings.progress, **option)  # fmt: skip
        model = copy.deepcopy(base)
        model, prior, dlog = train_digital(model, data, base_cfg, cfg)
        options[label] = option_summary(model, prior, x, y, betas, base_rows, dlog)
        print(f"    {label}: {options[label]['verdict']}", flush=True)
        if label == CHOSEN:
            chosen = (model, prior, dlog)
    return options, chosen


def beta_rows(model, table, vl, x, y, betas, base_rows):
    """Per β: the entropy-coded model's bits and accuracy beside the fixed-length, eq. (10)-(11),
    VL-VFE and analog rows; and the entropy coder's µs per image at each β."""
    rows, coded_us = [], []
    for beta in betas:
        idx, _ = hard_indices(model, x, beta, AIRTIME_PSNR_DB)
        coded, predicted, _, us = coded_sizes(table, idx.numpy(), beta)
        coded_us.append(us)
        acc = accuracy(decode_levels(model, idx, beta, digital_snr(model)), y)
        vl_idx, vl_active = hard_indices(vl, x, beta, AIRTIME_PSNR_DB)
        vl_mask = sent_prefix(vl_active, vl.config.d)
        vl_acc = accuracy(decode_levels(vl, vl_idx, beta, digital_snr(vl), vl_mask), y)
        vl_bits = float(vl_active.float().mean()) * 4
        row = {
            "beta": beta,
            "accuracy": acc,
            "coded_bits": float(coded.mean()),
            "predicted_bits": float(predicted.mean()),
            "max_excess_bits": float((coded - (1.03 * predicted + 32)).max()),
            "ideal_airtime_s": ideal_airtime_s(float(coded.mean()), AIRTIME_PSNR_DB),
            "analog_accuracy": analog_accuracy(model, x, y, beta, AIRTIME_PSNR_DB),
            "fixed_accuracy": base_rows[beta]["accuracy"],
            "gaussian_cdf_bits": base_rows[beta]["gaussian_cdf_bits"],
            "vl_accuracy": vl_acc,
            "vl_bits": vl_bits,
            "vl_airtime_s": ideal_airtime_s(vl_bits, AIRTIME_PSNR_DB),
        }
        rows.append(row)
        print(f"    beta={beta:.0e}: acc {acc:.4f}, {row['coded_bits']:.1f} bits "
              f"(pred {row['predicted_bits']:.1f}, eq.10-11 {row['gaussian_cdf_bits']:.1f}); "
              f"fixed 256 bits acc {row['fixed_accuracy']:.4f}; VL {vl_bits:.0f} bits acc "
              f"{vl_acc:.4f}; analog acc {row['analog_accuracy']:.4f}", flush=True)  # fmt: skip
    return rows, coded_us


def link_rows(model, table, x, y, beta_star: float, psnrs, rng) -> list[dict]:
    """Accuracy over PSNR at β*: ideal link, LDPC + QAM with the MCS from the PSNR and with
    ``FIXED_MCS``, and analog."""
    idx, _ = hard_indices(model, x, beta_star, AIRTIME_PSNR_DB)
    indices = idx.numpy()
    _, _, payloads, _ = coded_sizes(table, indices, beta_star)
    ideal_acc = accuracy(decode_levels(model, idx, beta_star, digital_snr(model)), y)
    mean_bits = float(np.mean([8 * len(p) for p in payloads]))
    psnr_rows = []
    for psnr in psnrs:
        adaptive = ldpc_accuracy(model, payloads, indices, y, beta_star, psnr,
                                 mcs_for_psnr(psnr), rng)  # fmt: skip
        fixed = ldpc_accuracy(model, payloads, indices, y, beta_star, psnr, FIXED_MCS, rng)
        psnr_rows.append({
            "psnr_db": psnr,
            "ideal_accuracy": ideal_acc,
            "ideal_airtime_s": mean_bits / (capacity_bits_per_symbol(psnr) * DEFAULT_BAUD),
            "ldpc_accuracy": adaptive["accuracy"], "ldpc_bler": adaptive["bler"],
            "ldpc_airtime_s": adaptive["airtime_s"], "ldpc_mcs": adaptive["mcs"],
            "fixed_mcs_accuracy": fixed["accuracy"], "fixed_mcs_bler": fixed["bler"],
            "analog_accuracy": analog_accuracy(model, x, y, beta_star, psnr),
        })  # fmt: skip
        print(f"    PSNR {psnr:g} dB: ideal {ideal_acc:.4f}, ldpc-qam {adaptive['accuracy']:.4f} "
              f"(BLER {adaptive['bler']:.3f}, {adaptive['mcs']}), fixed {FIXED_MCS.name} "
              f"{fixed['accuracy']:.4f} (BLER {fixed['bler']:.3f}), analog "
              f"{psnr_rows[-1]['analog_accuracy']:.4f}", flush=True)  # fmt: skip
    return psnr_rows


def make_plots(out_dir: Path, rows, psnr_rows, beta_star) -> list[str]:
    bits = [r["coded_bits"] for r in rows]
    plot_lines(
        out_dir / "accuracy_vs_bits.png",
        {
            "entropy-coded (over β)": (bits, [r["accuracy"] for r in rows]),
            "fixed-length 4-bit (256 bits)": (
                [FIXED_BITS] * len(rows), [r["fixed_accuracy"] for r in rows]),
            "QML-IB eq. 10-11 code (base model)": (
                [r["gaussian_cdf_bits"] for r in rows], [r["fixed_accuracy"] for r in rows]),
            "VL-VFE 4-bit (n_active × 4)": (
                [r["vl_bits"] for r in rows], [r["vl_accuracy"] for r in rows]),
        },
        "bits per image", "test accuracy", "Fashion-MNIST, error-free features (ideal link)",
    )  # fmt: skip
    plot_lines(
        out_dir / "accuracy_vs_airtime.png",
        {
            "entropy-coded, ideal link": (
                [1e3 * r["ideal_airtime_s"] for r in rows], [r["accuracy"] for r in rows]),
            "VL-VFE 4-bit, capacity eq. 13": (
                [1e3 * r["vl_airtime_s"] for r in rows], [r["vl_accuracy"] for r in rows]),
            "analog, 64 symbols": (
                [1e3 * 64 / DEFAULT_BAUD] * len(rows), [r["analog_accuracy"] for r in rows]),
        },
        "air-time per image (ms)", "test accuracy", f"PSNR {AIRTIME_PSNR_DB:g} dB, over β",
    )  # fmt: skip
    p = [r["psnr_db"] for r in psnr_rows]
    plot_lines(
        out_dir / "accuracy_vs_psnr.png",
        {
            "ideal": (p, [r["ideal_accuracy"] for r in psnr_rows]),
            "ldpc-qam (MCS from PSNR)": (p, [r["ldpc_accuracy"] for r in psnr_rows]),
            f"ldpc-qam fixed {FIXED_MCS.name}": (p, [r["fixed_mcs_accuracy"] for r in psnr_rows]),
            "analog": (p, [r["analog_accuracy"] for r in psnr_rows]),
        },
        "PSNR (dB)", "test accuracy", f"β = {beta_star:.0e}",
    )  # fmt: skip
    return ["accuracy_vs_bits.png", "accuracy_vs_airtime.png", "accuracy_vs_psnr.png"]


def _monotone_violation(rows) -> float:
    """Largest rise of the coded bits from one β to the next (0 when non-increasing)."""
    bits = [r["coded_bits"] for r in rows]
    return max([0.0] + [b - a for a, b in zip(bits, bits[1:], strict=False)])


def _ldpc_gap(results) -> float:
    """Largest ideal − ldpc-qam accuracy gap (points) where the BLER is below 1%."""
    gaps = [100 * (r["ideal_accuracy"] - r["ldpc_accuracy"])
            for r in results["psnr_rows"] if r["ldpc_bler"] < 0.01]  # fmt: skip
    return max(gaps) if gaps else float("nan")


def _star(results) -> dict:
    return next(r for r in results["beta_rows"] if r["beta"] == results["beta_star"])


def checks(results: dict) -> list[Check]:
    rows = results["beta_rows"]
    return [
        Check("largest rise of coded bits between consecutive β", _monotone_violation(rows),
              "<=", 0.0, "bits", "bits fall monotonically with β"),
        Check("accuracy at β* − the fixed-length base model's best",
              100 * (_star(results)["accuracy"] - results["base_best_accuracy"]), ">=", -1.0,
              "points", "β* is within 1 point of the best"),
        Check("coded bits per image at β* (accuracy within 1 point of the base model's best)",
              _star(results)["coded_bits"], "<=", 128.0, "bits",
              "≤ 50% of the fixed-length 256 bits"),
        Check("coded − (1.03 × predicted + 32) bits, worst image", max(
              r["max_excess_bits"] for r in rows), "<=", 0.0, "bits",
              "within 3% of the predicted rate plus one word"),
        Check("entropy encode + decode per image (median over β)",
              results["entropy_coding_us_per_image"], "<=", 50.0, "µs", "our target"),
        Check("ideal − ldpc-qam accuracy where BLER < 1%", _ldpc_gap(results), "<=", 1.0,
              "points", "our target"),
    ]  # fmt: skip


def summary_rows(results: dict) -> list[tuple[str, str]]:
    star = _star(results)
    out = [
        (
            "β* (largest β within 1 point of the fixed-length base model's best accuracy)",
            f"{results['beta_star']:.0e}: accuracy {star['accuracy']:.4f} (base best "
            f"{results['base_best_accuracy']:.4f}), {star['coded_bits']:.1f} coded bits "
            f"({star['predicted_bits']:.1f} predicted)",
        )
    ]
    for label, option in results["finetune_options"].items():
        chosen = " (kept)" if label == results["finetune_chosen"] else ""
        out.append((f"fine-tune: {label}{chosen}", option["verdict"]))
    for r in results["beta_rows"]:
        out.append(
            (
                f"β={r['beta']:.0e}",
                f"coded {r['coded_bits']:.1f} bits, acc {r['accuracy']:.4f} | fixed 256 bits "
                f"acc {r['fixed_accuracy']:.4f} | eq. 10-11 {r['gaussian_cdf_bits']:.1f} bits "
                f"| VL-VFE {r['vl_bits']:.0f} bits acc {r['vl_accuracy']:.4f} | analog acc "
                f"{r['analog_accuracy']:.4f}",
            )
        )
    for r in results["psnr_rows"]:
        out.append(
            (
                f"PSNR {r['psnr_db']:g} dB",
                f"ideal {r['ideal_accuracy']:.4f} | ldpc-qam {r['ldpc_accuracy']:.4f} "
                f"(BLER {r['ldpc_bler']:.3f}, {r['ldpc_mcs']}) | {results['fixed_mcs']} "
                f"{r['fixed_mcs_accuracy']:.4f} (BLER {r['fixed_mcs_bler']:.3f}) | analog "
                f"{r['analog_accuracy']:.4f}",
            )
        )
    return out  # fmt: skip


def notes(results: dict) -> str:
    return (
        "Digital accuracies decode error-free levels with the decoder conditioned on the top of "
        "the trained SNR range; a lost ldpc-qam block decodes from zeros. The eq. (10)-(11) "
        "column is an oracle (the level probabilities averaged over the test images), given as "
        "the ideal code length; the entropy-coded column is the range coder's output. Single "
        f"seed; the ldpc-qam rows use {results['n_link_images']} test images per PSNR."
    )
