"""A/B of the C=1 device span: stacks side by side, the echo chain, alternating blocks.

    python -m tools.investigations.ab --variant before=../old-checkout --variant after=.
    python -m tools.investigations.ab --variant ours=. --variant bare-edge=.:edge \\
        --variant bare-channel=.:channel --variant bare-both=.:edge,channel

Each ``--variant NAME=CHECKOUT[:BARE]`` is one stack (edge, channel, device) run from
CHECKOUT, with the services named in BARE replaced by the stand-ins of
:mod:`tools.investigations.bare` (the channel as a raw-bytes forwarder, the edge as a canned reply).
All stacks and the bare echo chain stay up together; ``--rounds`` times, every stack gets a
block of ``--block`` sequential requests (a :class:`~tools.bench.load.LightHttpClient`,
each a different test image) and the echo chain a block of calls, the first tenth of each
block dropped. Every variant thus sees the same machine, which a run against another run
does not (on this 2-core VM the whole chain drifted by 20-40 % within minutes). Identical
stacks still differ by up to 0.05 ms p50 (where their processes land), so compare
differences larger than that, or give each variant two stacks.

Prints, per variant, the device span p50 and its ratio to (echo + encode + decode) p50, with
every stage p50 (ms), and the median of the cache probe run after every round
(:mod:`tools.bench.contention`: near 1.0 when nothing outside evicts the cache; compare
runs only when it is); ``--out FILE`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from client.http import png_bytes
from shared.idx import load_test_set
from tools.bench import echo
from tools.bench.cli import resolve_model, start_echo_chain
from tools.bench.contention import cache_probe
from tools.bench.load import paired_blocks
from tools.stack import PYTHON, REPO, Stack, repo_relative

STAGES = ("total", "preprocess", "encode", "device_to_channel", "channel", "channel_to_edge",
          "edge_queue", "decode", "edge_total", "rpc")  # fmt: skip
BARE_SCRIPT = (
    REPO / "tools" / "investigations" / "bare.py"
)  # this checkout's, whatever the variant's


class VariantStack(Stack):
    """A :class:`Stack` whose ``bare`` services are the stand-ins of tools.investigations.bare."""

    def __init__(self, model_dir: Path, checkout: Path, bare: frozenset[str]) -> None:
        super().__init__(
            model_dir, 20.0, checkout=checkout, device_flags=["--log-level", "warning"]
        )
        self.bare = bare

    def command(self, name: str) -> list[object]:
        if name == "edge" and "edge" in self.bare:
            return [PYTHON, BARE_SCRIPT, "edge", "--port", self.ports[name],
                    "--model", self.model_dir]  # fmt: skip
        if name == "channel" and "channel" in self.bare:
            return [PYTHON, BARE_SCRIPT, "channel", "--port", self.ports[name],
                    "--edge", self.edge_target]  # fmt: skip
        return super().command(name)


def parse_variant(text: str) -> tuple[str, Path, frozenset[str]]:
    """``NAME=CHECKOUT[:edge,channel]`` -> (name, checkout, bare services)."""
    name, sep, rest = text.partition("=")
    checkout, _, bare = rest.partition(":")
    services = frozenset(s for s in bare.split(",") if s)
    if not sep or not name or not checkout or not services <= {"edge", "channel"}:
        raise argparse.ArgumentTypeError(
            f"--variant takes NAME=CHECKOUT[:edge,channel], got {text!r}"
        )
    path = Path(checkout).resolve()
    if not (path / "device").is_dir():
        raise argparse.ArgumentTypeError(f"{checkout} is not a checkout of this project")
    return name, path, services


def summarise(records: list[dict], echo_p50: float) -> dict:
    ok = [r for r in records if r["ok"]]
    p50 = {k: float(np.median([r["stages"].get(k) or 0.0 for r in ok])) for k in STAGES}
    p50["http"] = float(np.median([r["latency_s"] for r in ok]))
    bound = echo_p50 + p50["encode"] + p50["decode"]
    return {"requests": len(records), "errors": len(records) - len(ok), "p50_s": p50,
            "bound_s": bound, "ratio": p50["total"] / bound}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.investigations.ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variant", type=parse_variant, action="append", required=True)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    names = [name for name, _, _ in args.variant]
    if len(set(names)) != len(names):
        parser.error(f"variant names must differ: {names}")
    model_dir = resolve_model(args.model, False, args.data_dir).resolve()
    images, labels = load_test_set(args.data_dir, 500)
    samples = [(png_bytes(img), int(lab)) for img, lab in zip(images, labels, strict=True)]
    with ExitStack() as stack:
        urls = {}
        for name, checkout, bare in args.variant:
            live = stack.enter_context(VariantStack(model_dir, checkout, bare))
            live.start()
            urls[name] = live.url
            print(f"{name}: {repo_relative(checkout)}, bare: {sorted(bare) or '-'}", flush=True)
        target = start_echo_chain(stack, 228)
        run = asyncio.run(
            paired_blocks(urls, target, echo.ECHO_METHOD, samples, bytes(353), args.rounds,
                          args.block, max(1, args.block // 10), 10.0,
                          probe=lambda: cache_probe().ratio)
        )  # fmt: skip
    echo_p50 = float(np.median(run.echo_s))
    rows = {name: summarise(recs, echo_p50) for name, recs in run.records.items()}
    probe_p50 = float(np.median(run.probes))
    print(
        f"echo chain p50 {echo_p50 * 1e3:.3f} ms ({len(run.echo_s)} calls); cache probe p50 "
        f"{probe_p50:.2f} (tools.bench.contention: 1.0-1.1 quiet, 1.5+ contended)"
    )
    for name, row in rows.items():
        stages = " ".join(f"{k} {v * 1e3:.3f}" for k, v in row["p50_s"].items())
        print(f"{name:>14}: ratio {row['ratio']:.3f} | {stages} (ms p50, {row['errors']} errors)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "variants": {name: {"checkout": repo_relative(c), "bare": sorted(b)}
                         for name, c, b in args.variant},
            "rounds": args.rounds, "block": args.block, "echo_p50_s": echo_p50,
            "cache_probe": {"p50": probe_p50, "per_round": run.probes},
            "results": rows,
        }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
