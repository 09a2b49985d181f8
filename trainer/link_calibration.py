"""Calibrate the MCS table of shared/link/modes.py: per MCS, the lowest PSNR (1 dB steps)
where the simulated block error rate of ``--blocks`` random ``--k``-bit payloads is < 1%.

    python -m trainer.link_calibration --blocks 300 --k 192
"""

from __future__ import annotations

import argparse

import numpy as np

from shared.link.ldpc_qam import simulate_blocks
from shared.link.modes import MCS_TABLE


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.link_calibration")
    p.add_argument("--blocks", type=int, default=300)
    p.add_argument("--k", type=int, default=192, help="payload bits per block")
    p.add_argument("--target", type=float, default=0.01, help="block error rate")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    for mcs in MCS_TABLE:
        for psnr_db in np.arange(-6.0, 35.0, 1.0):
            bits = rng.integers(0, 2, (args.blocks, args.k))
            _, ok = simulate_blocks(bits, mcs, float(psnr_db), rng)
            if 1 - ok.mean() < args.target:
                print(f"{mcs.name:12s} table {mcs.min_psnr_db:5.1f} dB, measured {psnr_db:5.1f} dB")
                break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
