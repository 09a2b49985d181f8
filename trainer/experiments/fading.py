"""Block fading: the SNR-adaptive models under Rayleigh and Rician channels, analog against
digital, the image model, and the channel simulator against closed forms.

None of the four papers evaluates fading (all assume AWGN; Hyper-AJSCC's public code has a
``fading`` stub), so there are no paper numbers to set beside these: the reference points are
the closed forms of the theory checks and the AWGN results of the other experiments.
Channel: ``shared/fading.py`` (the channel proxy's sampler), one block per transmission,
perfect receiver CSI, zero forcing; the decoder is told the receiver's instantaneous SNR
clipped to the trained range, the encoder the average SNR or (``instantaneous``) the SNR of
its own block, clipped the same way.

- **Classification** (Fashion-MNIST, MLP hyper model, β fixed at 1e-4 as in the
  snr-adaptivity experiment, SNR U[0, 25] dB + 3 dB margin): an AWGN-trained model, a
  Rayleigh-trained one told the average SNR and a Rayleigh-trained one told the
  instantaneous SNR, ``SEEDS`` seeds each; accuracy over average SNR 0–25 dB under AWGN,
  Rayleigh and Rician (K = 3) with the encoder told the average and the instantaneous SNR.
- **Analog against digital under Rayleigh** (seed 0): a 4-bit AWGN-trained model sends its
  256-bit fixed-length code as one 5G LDPC codeword over QAM (``shared.link.ldpc_qam``), the
  MCS from the average SNR (outage when the block's SNR falls below it) or from the block's
  own SNR; a lost block decodes from zeros. Beside it the same model's levels sent analog.
- **Images** (Hyper-AJSCC's hyper image model, R = 1/12): AWGN-trained against
  Rayleigh-trained, PSNR over average SNR under Rayleigh and AWGN.
- **Theory**: uncoded QPSK BER over the simulated Rayleigh channel against ½(1 − √(γ/(1+γ)))
  and the outage P(|h|²γ < γ₀) against 1 − exp(−γ₀/γ) (Rician: the non-central χ² CDF), as
  z-scores in Monte-Carlo standard errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.experiments.common import Check, RunSettings, load_data, plot_lines, train_one

NAME = "fading"
PAPER = "fading extension (no paper figure: closed-form BER and outage as references)"
FULL_EPOCHS = 10
BETA = 1e-4
TRAIN_RANGE = (0.0, 25.0)
TEST_SNRS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
QUICK_TEST_SNRS = (0.0, 10.0, 20.0)
FULL_SEEDS, QUICK_SEEDS = 3, 1
MODELS = {
    "AWGN-trained": {},
    "Rayleigh-trained, told average": {"fading": "rayleigh"},
    "Rayleigh-trained, told instantaneous": {
        "fading": "rayleigh",
        "fading_feedback": "instantaneous",
    },
}
CHANNELS = {"AWGN": None, "Rayleigh": ("rayleigh", 0.0), "Rician K=3": ("rician", 3.0)}
FEEDBACKS = ("average", "instantaneous")
PAYLOAD_BITS = 256  # d = 64 dimensions × 4 bits
DIGITAL_N = {"full": 2000, "quick": 300}
IMAGE = {
    "full": {"filters": 16, "epochs": 4, "subset": None, "n_eval": 2000, "draws": 2},
    "quick": {"filters": 8, "epochs": 1, "subset": 4000, "n_eval": 300, "draws": 1},
}
IMAGE_RANGE = (0.0, 20.0)
IMAGE_SNRS = (0.0, 4.0, 8.0, 12.0, 16.0, 20.0)
THEORY_SNRS = (0.0, 10.0, 20.0)
THEORY_N = {"full": 200_000, "quick": 50_000}
OUTAGE_THRESHOLD_DB = 5.0  # γ₀: the lowest MCS's threshold (QPSK 1/3 is near 0 dB; 5 dB a
# round value inside the tested range)


def fading_of(spec):
    from shared.fading import Fading

    return None if spec is None else Fading(spec[0], k_factor=spec[1])


def theory(n: int, seed: int) -> dict:
    """Simulated uncoded QPSK BER and outage against their closed forms, with z-scores."""
    from shared.fading import Fading, draw_gains, fade, outage_probability, rayleigh_bpsk_ber

    rng = np.random.default_rng(seed)
    rows = {"ber": [], "outage": []}
    rayleigh = Fading("rayleigh")
    for snr in THEORY_SNRS:
        bits = rng.integers(0, 2, size=(n, 2))
        received, _ = fade(1.0 - 2.0 * bits, snr, rayleigh, rng)
        errors = ((received < 0) != (bits == 1)).mean(axis=1)  # per transmission (one block)
        sim, se = float(errors.mean()), float(errors.std(ddof=1) / np.sqrt(n))
        exact = rayleigh_bpsk_ber(snr)
        rows["ber"].append({"snr_db": snr, "simulated": sim, "closed_form": exact,
                            "z": (sim - exact) / se})  # fmt: skip
        for fading in (rayleigh, Fading("rician", k_factor=3.0)):
            gains = np.abs(draw_gains(fading, (n,), rng)) ** 2
            out = gains * 10 ** (snr / 10) < 10 ** (OUTAGE_THRESHOLD_DB / 10)
            p = outage_probability(fading, snr, OUTAGE_THRESHOLD_DB)
            se = np.sqrt(max(p * (1 - p), 1e-12) / n)
            rows["outage"].append({"fading": fading.describe().split(",")[0], "snr_db": snr,
                                   "simulated": float(out.mean()), "closed_form": p,
                                   "z": float((out.mean() - p) / se)})  # fmt: skip
    return rows


def classification(settings: RunSettings, data, test_snrs, seeds) -> dict:
    from trainer.evaluate import evaluate_fading_point, evaluate_point

    per_seed = {label: [] for label in MODELS}
    total = len(MODELS) * len(seeds)
    step = 0
    for seed in seeds:
        for label, options in MODELS.items():
            step += 1
            run = RunSettings(**{**settings.__dict__, "seed": seed})
            model, info = train_one(
                f"{label} (seed {seed})", run, data, f"[{step}/{total}]",
                fixed_beta=BETA, snr_range=TRAIN_RANGE, **options,
            )  # fmt: skip
            curves = {}
            for channel, spec in CHANNELS.items():
                fading = fading_of(spec)
                for feedback in FEEDBACKS if fading else ("average",):
                    values = []
                    for snr in test_snrs:
                        if fading is None:
                            point = evaluate_point(model, data, BETA, snr, settings.draws,
                                                   settings.n_eval)  # fmt: skip
                        else:
                            point = evaluate_fading_point(
                                model, data, BETA, snr, fading, feedback, TRAIN_RANGE,
                                settings.draws, settings.n_eval,
                            )  # fmt: skip
                        values.append(point["value"])
                    curves[f"{channel}|{feedback}"] = values
            print(
                f"    {label} seed {seed}: Rayleigh told average "
                + ", ".join(f"{v:.4f}" for v in curves["Rayleigh|average"]),
                flush=True,
            )
            per_seed[label].append({"seed": seed, "train_wall_s": info["train_wall_s"],
                                    "curves": curves})  # fmt: skip
    summary = {}
    for label, runs in per_seed.items():
        summary[label] = {}
        for key in runs[0]["curves"]:
            stack = np.array([r["curves"][key] for r in runs])
            summary[label][key] = {"mean": stack.mean(axis=0).tolist(),
                                   "sd": stack.std(axis=0, ddof=1).tolist()
                                   if len(runs) > 1 else [0.0] * stack.shape[1]}  # fmt: skip
    return {"per_seed": per_seed, "summary": summary}


def digital(settings: RunSettings, data, test_snrs, n: int) -> dict:
    """The 4-bit model's code over LDPC + QAM under Rayleigh, against it sent analog."""
    import torch

    from shared.channel import DEFAULT_BAUD
    from shared.fading import Fading, draw_gains
    from shared.link.ldpc_qam import simulate_blocks
    from shared.link.modes import channel_uses, mcs_for_psnr
    from trainer.entropy_finetune import hard_indices
    from trainer.evaluate import evaluate_fading_point
    from trainer.experiments.digital_link_eval import accuracy, decode_levels, digital_snr

    model, info = train_one(
        "4-bit AWGN-trained (digital payload)", settings, data, "[digital]",
        fixed_beta=BETA, snr_range=TRAIN_RANGE, bits=4,
    )  # fmt: skip
    x, y = data.x_test[:n], data.y_test[:n]
    rayleigh = Fading("rayleigh")
    rows = []
    for snr in test_snrs:
        rng = np.random.default_rng(int(1000 + snr))
        told = float(np.clip(snr, *TRAIN_RANGE))
        indices, _ = hard_indices(model, x, BETA, told)
        bits = np.unpackbits(indices.numpy().astype(np.uint8)[:, :, None], axis=2)[:, :, 4:]
        bits = bits.reshape(n, PAYLOAD_BITS)
        block_snr = snr + 10 * np.log10(np.abs(draw_gains(rayleigh, (n,), rng)) ** 2)
        row = {"snr_db": snr}
        for mode in ("AWGN, MCS from the SNR", "MCS from the average SNR",
                     "MCS from the block's SNR"):  # fmt: skip
            channel_snr = np.full(n, snr) if mode.startswith("AWGN") else block_snr
            chosen = [mcs_for_psnr(snr if "block" not in mode else s) for s in channel_snr]
            ok = np.zeros(n, dtype=bool)
            uses = np.zeros(n)
            for mcs in {m.name: m for m in chosen}.values():
                rows_m = np.array([m.name == mcs.name for m in chosen])
                _, ok[rows_m] = simulate_blocks(bits[rows_m], mcs, channel_snr[rows_m], rng)
                uses[rows_m] = channel_uses(PAYLOAD_BITS, mcs)
            mask = torch.from_numpy(ok.astype(np.float32))[:, None]
            out = decode_levels(model, indices, BETA, digital_snr(model), mask)
            row[mode] = {"accuracy": accuracy(out, y), "outage": float(1 - ok.mean()),
                         "airtime_ms": 1e3 * float(uses.mean()) / DEFAULT_BAUD}  # fmt: skip
        analog = evaluate_fading_point(model, data, BETA, snr, rayleigh, "average", TRAIN_RANGE,
                                       draws=1, n=n)  # fmt: skip
        row["analog (same 4-bit levels)"] = {"accuracy": analog["value"], "outage": 0.0,
                                             "airtime_ms": 1e3 * 64 / DEFAULT_BAUD}  # fmt: skip
        rows.append(row)
        print("    digital " + f"{snr:g} dB: " + ", ".join(
            f"{k}: {v['accuracy']:.3f}/{v['outage']:.2f}" for k, v in row.items()
            if isinstance(v, dict)), flush=True)  # fmt: skip
    return {"train_wall_s": info["train_wall_s"], "n": n, "rows": rows}


