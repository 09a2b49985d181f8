"""Command-line client of the device's HTTP API (no PyTorch); ``python -m device.client`` is
an alias.

    python -m client img.png folder/ [--url http://127.0.0.1:8080]
    python -m client --test-samples 200 [--data-dir /usr/share/datasets/fashion-mnist]
    python -m client --test-samples 200 --snr-sweep 5,10,20

Images are sent as multipart uploads (field ``file``); Fashion-MNIST test images are encoded
as PNG first, so they take the same path as any image. Prints the predictions (files), the
accuracy when labels are known (test samples; files in a folder named like a class), and
p50/p95 latency per stage in milliseconds. ``--snr-sweep`` sets the channel PSNR (dB) live
through ``PUT /v1/channel/psnr``, sends the images at each value, prints accuracy, mean
symbols, mean bits and latency per PSNR, and restores the channel's PSNR at the end.
``--beta-sweep 1e-4,1e-2,1`` does the same over β (client/beta_sweep.py): accuracy, bits and
air-time per β.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

from client.beta_sweep import beta_sweep, beta_sweep_table, parse_betas
from client.http import (
    DeviceHttp,
    fashion_samples,
    file_samples,
    fmt,
    latency_table,
    print_predictions,
    run,
    summarise,
    sweep,
    sweep_table,
)


def parse_psnrs(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--snr-sweep takes dB values like 5,10,20: {exc}"
        ) from exc


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"] and not Path("bench").exists():
        print("the load bench is a tool now: python -m tools.bench " + " ".join(argv[1:]),
              file=sys.stderr)  # fmt: skip
        return 2
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__)
    parser.add_argument("paths", nargs="*", help="image files or folders")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="device base URL")
    parser.add_argument(
        "--devices", default=None,
        help="multi-link model: the K devices' URLs, URL1,URL2,... (each image goes to all)",
    )  # fmt: skip
    parser.add_argument("--test-samples", type=int, default=0, help="N Fashion-MNIST test images")
    parser.add_argument("--data-dir", default=None, help="folder with the IDX files")
    parser.add_argument("--snr-sweep", type=parse_psnrs, default=None, help="PSNRs in dB, 5,10,20")
    parser.add_argument(
        "--beta-sweep", type=parse_betas, default=None,
        help="betas like 1e-4,1e-2,1: accuracy, bits and air-time per beta",
    )  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=10.0, help="HTTP timeout, seconds")
    parser.add_argument("--quiet", action="store_true", help="no per-image lines")
    args = parser.parse_args(argv)
    if not args.paths and not args.test_samples:
        parser.error("give image files/folders or --test-samples N")
    if args.devices:
        return group_main(args)

    with DeviceHttp(args.url, args.timeout_s) as client:
        try:
            model = client.model()
        except (httpx.HTTPError, RuntimeError) as exc:
            print(f"cannot reach the device at {args.url}: {exc}", file=sys.stderr)
            return 2
        names = model["class_names"]
        samples = file_samples(args.paths, names) if args.paths else []
        if args.test_samples:
            samples += fashion_samples(args.test_samples, args.data_dir)
        knobs = client.knobs()
        knobs = {k: knobs[k] for k in ("beta", "snr_mode", "snr_db", "variable_length")}
        print(f"model {model['model_id']} ({model['dataset']}), {len(samples)} images, {knobs}")
        if args.beta_sweep:
            rows = beta_sweep(client, samples, args.beta_sweep, run)
            print(beta_sweep_table(rows))
            outcomes = run(client, samples[:1])
        elif args.snr_sweep:
            rows = sweep(client, samples, args.snr_sweep)
            print(sweep_table(rows))
            outcomes = [o for _, _, row in rows for o in row]
        else:
            outcomes = run(client, samples)
            if not args.quiet and len(samples) <= 50:
                print_predictions(outcomes, names)
            s = summarise(outcomes)
            accuracy = "" if s["accuracy"] is None else f", accuracy {s['accuracy']:.4f}"
            if s["mean_psnr_db"] is not None:
                accuracy += f", PSNR {s['mean_psnr_db']:.2f} dB, SSIM {s['mean_ssim']:.3f}"
            symbols, bits = (
                fmt(s["mean_symbols"], ".2f"),
                fmt(s["mean_bits"], ".1f"),
            )
            print(
                f"{s['ok']}/{s['n']} answered{accuracy}, mean symbols {symbols}, mean bits {bits}"
            )
        print(latency_table(outcomes))
        failed = [o for o in outcomes if not o.ok]
        for o in failed[:5]:
            print(f"failed: {o.sample.name}: HTTP {o.status}: {o.reply.get('detail')}")
    return 1 if failed else 0


def group_main(args) -> int:
    """--devices: every image to all K devices under one group id (client/groups.py)."""
    from client.groups import print_groups, run_groups

    urls = [u.strip() for u in args.devices.split(",") if u.strip()]
    clients = [DeviceHttp(url, args.timeout_s) for url in urls]
    try:
        try:
            names = clients[0].model()["class_names"]
        except (httpx.HTTPError, RuntimeError) as exc:
            print(f"cannot reach the device at {urls[0]}: {exc}", file=sys.stderr)
            return 2
        samples = file_samples(args.paths, names) if args.paths else []
        if args.test_samples:
            samples += fashion_samples(args.test_samples, args.data_dir)
        groups = run_groups(clients, samples)
        print_groups(groups, urls)
        print(latency_table([o for g in groups for o in g.outcomes]))
        return 0 if all(g.label is not None for g in groups) else 1
    finally:
        for client in clients:
            client.close()


if __name__ == "__main__":
    sys.exit(main())
