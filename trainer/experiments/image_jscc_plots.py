"""The image-jscc experiment's figures: Hyper-AJSCC Fig. 4 (against the BDJSCCs), Fig. 5
(against ADJSCC), JSCC against separation, and example reconstructions. PSNR in dB (eq. 18,
MAX 1) over the test SNR in dB."""

from __future__ import annotations

from pathlib import Path

EXAMPLE_SNRS = (0.0, 10.0, 20.0)


def _label(ax, xlabel: str, legend_size: int) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def _save(fig, ax, xlabel: str, legend_size: int, path: Path) -> str:
    """Label ``ax`` (PSNR over ``xlabel``; none when ``ax`` is None), write ``fig`` to ``path``
    and close it; the file's name."""
    import matplotlib.pyplot as plt

    if ax is not None:
        _label(ax, xlabel, legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def make_plots(results, out_dir: Path, example_models, x_test, seed) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snrs = results["test_snr_db"]
    keys = list(results["ratios"])
    plots = []
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        entry = results["ratios"][key]
        for train_snr in results["train_snr_db"]:
            values = entry[f"bdjscc {train_snr:g} dB"]["psnr_db"]
            (line,) = ax.plot(snrs, values, lw=1, alpha=0.8, label=f"BDJSCC {train_snr:g} dB")
            ax.plot([train_snr], [values[snrs.index(train_snr)]], "o", mfc="none", ms=9,
                    color=line.get_color())  # fmt: skip
        ax.plot(snrs, entry["hyper"]["psnr_db"], "k-", lw=2.5, label="Hyper-AJSCC")
        ax.set_title(f"Fig. 4: R = {float(key):.4g} (d = {entry['complex_uses']} complex uses)")
        _label(ax, "test SNR (dB)", 7)
    plots.append(_save(fig, None, "", 0, out_dir / "fig4_psnr_vs_snr.png"))

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key in keys:
        entry = results["ratios"][key]
        ax.plot(snrs, entry["hyper"]["psnr_db"], "-o", ms=3, label=f"Hyper-AJSCC R={key}")
        ax.plot(snrs, entry["adjscc"]["psnr_db"], "--s", ms=3, label=f"ADJSCC R={key}")
    ax.set_title("Fig. 5: Hyper-AJSCC against ADJSCC")
    plots.append(_save(fig, ax, "test SNR (dB)", 8, out_dir / "fig5_vs_adjscc.png"))

    sep = results["separation"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, curves in sep["ratios"].items():
        (line,) = ax.plot(sep["snr_db"], [p["psnr_db"] for p in curves["adaptive"]], "-", lw=2,
                          label=f"WebP+LDPC adaptive MCS, R={key}")  # fmt: skip
        for pts in curves["designs"].values():
            ax.plot(sep["snr_db"], [p["psnr_db"] for p in pts], ":", lw=1,
                    color=line.get_color(), alpha=0.7)  # fmt: skip
        if key in results["ratios"]:
            ax.plot(snrs, results["ratios"][key]["hyper"]["psnr_db"], "-o", ms=3,
                    color=line.get_color(), label=f"Hyper-AJSCC R={key}")  # fmt: skip
    ax.axhline(results["mean_image_psnr_db"], color="grey", lw=0.8, ls="--",
               label="mean image (nothing delivered)")  # fmt: skip
    ax.set_title("JSCC against separation (dotted: one fixed MCS each, the cliff)")
    plots.append(_save(fig, ax, "SNR (dB)", 7, out_dir / "separation.png"))

    plots.append(save_examples(example_models, x_test, out_dir, seed))
    return plots


def save_examples(example_models, x_test, out_dir: Path, seed: int) -> str:
    """Six test images, then the hyper model's reconstructions at 0/10/20 dB per R."""
    import matplotlib.pyplot as plt

    from trainer.image_jscc import reconstruct

    images = x_test[:6]
    rows = [("sent", images)]
    for ratio, model in example_models.items():
        for snr in EXAMPLE_SNRS:
            rows.append((f"R={ratio:.3g}\n{snr:g} dB", reconstruct(model, images, snr, seed)))
    fig, axes = plt.subplots(len(rows), len(images), figsize=(1.3 * len(images), 1.3 * len(rows)))
    for r, (label, batch) in enumerate(rows):
        for c, img in enumerate(batch):
            ax = axes[r][c]
            pixels = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            ax.imshow(pixels, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "examples.png", dpi=110)
    plt.close(fig)
    return "examples.png"