def images(settings: RunSettings, plan: dict) -> dict:
    from shared.fading import Fading
    from trainer.data import load_images
    from trainer.image_jscc import (
        ImageTrainConfig,
        evaluate_image_fading,
        evaluate_image_point,
        train_image_jscc,
    )

    x_train, x_test = load_images("fashion-mnist", settings.data_dir)
    x_eval = x_test[: plan["n_eval"]]
    out = {"filters": plan["filters"], "epochs": plan["epochs"], "n_eval": len(x_eval),
           "snr_db": list(IMAGE_SNRS), "models": {}}  # fmt: skip
    for label, fading in (("AWGN-trained", "none"), ("Rayleigh-trained", "rayleigh")):
        cfg = ImageTrainConfig(ratio=1 / 12, adaptation="hyper", snr_range=IMAGE_RANGE,
                               filters=plan["filters"], epochs=plan["epochs"],
                               train_subset=plan["subset"], seed=settings.seed,
                               progress=settings.progress, fading=fading)  # fmt: skip
        print(f"[image] training hyper image model, {label} ...", flush=True)
        model, log = train_image_jscc(cfg, x_train)
        rayleigh = [evaluate_image_fading(model, x_eval, s, Fading("rayleigh"), IMAGE_RANGE,
                                          plan["draws"]) for s in IMAGE_SNRS]  # fmt: skip
        awgn = [evaluate_image_point(model, x_eval, s, plan["draws"]) for s in IMAGE_SNRS]
        out["models"][label] = {
            "train_wall_s": log["train_wall_s"],
            "rayleigh_psnr_db": [p["psnr_db"] for p in rayleigh],
            "rayleigh_ssim": [p["ssim"] for p in rayleigh],
            "awgn_psnr_db": [p["psnr_db"] for p in awgn],
        }
        print(f"    {label}: Rayleigh PSNR " + ", ".join(
            f"{p['psnr_db']:.2f}" for p in rayleigh), flush=True)  # fmt: skip
    return out


