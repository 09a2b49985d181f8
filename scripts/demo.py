"""End-to-end demo: what the two knobs buy, through the live edge + channel + device.

    make demo                 # = python scripts/demo.py
    make demo SERVE=1         # = python scripts/demo.py --serve (keeps a stack up for the page)

1. trains the demo models into ``--models`` (default ``artifacts/demo/``) when missing, two
   at a time on one torch thread each (scripts/demo_models.py says which and how);
2. **β buys bits**: the entropy-coded 4-bit model on the channel's ``ideal`` digital link at
   10 dB: coded bits, air-time and accuracy per β (Hyper-VIB's β, QML-IB's levels, the range
   coder's bits);
3. **a good channel needs fewer symbols**: the variable-length model (VL-VFE eq. 12) at
   10/15/20/25 dB, the device following the channel's PSNR feedback;
4. **the picture degrades gracefully**: the image model (Hyper-AJSCC deep JSCC) at 0/5/10/20 dB:
   PSNR and SSIM of the received images, and a PNG strip of one image per SNR;
5. with ``--serve``, starts one stack and prints the page's address until Ctrl-C.

Every stack runs as local processes on free loopback ports and is stopped on errors, Ctrl-C
and SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from client.beta_sweep import beta_sweep  # noqa: E402
from client.http import DeviceHttp, fashion_samples, run, sweep  # noqa: E402
from scripts.demo_models import DEMO_MODELS, ensure_models  # noqa: E402
from tools.stack import running_stack  # noqa: E402

BETAS = (1e-5, 1e-3, 1e-2, 3e-2, 1e-1, 1.0)
VL_PSNRS = (10.0, 15.0, 20.0, 25.0)
IMAGE_SNRS = (0.0, 5.0, 10.0, 20.0)


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [title, "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def beta_section(model_dir: Path, samples) -> list[dict]:
    """β sweep on the ideal digital link at 10 dB: coded bits fall as β rises."""
    with running_stack(model_dir, 10.0, channel_flags=["--link-mode", "ideal"]) as stack:
        with DeviceHttp(stack.url) as client:
            rows = beta_sweep(client, samples, BETAS, run)
    print(table(
        "\nβ buys bits: entropy-coded 4-bit model, ideal digital link, 10 dB, "
        f"{len(samples)} images per β",
        ["beta", "coded bits", "air-time ms", "accuracy", "failed"],
        [[f"{r['beta']:.0e}", f"{r['bits']:.1f}", f"{r['airtime_ms']:.2f}",
          _pct(r["accuracy"]), str(r["failed"])] for r in rows],
    ))  # fmt: skip
    return rows


def psnr_section(model_dir: Path, samples) -> list[dict]:
    """PSNR sweep with the variable-length model: fewer symbols on a better channel."""
    with running_stack(model_dir, VL_PSNRS[0]) as stack:
        with DeviceHttp(stack.url) as client:
            swept = sweep(client, samples, VL_PSNRS)
    rows = [
        {
            "psnr_db": p,
            **s,
            "airtime_ms": 1e3
            * float(np.mean([o.reply["airtime_s"] for o in out if o.ok] or [np.nan])),
        }
        for p, s, out in swept
    ]
    print(table(
        "\nA good channel needs fewer symbols: variable-length model, device on the "
        f"channel's PSNR feedback, {len(samples)} images per PSNR",
        ["PSNR dB", "symbols", "air-time ms", "accuracy", "p50 ms", "failed"],
        [[f"{r['psnr_db']:g}", f"{r['mean_symbols']:.1f}",
          f"{r['airtime_ms']:.2f}", _pct(r["accuracy"]),
          f"{r['p50_ms']:.2f}", str(r["failed"])] for r in rows],
    ))  # fmt: skip
    return rows


def image_section(model_dir: Path, samples, strip_path: Path) -> list[dict] | None:
    """SNR sweep with the image model: PSNR/SSIM of what arrived, and a PNG strip."""
    from scripts.demo_images import image_sweep, write_strip

    with running_stack(model_dir, IMAGE_SNRS[0]) as stack:
        with DeviceHttp(stack.url) as client:
            rows, received = image_sweep(client, samples, IMAGE_SNRS)
    write_strip(strip_path, samples[0], received, IMAGE_SNRS)
    print(table(
        f"\nThe picture degrades gracefully: image model (deep JSCC), {len(samples)} images "
        f"per SNR; strip of one image at {', '.join(f'{s:g}' for s in IMAGE_SNRS)} dB: "
        f"{strip_path.relative_to(REPO) if strip_path.is_relative_to(REPO) else strip_path}",
        ["SNR dB", "PSNR dB", "SSIM", "symbols", "failed"],
        [[f"{r['snr_db']:g}", f"{r['psnr_db']:.2f}", f"{r['ssim']:.3f}",
          f"{r['symbols']:.0f}", str(r["failed"])] for r in rows],
    ))  # fmt: skip
    return rows


def serve(model_dir: Path) -> None:
    """One stack with the entropy-coded model, up until Ctrl-C, for the web page."""
    with running_stack(model_dir, 10.0, channel_flags=["--link-mode", "ideal"]) as stack:
        print(f"\nthe page: {stack.url}/  (entropy-coded model, ideal link; Ctrl-C stops)")
        while True:
            time.sleep(3600)


def _sigterm(_signum, _frame):
    raise KeyboardInterrupt  # run the clean-up of every running_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "artifacts" / "demo")
    parser.add_argument("--n", type=int, default=200, help="test images per point")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    parser.add_argument("--serve", action="store_true", help="keep a stack up for the page")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    start = time.perf_counter()
    models = args.models if args.models.is_absolute() else REPO / args.models
    try:
        dirs = ensure_models(models, args.data_dir)
        samples = fashion_samples(args.n, args.data_dir)
        beta_rows = beta_section(dirs["digital"], samples)
        psnr_rows = psnr_section(dirs["vl"], samples)
        image_rows = None
        if "image" in dirs:
            image_rows = image_section(dirs["image"], samples, models / "image_strip.png")
        failed = sum(r["failed"] for r in (*beta_rows, *psnr_rows, *(image_rows or [])))
        print(f"\ndemo done in {time.perf_counter() - start:.0f} s, {failed} failed requests")
        if args.serve:
            serve(dirs["digital"])
    except KeyboardInterrupt:
        print("interrupted: every stack stopped", file=sys.stderr)
        return 130
    return 1 if failed else 0


__all__ = ["DEMO_MODELS", "main"]

if __name__ == "__main__":
    sys.exit(main())
