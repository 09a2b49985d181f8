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
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.client import DeviceHttp, fashion_samples, latency_table, sweep, sweep_table  # noqa: E402
from shared.manifest import MANIFEST_NAME  # noqa: E402
from tests.procs import (  # noqa: E402
    ServiceProcess,
    free_port,
    wait_for_grpc_health,
    wait_for_http,
)


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


def start_stack(stack: ExitStack, model_dir: Path, psnr_db: float, deadline_s: float) -> str:
    """Edge, channel, device on free loopback ports; returns the device URL."""
    edge_port, channel_port, device_port = free_port(), free_port(), free_port()
    python = sys.executable
    print(f"starting edge :{edge_port}, channel :{channel_port}, device :{device_port}", flush=True)
    edge = stack.enter_context(ServiceProcess(
        [python, "-m", "edge_server", "--model", model_dir, "--host", "127.0.0.1",
         "--port", edge_port, "--metrics-port", 0]
    ))  # fmt: skip
    wait_for_grpc_health(f"127.0.0.1:{edge_port}", edge, timeout_s=120)
    channel = stack.enter_context(ServiceProcess(
        [python, "-m", "channel", "--edge", f"127.0.0.1:{edge_port}", "--host", "127.0.0.1",
         "--port", channel_port, "--psnr", psnr_db, "--metrics-port", 0]
    ))  # fmt: skip
    wait_for_grpc_health(f"127.0.0.1:{channel_port}", channel, timeout_s=60)
    device = stack.enter_context(ServiceProcess(
        [python, "-m", "device", "--model", model_dir, "--channel", f"127.0.0.1:{channel_port}",
         "--port", device_port, "--deadline-s", deadline_s]
    ))  # fmt: skip
    url = f"http://127.0.0.1:{device_port}"
    wait_for_http(f"{url}/readyz", device, timeout_s=60)
    return url


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
        with ExitStack() as stack:
            url = start_stack(stack, model_dir, psnrs[0], args.deadline_s)
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