def run(settings: RunSettings, out_dir: Path) -> dict:
    mode = "quick" if settings.quick else "full"
    test_snrs = QUICK_TEST_SNRS if settings.quick else TEST_SNRS
    seeds = tuple(settings.seed + k for k in range(QUICK_SEEDS if settings.quick else FULL_SEEDS))
    data = load_data("fashion-mnist", settings.data_dir, settings.seed)
    results = {"design": __doc__.split("\n\n")[1].replace("\n", " "), "beta": BETA,
               "train_snr_range": list(TRAIN_RANGE), "test_snr_db": list(test_snrs),
               "seeds": list(seeds), "theory": theory(THEORY_N[mode], settings.seed)}  # fmt: skip
    results["classification"] = classification(settings, data, test_snrs, seeds)
    results["digital"] = digital(settings, data, test_snrs, DIGITAL_N[mode])
    results["images"] = images(settings, IMAGE[mode])
    results["plots"] = make_plots(out_dir, results)
    return results


def make_plots(out_dir: Path, results: dict) -> list[str]:
    snrs = results["test_snr_db"]
    summary = results["classification"]["summary"]
    names = []
    for channel in ("Rayleigh", "Rician K=3"):
        series = {f"{label}, AWGN channel": (snrs, summary[label]["AWGN|average"]["mean"])
                  for label in ("AWGN-trained",)}  # fmt: skip
        for label in MODELS:
            for feedback in FEEDBACKS:
                series[f"{label} / told {feedback}"] = (
                    snrs, summary[label][f"{channel}|{feedback}"]["mean"])  # fmt: skip
        name = f"accuracy_{channel.split()[0].lower()}.png"
        title = f"Fashion-MNIST, hyper MLP, β = {BETA:g}, {channel} block fading, ZF"
        plot_lines(out_dir / name, series, "average SNR (dB)", "accuracy", title)
        names.append(name)
    rows = results["digital"]["rows"]
    keys = [k for k in rows[0] if k != "snr_db"]
    plot_lines(out_dir / "digital_rayleigh.png",
               {k: ([r["snr_db"] for r in rows], [r[k]["accuracy"] for r in rows]) for k in keys},
               "average SNR (dB)", "accuracy",
               "4-bit model: LDPC + QAM vs analog under Rayleigh")  # fmt: skip
    names.append("digital_rayleigh.png")
    image = results["images"]
    series = {}
    for label, entry in image["models"].items():
        series[f"{label}, Rayleigh"] = (image["snr_db"], entry["rayleigh_psnr_db"])
        series[f"{label}, AWGN"] = (image["snr_db"], entry["awgn_psnr_db"])
    plot_lines(out_dir / "image_psnr.png", series, "average SNR (dB)", "PSNR (dB)",
               "hyper image JSCC, R = 1/12, Fashion-MNIST")  # fmt: skip
    names.append("image_psnr.png")
    return names


