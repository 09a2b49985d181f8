"""``python -m client --beta-sweep 1e-4,1e-2,1``: what each β costs on the air.

Sets the device's β live (``PUT /v1/knobs``), sends the images at each value and prints
accuracy, mean bits and mean air-time per β (the channel's link mode decides what bits are:
n × bits per symbol on the analog link, the range coder's output on a digital one), then
restores β.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np


def parse_betas(text: str) -> list[float]:
    try:
        betas = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--beta-sweep takes values like 1e-4,1e-2,1: {exc}"
        ) from None
    if not betas or any(b <= 0 for b in betas):
        raise argparse.ArgumentTypeError("--beta-sweep takes positive values like 1e-4,1e-2,1")
    return betas


def beta_sweep(client, samples: Sequence, betas: Sequence[float], run) -> list[dict]:
    """One summary per β: accuracy, mean bits, mean air-time (ms), link mode, losses."""
    original = client.knobs()["beta"]
    rows = []
    try:
        for beta in betas:
            client.set_knobs(beta=beta)
            outcomes = run(client, samples)
            ok = [o.reply for o in outcomes if o.ok]
            judged = [o.correct for o in outcomes if o.ok and o.correct is not None]
            rows.append({
                "beta": beta,
                "n": len(outcomes),
                "failed": len(outcomes) - len(ok),
                "accuracy": float(np.mean(judged)) if judged else None,
                "bits": float(np.mean([r["bits_sent"] for r in ok])) if ok else None,
                "airtime_ms": 1e3 * float(np.mean([r["airtime_s"] for r in ok])) if ok else None,
                "link_mode": ",".join(sorted({r.get("link_mode", "analog") for r in ok})) or "-",
                "lost": sum(bool(r.get("link_lost")) for r in ok),
            })  # fmt: skip
    finally:
        client.set_knobs(beta=original)
    return rows


def beta_sweep_table(rows: Sequence[dict]) -> str:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    lines = [f"{'beta':>8} {'n':>5} {'fail':>4} {'accuracy':>8} {'bits':>8} "
             f"{'air ms':>8} {'lost':>4}  link"]  # fmt: skip
    for r in rows:
        lines.append(
            f"{r['beta']:8.0e} {r['n']:5d} {r['failed']:4d} {fmt(r['accuracy'], '8.3f')} "
            f"{fmt(r['bits'], '8.1f')} {fmt(r['airtime_ms'], '8.3f')} {r['lost']:4d}  "
            f"{r['link_mode']}"
        )
    return "\n".join(lines)
