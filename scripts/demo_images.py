"""The image part of `make demo`: an SNR sweep of the image model through the live stack,
and a PNG strip of one image as sent and as received at each SNR."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from client.http import DeviceHttp, Sample, run

SCALE = 4  # pixels per image pixel in the strip
GAP = 6


def image_sweep(client: DeviceHttp, samples: list[Sample], snrs_db) -> tuple[list[dict], dict]:
    """At each channel SNR (the device follows the channel's feedback): mean PSNR / SSIM of
    the received images, and the first sample's received PNG (base64) per SNR."""
    original = client.channel()["psnr_db"]
    rows, received = [], {}
    try:
        for snr in snrs_db:
            client.set_psnr(snr)
            outcomes = run(client, samples)
            ok = [o for o in outcomes if o.ok]
            recs = [o.reply["reconstruction"] for o in ok]
            rows.append({
                "snr_db": snr,
                "psnr_db": float(np.mean([r["psnr_db"] for r in recs])) if recs else float("nan"),
                "ssim": float(np.mean([r["ssim"] for r in recs])) if recs else float("nan"),
                "symbols": float(np.mean([o.reply["symbols_sent"] for o in ok])) if ok else 0.0,
                "failed": len(outcomes) - len(ok),
            })  # fmt: skip
            if outcomes[0].ok:
                received[snr] = outcomes[0].reply["reconstruction"]
    finally:
        client.set_psnr(original)
    return rows, received


def _decode(png_b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(png_b64))).convert("L")


def write_strip(path: Path, sample: Sample, received: dict, snrs_db) -> Path:
    """sent | received at each SNR, each scaled ×SCALE, labelled underneath."""
    first = next(iter(received.values()), None)
    tiles = [("sent", _decode(first["sent_png_base64"]) if first else None)]
    tiles += [(f"{s:g} dB", _decode(received[s]["received_png_base64"]) if s in received else None)
              for s in snrs_db]  # fmt: skip
    size = (first["shape"][2] if first else 28) * SCALE
    strip = Image.new("L", (len(tiles) * (size + GAP) + GAP, size + 2 * GAP + 14), 255)
    draw = ImageDraw.Draw(strip)
    for k, (label, tile) in enumerate(tiles):
        x = GAP + k * (size + GAP)
        if tile is not None:
            strip.paste(tile.resize((size, size), Image.NEAREST), (x, GAP))
        draw.text((x + 2, size + GAP + 2), label, fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path)
    return path