def _at(results: dict, snr: float) -> int:
    snrs = results["test_snr_db"]
    return snrs.index(snr) if snr in snrs else int(np.argmin([abs(s - snr) for s in snrs]))


def _gain_in_sds(results: dict, snr_db: float = 10.0) -> float:
    """(Rayleigh-trained − AWGN-trained) at ``snr_db`` Rayleigh, both told the average SNR,
    over the larger of their seed sds (±inf when the sd is 0: one seed)."""
    s = results["classification"]["summary"]
    i = _at(results, snr_db)
    fad, awgn = s["Rayleigh-trained, told average"], s["AWGN-trained"]
    diff = fad["Rayleigh|average"]["mean"][i] - awgn["Rayleigh|average"]["mean"][i]
    sd = max(fad["Rayleigh|average"]["sd"][i], awgn["Rayleigh|average"]["sd"][i])
    return diff / sd if sd > 0 else (np.inf if diff > 0 else -np.inf)


def _csi_gain(results: dict) -> float:
    s = results["classification"]["summary"]
    i = _at(results, 10.0)
    inst = s["Rayleigh-trained, told instantaneous"]["Rayleigh|instantaneous"]["mean"][i]
    avg = s["Rayleigh-trained, told average"]["Rayleigh|average"]["mean"][i]
    return inst - avg


