"""Several devices, one edge: QML-IB Fig. 2 on Fashion-MNIST.

K devices each see one equal sub-image (K = 2: left/right halves, K = 4: quadrants) and send
4-bit quantized features over their own AWGN link; one fusion decoder decides (eq. 15/18).
Every model holds the same air-time budget: ``TOTAL_SYMBOLS`` = 48 symbols per observation
summed over the links (5 ms at 9,600 Bd, under QML-IB Fig. 2(b)'s 6 ms), so each of K links
carries 48/K. All models are plain VIBs at β = 1e-4 (β gates off, as in quantizer-bits) with
the SNR gates on, trained over PSNR 0-20 dB drawn per link, so one model covers every PSNR
pair tested. The K > 1 models train with link drop-out (p = 0.15). Same-run baselines: the
single device seeing the whole image (K = 1, 48 symbols), and the averaging baseline: two
single-view models (24 symbols each, each its own classifier), probabilities averaged.
"""

from __future__ import annotations

from pathlib import Path

from shared.views import make_views
from trainer.experiments.common import Check, RunSettings, load_data, plot_lines, points, train_one

NAME = "multi-device"
PAPER = "QML-IB Fig. 2"
FULL_EPOCHS = 6
BETA = 1e-4
TOTAL_SYMBOLS = 48
BAUD = 9600.0
SNR_RANGE = (0.0, 20.0)
REF_SNR = 10.0
PSNRS = (0.0, 5.0, 10.0, 15.0, 20.0)
BAD_LINK_DB = 0.0  # the "much worse" link of the unequal sweep
DROPOUT = 0.15
K_VALUES = (1, 2, 4)
BITS = (1, 2, 4)
AIRTIME_TOTALS = (16, 32, 48)  # K = 2, symbols summed over both links (Fig. 2(a))
OVERLAP = 4  # pixels (K = 2: columns [0, 18) and [10, 28))


def model_options(k: int, bits: int = 4, total: int = TOTAL_SYMBOLS, overlap: int = 0) -> dict:
    return {
        "n_links": k, "d": total // k, "bits": bits, "overlap": overlap,
        "link_dropout": DROPOUT if k > 1 else 0.0, "fixed_beta": BETA, "snr_range": SNR_RANGE,
    }  # fmt: skip


def variants() -> dict[str, dict]:
    """Row label -> training options of every joint model."""
    out = {f"K={k}": model_options(k) for k in K_VALUES}
    out |= {f"K=2 bits={b}": model_options(2, bits=b) for b in BITS if b != 4}
    out |= {f"K=2 symbols={t}": model_options(2, total=t) for t in AIRTIME_TOTALS if t != 48}
    out["K=2 overlap"] = model_options(2, overlap=OVERLAP)
    return out


