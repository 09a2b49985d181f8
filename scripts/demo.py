"""End-to-end demo: train (if needed), start edge + channel + device, sweep the PSNR.

    make demo                          # = python scripts/demo.py
    python scripts/demo.py --model artifacts/quick --n 200 --psnrs 5,10,20

1. trains a quick model into ``--model`` when its manifest is missing
   (``python -m trainer train --quick --out <model>``);
2. starts the edge server, the channel proxy and the device as subprocesses on free
   loopback ports and waits until each is ready;
3. sends ``--n`` Fashion-MNIST test images (PNG uploads) at each PSNR, changing the channel
   PSNR live through the device (``PUT /v1/channel/psnr``), the device in feedback mode;
4. prints accuracy, mean symbols/bits and latency per PSNR, and per-stage latency;
5. stops every process it started, also on errors, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.client import DeviceHttp, fashion_samples, latency_table, sweep, sweep_table  # noqa: E402
from shared.manifest import MANIFEST_NAME  # noqa: E402
from tools.stack import running_stack  # noqa: E402


def ensure_model(model_dir: Path, data_dir: str | None) -> None:
    """Train a quick model into ``model_dir`` unless it already holds a manifest."""
    if (model_dir / MANIFEST_NAME).is_file():
        print(f"using the model in {model_dir}")
        return
    command = [sys.executable, "-m", "trainer", "train", "--quick", "--out", str(model_dir)]
    if data_dir:
        command += ["--data-dir", data_dir]
    print(f"no model in {model_dir}: training one ({' '.join(command[1:])})", flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def _sigterm(_signum, _frame):
    raise KeyboardInterrupt  # run the finally/ExitStack clean-up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "artifacts" / "quick")
    parser.add_argument("--n", type=int, default=200, help="test images per PSNR")
    parser.add_argument("--psnrs", default="5,10,20", help="channel PSNRs in dB")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    parser.add_argument("--deadline-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    psnrs = [float(v) for v in args.psnrs.split(",")]
    signal.signal(signal.SIGTERM, _sigterm)

    model_dir = args.model if args.model.is_absolute() else REPO / args.model
    ensure_model(model_dir, args.data_dir)
    samples = fashion_samples(args.n, args.data_dir)
    start = time.perf_counter()
    try:
        print("starting edge, channel and device on free loopback ports", flush=True)
        with running_stack(
            model_dir, psnrs[0], device_flags=["--deadline-s", args.deadline_s]
        ) as stack:
            url = stack.url
            print(f"stack ready after {time.perf_counter() - start:.1f} s; device at {url}")
            with DeviceHttp(url) as client:
                model = client.model()
                knobs = client.knobs()
                print(
                    f"model {model['model_id']} ({model['dataset']}, d={model['d']}, "
                    f"bits={model['bits'] or 'float32'}, variable_length="
                    f"{model['variable_length']}); beta={knobs['beta']:g}, snr_mode="
                    f"{knobs['snr_mode']}; {len(samples)} test images per PSNR\n"
                )
                rows = sweep(client, samples, psnrs)
            print(sweep_table(rows))
            for psnr_db, _, outcomes in rows:
                print(f"\nper-stage latency at {psnr_db:g} dB (ms)")
                print(latency_table(outcomes))
            failed = sum(summary["failed"] for _, summary, _ in rows)
            print("\nstopping the stack")
    except KeyboardInterrupt:
        print("interrupted: stack stopped", file=sys.stderr)
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