def checks(results: dict) -> list[Check]:
    theory_rows = results["theory"]
    image = results["images"]["models"]
    i8 = IMAGE_SNRS.index(8.0)
    return [
        Check("largest z-score, simulated Rayleigh QPSK BER vs ½(1 − √(γ/(1+γ))), 0/10/20 dB",
              max(abs(r["z"]) for r in theory_rows["ber"]), "<=", 3.0, "MC s.e.",
              "closed form (Proakis 14.3)"),
        Check("largest z-score, simulated outage vs closed form (Rayleigh, Rician K=3), 0/10/20 dB",
              max(abs(r["z"]) for r in theory_rows["outage"]), "<=", 3.0, "MC s.e.",
              "1 − exp(−γ₀/γ); non-central χ²"),
        Check("Rayleigh 10 dB: fading-trained − AWGN-trained accuracy, in seed sds",
              _gain_in_sds(results), ">=", 1.0, "sd", "issue target (no paper figure)"),
        Check("Rayleigh 0 dB: fading-trained − AWGN-trained accuracy, in seed sds",
              _gain_in_sds(results, 0.0), ">=", 1.0, "sd", "the same where fades dominate"),
        Check("Rayleigh 10 dB: told instantaneous − told average (fading-trained models)",
              100 * _csi_gain(results), ">=", 0.0, "points", "issue target"),
        Check("image, Rayleigh 8 dB: fading-trained − AWGN-trained PSNR",
              image["Rayleigh-trained"]["rayleigh_psnr_db"][i8]
              - image["AWGN-trained"]["rayleigh_psnr_db"][i8], ">=", 0.0, "dB",
              "issue target (no paper figure)"),
    ]  # fmt: skip