def run(settings: RunSettings, out_dir: Path) -> dict:
    from trainer.multi_link_eval import (
        evaluate_averaged,
        evaluate_fused,
        evaluate_single,
        view_dataset,
    )

    data = load_data("fashion-mnist", settings.data_dir, settings.seed)
    ev = {"n": settings.n_eval, "draws": settings.draws, "seed": settings.seed}
    todo = variants()
    models, info = {}, {}
    for i, (name, options) in enumerate(todo.items()):
        models[name], info[name] = train_one(name, settings, data, f"[{i + 1}/{len(todo) + 2}]",
                                             **options)  # fmt: skip
    # averaging baseline: one classifier per view, trained alone on its half
    views = make_views(*data.input_shape[1:], 2)
    solo = []
    for k, view in enumerate(views):
        options = model_options(1, total=TOTAL_SYMBOLS // 2)
        model, _ = train_one(f"view {k} alone", settings, view_dataset(data, view),
                             f"[{len(todo) + k + 1}/{len(todo) + 2}]", **options)  # fmt: skip
        solo.append(model)

    def fused(name, snr, present=None):
        model = models[name]
        if model.config.n_links == 1:
            return evaluate_single(model, data, BETA, snr, **ev)["accuracy"]
        return evaluate_fused(model, data, BETA, snr, present, **ev)["accuracy"]

    by_k = {str(k): fused(f"K={k}", REF_SNR) for k in K_VALUES}
    by_bits = {str(b): fused(f"K=2 bits={b}" if b != 4 else "K=2", REF_SNR) for b in BITS}
    by_airtime = {
        str(t): fused(f"K=2 symbols={t}" if t != 48 else "K=2", REF_SNR) for t in AIRTIME_TOTALS
    }
    equal, unequal = {}, {}
    for snr in PSNRS:
        print(f"    PSNR sweep {snr:g} dB", flush=True)
        equal[str(snr)] = {
            "joint": fused("K=2", snr),
            "averaging": evaluate_averaged(solo, views, data, BETA, snr, **ev)["accuracy"],
            "single (whole image)": fused("K=1", snr),
        }
        pair = (snr, BAD_LINK_DB)
        unequal[str(snr)] = {
            "joint": fused("K=2", pair),
            "averaging": evaluate_averaged(solo, views, data, BETA, pair, **ev)["accuracy"],
        }
    dropped = {
        "both links": fused("K=2", REF_SNR),
        "link 0 only": fused("K=2", REF_SNR, [True, False]),
        "link 1 only": fused("K=2", REF_SNR, [False, True]),
        "averaging, link 0 only": evaluate_averaged(
            solo, views, data, BETA, REF_SNR, [True, False], **ev)["accuracy"],
        "averaging, link 1 only": evaluate_averaged(
            solo, views, data, BETA, REF_SNR, [False, True], **ev)["accuracy"],
    }  # fmt: skip
    overlap = {
        "no overlap": fused("K=2", REF_SNR),
        f"overlap {OVERLAP} px": fused("K=2 overlap", REF_SNR),
    }
    plots = _plots(out_dir, by_k, by_bits, by_airtime, equal, unequal)
    return {
        "design": f"fixed_beta={BETA:g}; SNR gates on, trained over {SNR_RANGE} dB per link; "
        f"{TOTAL_SYMBOLS} symbols per observation summed over the K links "
        f"({1e3 * TOTAL_SYMBOLS / BAUD:.1f} ms at {BAUD:g} Bd); link drop-out p={DROPOUT}",
        "beta": BETA,
        "ref_snr_db": REF_SNR,
        "bad_link_db": BAD_LINK_DB,
        "total_symbols": TOTAL_SYMBOLS,
        "baud": BAUD,
        "error_vs_k": {k: 1 - a for k, a in by_k.items()},
        "error_vs_bits": {b: 1 - a for b, a in by_bits.items()},
        "error_vs_airtime": {t: 1 - a for t, a in by_airtime.items()},
        "accuracy_vs_psnr_equal": equal,
        "accuracy_vs_psnr_link1_at_0db": unequal,
        "dropped_link": dropped,
        "overlap": overlap,
        "models": {
            name: {
                "train_wall_s": i["train_wall_s"],
                "train_cpu_s": i["train_cpu_s"],
                "params": i["params"],
            }
            for name, i in info.items()
        },  # fmt: skip
        "plots": plots,
    }


def _plots(out_dir, by_k, by_bits, by_airtime, equal, unequal) -> list[str]:
    plot_lines(out_dir / "error_vs_k.png",
               {"joint, 48 symbols in all": (list(by_k), points([1 - a for a in by_k.values()]))},
               "devices K", "test error (%)", f"PSNR {REF_SNR:g} dB, 4 bits")  # fmt: skip
    plot_lines(out_dir / "error_vs_bits.png",
               {"K=2": (list(by_bits), points([1 - a for a in by_bits.values()]))},
               "bits per symbol", "test error (%)", f"K=2, PSNR {REF_SNR:g} dB")  # fmt: skip
    airtime_ms = [1e3 * int(t) / BAUD for t in by_airtime]
    plot_lines(out_dir / "error_vs_airtime.png",
               {"K=2": (airtime_ms, points([1 - a for a in by_airtime.values()]))},
               "air-time, both links (ms)", "test error (%)",
               f"K=2, PSNR {REF_SNR:g} dB")  # fmt: skip
    snrs = [float(s) for s in equal]
    series = {f"{name}, equal links": (snrs, points([1 - row[name] for row in equal.values()]))
              for name in ("joint", "averaging", "single (whole image)")}  # fmt: skip
    series |= {f"{name}, link 1 at {BAD_LINK_DB:g} dB":
               (snrs, points([1 - row[name] for row in unequal.values()]))
               for name in ("joint", "averaging")}  # fmt: skip
    plot_lines(out_dir / "error_vs_psnr.png", series, "PSNR of link 0 (dB)", "test error (%)",
               "K=2 vs averaging baseline, 4 bits")  # fmt: skip
    return ["error_vs_k.png", "error_vs_bits.png", "error_vs_airtime.png", "error_vs_psnr.png"]


def _margins(results: dict) -> list[float]:
    rows = [*results["accuracy_vs_psnr_equal"].values(),
            *results["accuracy_vs_psnr_link1_at_0db"].values()]  # fmt: skip
    return [100 * (r["joint"] - r["averaging"]) for r in rows]


def _drop(results: dict) -> tuple[float, float]:
    """(cost of losing one link, gap to chance), points; the worse of the two links."""
    d = results["dropped_link"]
    worst = min(d["link 0 only"], d["link 1 only"])
    return 100 * (d["both links"] - worst), 100 * (d["both links"] - 0.1)


def checks(results: dict) -> list[Check]:
    err = results["error_vs_k"]
    gap_k1 = 100 * (err["2"] - err["1"])
    cost, chance_gap = _drop(results)
    return [
        Check("joint K=2 − averaging accuracy, worst PSNR tested", min(_margins(results)), ">=",
              0.0, "points", "joint beats averaging at every PSNR"),
        Check("K=2 − K=1 error at 10 dB, 4 bits (each link half the air-time)", gap_k1, "<=",
              1.0, "points", "QML-IB Fig. 2(b)"),
        Check("cost of losing one of two links / gap to chance", cost / chance_gap, "<=", 1.0,
              "", "a lost link costs less than the gap to chance"),
    ]  # fmt: skip


def summary_rows(results: dict) -> list[tuple[str, str]]:
    cost, chance_gap = _drop(results)
    d, o = results["dropped_link"], results["overlap"]
    rows = [(f"error, K={k} ({results['total_symbols'] // int(k)} symbols per link)",
             f"{100 * e:.2f} %") for k, e in results["error_vs_k"].items()]  # fmt: skip
    rows += [(f"error, K=2, {b} bits", f"{100 * e:.2f} %")
             for b, e in results["error_vs_bits"].items()]  # fmt: skip
    rows += [(f"error, K=2, {t} symbols in all ({1e3 * int(t) / results['baud']:.2f} ms)",
              f"{100 * e:.2f} %") for t, e in results["error_vs_airtime"].items()]  # fmt: skip
    for snr, r in results["accuracy_vs_psnr_equal"].items():
        bad = results["accuracy_vs_psnr_link1_at_0db"][snr]
        pct = [100 * (1 - row[key]) for row in (r, bad) for key in ("joint", "averaging")]
        rows.append((f"error at {float(snr):g} dB: joint / averaging (link 1 at 0 dB)",
                     "{:.2f} / {:.2f} % ({:.2f} / {:.2f} %)".format(*pct)))  # fmt: skip
    rows += [
        ("one link lost at 10 dB: accuracy (link 0 only / link 1 only)",
         f"{100 * d['link 0 only']:.2f} / {100 * d['link 1 only']:.2f} % (both: "
         f"{100 * d['both links']:.2f} %; averaging: {100 * d['averaging, link 0 only']:.2f} / "
         f"{100 * d['averaging, link 1 only']:.2f} %)"),
        ("cost of the worse lost link vs gap to chance", f"{cost:.2f} vs {chance_gap:.2f} points"),
        ("accuracy, no overlap / overlap", " / ".join(f"{100 * v:.2f} %" for v in o.values())),
    ]  # fmt: skip
    return rows


def notes(results: dict) -> str:
    margins = _margins(results)
    d = results["dropped_link"]
    alone = 100 * (min(d["averaging, link 0 only"], d["averaging, link 1 only"])
                   - min(d["link 0 only"], d["link 1 only"]))  # fmt: skip
    return (
        f"The air-time budget is the symbols of one observation summed over the links "
        f"({results['total_symbols']}), so K devices share one channel's time; with parallel "
        f"links each device's own air-time is 1/K of that. Joint training beats averaging by "
        f"{min(margins):+.2f} to {max(margins):+.2f} points over the PSNRs tested: met, but by "
        "margins close to seed noise (single seed; ~0.3 points), so read it as 'no worse'. "
        "With one link lost, each averaging-baseline classifier alone is "
        f"{alone:+.2f} points better than the joint decoder with that link zeroed (link "
        "drop-out p = 0.15 in training). Quick runs use one noise draw per point."
    )