def summary_rows(results: dict) -> list[tuple[str, str]]:
    snrs = results["test_snr_db"]
    s = results["classification"]["summary"]
    rows = []
    for label in MODELS:
        for key in ("AWGN|average", "Rayleigh|average", "Rayleigh|instantaneous",
                    "Rician K=3|average"):  # fmt: skip
            entry = s[label][key]
            rows.append((f"{label}: {key.replace('|', ', told ')}", ", ".join(
                f"{snr:g}: {100 * m:.2f}±{100 * d:.2f}"
                for snr, m, d in zip(snrs, entry["mean"], entry["sd"], strict=True))))  # fmt: skip
    for row in results["digital"]["rows"]:
        rows.append((f"digital vs analog under Rayleigh, {row['snr_db']:g} dB (acc / outage / ms)",
                     "; ".join(f"{k}: {100 * v['accuracy']:.1f} / {100 * v['outage']:.1f}% / "
                               f"{v['airtime_ms']:.1f}" for k, v in row.items()
                               if isinstance(v, dict))))  # fmt: skip
    image = results["images"]
    for label, entry in image["models"].items():
        rows.append((f"image PSNR under Rayleigh, {label} (dB)", ", ".join(
            f"{snr:g}: {v:.2f}" for snr, v in zip(image["snr_db"], entry["rayleigh_psnr_db"],
                                                  strict=True))))  # fmt: skip
    for r in results["theory"]["ber"]:
        rows.append(
            (
                f"QPSK BER Rayleigh {r['snr_db']:g} dB: simulated / closed form",
                f"{r['simulated']:.5f} / {r['closed_form']:.5f} (z {r['z']:+.2f})",
            )
        )
    return rows


def _trained_gain(results: dict, channel: str = "Rayleigh") -> str:
    """Rayleigh-trained − AWGN-trained accuracy (both told the average SNR) per SNR, points."""
    s = results["classification"]["summary"]
    fad = s["Rayleigh-trained, told average"][f"{channel}|average"]["mean"]
    awgn = s["AWGN-trained"][f"{channel}|average"]["mean"]
    pairs = zip(results["test_snr_db"], fad, awgn, strict=True)
    return ", ".join(f"{snr:g} dB: {100 * (f - a):+.2f}" for snr, f, a in pairs)


def notes(results: dict) -> str:
    rows = results["digital"]["rows"]
    image = results["images"]["models"]
    image_gain = ", ".join(
        f"{snr:g} dB: {f - a:+.2f}" for snr, f, a in zip(
            results["images"]["snr_db"], image["Rayleigh-trained"]["rayleigh_psnr_db"],
            image["AWGN-trained"]["rayleigh_psnr_db"], strict=True))  # fmt: skip
    outage = ", ".join(f"{r['snr_db']:g} dB: {100 * r['MCS from the average SNR']['outage']:.1f}%"
                       for r in rows)  # fmt: skip
    return (
        "Under Rayleigh fading, training on it buys accuracy at low average SNR only "
        f"(Rayleigh-trained − AWGN-trained, points: {_trained_gain(results)}): with the "
        "receiver's CSI and zero forcing the faded symbols are AWGN at the instantaneous SNR, "
        "which the SNR-adaptive AWGN-trained model already handles; the fading-trained model "
        "learns the deep fades (below the trained range) at the price of the high-SNR end. "
        "Telling the encoder the instantaneous SNR changes nothing measurable at β = 1e-4 "
        "(the decoder already knows it). The image model shows the same shape (Rayleigh-trained "
        f"− AWGN-trained PSNR, dB: {image_gain}). "
        "No paper evaluates fading; the references are the closed forms. One fading block per "
        "transmission, perfect receiver CSI, zero forcing (ĉ = c + n/h: the AWGN channel at "
        "the instantaneous SNR), the decoder told the receiver's instantaneous SNR clipped to "
        "the trained range. Fashion-MNIST stands in for MNIST/CIFAR-10. The digital link's "
        f"outage with the MCS chosen from the average SNR: {outage}. With the MCS chosen from "
        "the block's own SNR the link adapts its air-time instead. Blocks are independent, so a "
        "stale SNR carries no information here (shared/fading.py supports it; a time-correlated "
        "fading process is not modelled)."
    )
