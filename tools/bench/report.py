"""The bench's outputs: results.json, sweep.csv, tables.md, and the targets it reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tools.bench.stats import PERCENTILES, STAGE_KEYS


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.2f}"


def _acc(v):
    return "-" if v is None else f"{v:.4f}"


def _x(v):
    return "-" if v is None else f"{v:.1f}x"


def _us(v):
    return "-" if v is None else f"{v * 1e6:.1f}"


def sweep_table(rows: list[dict]) -> str:
    head = (
        "| chain | C | req/s | errors | p50 ms | p90 ms | p95 ms | p99 ms | accuracy | generator |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lat = r["latency_s"]
        lines.append(
            f"| {r['kind']} | {r['concurrency']} | {r['throughput_per_s']:.0f} | {r['errors']} | "
            f"{_ms(lat['p50'])} | {_ms(lat['p90'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | "
            f"{_acc(r.get('accuracy'))} | {r.get('generator') or '-'} |"
        )
    return "\n".join(lines)


def stage_table(rows: list[dict]) -> str:
    """p50 / p99 (ms) per stage for each level of our chain."""
    ours = [r for r in rows if "stages_s" in r]
    head = "| stage | " + " | ".join(f"{r['kind']} C={r['concurrency']}" for r in ours) + " |"
    lines = [head, "|" + "---|" * (len(ours) + 1)]
    for key in STAGE_KEYS:
        cells = [f"{_ms(r['stages_s'][key]['p50'])} / {_ms(r['stages_s'][key]['p99'])}"
                 for r in ours]  # fmt: skip
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    fields = ["kind", "concurrency", "duration_s", "requests", "errors", "throughput_per_s",
              "accuracy", "mean_symbols", "mean_bits", "generator"]  # fmt: skip
    with open(out / "sweep.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        stage_cols = [f"{k}_p{p}_s" for k in STAGE_KEYS for p in PERCENTILES]
        writer.writerow(fields + [f"latency_p{p}_s" for p in PERCENTILES] + stage_cols)
        for r in results["sweep"]:
            row = [r.get(f) for f in fields] + [r["latency_s"][f"p{p}"] for p in PERCENTILES]
            stages = r.get("stages_s", {})
            row += [stages.get(k, {}).get(f"p{p}") for k in STAGE_KEYS for p in PERCENTILES]
            writer.writerow(row)
    (out / "tables.md").write_text(results["tables_md"])


def _by_concurrency(sweep: list[dict], kind: str) -> dict[int, dict]:
    return {r["concurrency"]: r for r in sweep if r["kind"] == kind}


def evaluate_targets(results: dict) -> list[dict]:
    """The issues' targets, reported (not asserted): met / missed with the numbers.

    The four absolute serving targets, then the four ratios to the echo chain measured
    in the same run (at the top concurrency both chains ran, and at C=1).
    """
    targets = []
    sweep = results["sweep"]
    enc = results.get("encoder") or {}
    if enc.get("torch_p50_s") and enc.get("ort_p50_s"):
        speedup = enc["torch_p50_s"] / enc["ort_p50_s"]
        targets.append({"target": "ORT encoder >= 3x faster than torch eager at batch 1 (p50)",
                        "value": f"{speedup:.2f}x", "met": speedup >= 3})  # fmt: skip
    ours, echo = _by_concurrency(sweep, "ours"), _by_concurrency(sweep, "echo")
    span, how, _ = span_figures(results)
    if span is not None:
        total, bound, http_p50 = span
        targets.append({
            "target": "device-span p50 at C=1 <= 1.3 x (echo p50 + encode p50 + decode p50)",
            "value": f"{total * 1e3:.2f} ms vs 1.3 x {bound * 1e3:.2f} ms = "
                     f"{1.3 * bound * 1e3:.2f} ms (ratio {total / bound:.2f}, {how}); HTTP "
                     f"round trip p50 {_ms(http_p50)} ms (ratio {http_p50 / bound:.2f})",
            "met": total <= 1.3 * bound,
        })  # fmt: skip
    if ours:
        top = ours[max(ours)]
        p99 = top["latency_s"]["p99"]
        targets.append(
            {
                "target": f">= 2,000 img/s at C={top['concurrency']} with p99 < 50 ms",
                "value": f"{top['throughput_per_s']:.0f} img/s, p99 {_ms(p99)} ms",
                "met": top["throughput_per_s"] >= 2000 and p99 is not None and p99 < 0.05,
            }
        )
    wire = results.get("wire")
    if wire and wire.get("edge_only_accuracy") is not None and wire.get("bits_ratio"):
        acc_gap = (wire["edge_only_accuracy"] - wire["ours_accuracy"]) * 100
        ok = wire["bits_ratio"] >= 20 and wire["airtime_ratio"] >= 20 and acc_gap <= 1
        targets.append({
            "target": ">= 20x fewer bytes and air-time than edge-only within 1 point accuracy",
            "value": f"bytes {wire['bits_ratio']:.1f}x fewer, air-time "
                     f"{wire['airtime_ratio']:.1f}x less, accuracy {wire['ours_accuracy']:.4f}"
                     f"{_replies(wire.get('ours_accuracy_replies'))} vs "
                     f"{wire['edge_only_accuracy']:.4f}"
                     f"{_replies(wire.get('edge_only_replies'))} (ours {-acc_gap:+.2f} points)",
            "met": ok,
        })  # fmt: skip
    targets += ratio_targets(ours, echo, span_figures(results))
    return targets


def _replies(n: int | None) -> str:
    return "" if not n else f" ({n:,} replies)"


def _device_span_ratio(ours: dict, echo: dict) -> tuple[float, float, float] | None:
    """(device span p50, echo p50 + encode p50 + decode p50, HTTP p50) at C=1, seconds,
    from the sweep's C=1 levels (run one after the other)."""
    if 1 not in ours or 1 not in echo or "stages_s" not in ours[1]:
        return None
    o, e = ours[1], echo[1]
    parts = (e["latency_s"]["p50"], o["stages_s"]["encode"]["p50"],
             o["stages_s"]["decode"]["p50"], o["stages_s"]["total"]["p50"])  # fmt: skip
    if any(v is None for v in parts):
        return None
    return parts[3], sum(parts[:3]), o["latency_s"]["p50"]


def _paired_span_ratio(span: dict | None) -> tuple[float, float, float] | None:
    """The same figures from the paired C=1 measurement (results["span_c1"])."""
    if not span or "stages_s" not in span:
        return None
    stages = span["stages_s"]
    parts = (span["echo_s"]["p50"], stages["encode"]["p50"], stages["decode"]["p50"],
             stages["total"]["p50"])  # fmt: skip
    if any(v is None for v in parts):
        return None
    return parts[3], sum(parts[:3]), span["http_s"]["p50"]


def span_figures(results: dict) -> tuple[tuple[float, float, float] | None, str, str]:
    """(figures, how, the other way's ratio as text) for the C=1 span targets: the paired
    measurement when the run made one (drift-free), else the sweep's C=1 levels."""
    sweep = results["sweep"]
    levels = _device_span_ratio(_by_concurrency(sweep, "ours"), _by_concurrency(sweep, "echo"))
    span = results.get("span_c1")
    paired = _paired_span_ratio(span)
    if paired is not None:
        other = (
            f"; sweep levels one after the other: {levels[0] / levels[1]:.2f}x" if levels else ""
        )
        other += _quiet_text(span)
        return paired, "paired blocks", other
    return levels, "sweep levels", ""


def _quiet_text(span: dict) -> str:
    """The cache probe's median and the ratio over the quiet rounds, as text (or "")."""
    probe = span.get("cache_probe")
    if not probe or probe.get("p50") is None:
        return ""
    text = f"; cache probe p50 {probe['p50']:.2f}"
    quiet = _paired_span_ratio(span.get("quiet"))
    n = len(probe["per_round"])
    if quiet is None:
        return text + f", no quiet round of {n} (probe <= {probe['quiet_max']:g})"
    return (text + f", quiet rounds {span['quiet']['rounds']}/{n} (probe <= "
            f"{probe['quiet_max']:g}): {quiet[0] / quiet[1]:.2f}x")  # fmt: skip


def ratio_targets(
    ours: dict[int, dict], echo: dict[int, dict], span_c1: tuple | None = None
) -> list[dict]:
    """Throughput and p99 at the top concurrency against the echo chain, no
    collapse, and the device span at C=1 (``span_c1``: :func:`span_figures`; without it,
    the sweep's C=1 levels)."""
    targets = []
    common = sorted(set(ours) & set(echo))
    if common:
        c = common[-1]
        o, e = ours[c], echo[c]
        ratio = o["throughput_per_s"] / e["throughput_per_s"] if e["throughput_per_s"] else 0.0
        targets.append({"target": f"throughput at C={c} >= 0.5 x echo chain at C={c}",
                        "value": f"{o['throughput_per_s']:.0f} vs {e['throughput_per_s']:.0f} "
                                 f"img/s ({ratio:.2f}x)",
                        "met": ratio >= 0.5})  # fmt: skip
        p99_o, p99_e = o["latency_s"]["p99"], e["latency_s"]["p99"]
        if p99_o is not None and p99_e:
            targets.append({"target": f"p99 at C={c} <= 3 x echo chain p99 at C={c}",
                            "value": f"{_ms(p99_o)} vs {_ms(p99_e)} ms ({p99_o / p99_e:.2f}x)",
                            "met": p99_o <= 3 * p99_e})  # fmt: skip
    if ours:
        top = ours[max(ours)]
        best = max(r["throughput_per_s"] for r in ours.values())
        ratio = top["throughput_per_s"] / best if best else 0.0
        targets.append({"target": f"no collapse: throughput at C={top['concurrency']} >= 0.9 x "
                                  "the best level's",
                        "value": f"{top['throughput_per_s']:.0f} vs best {best:.0f} img/s "
                                 f"({ratio:.2f}x)",
                        "met": ratio >= 0.9})  # fmt: skip
    span, how, other = span_c1 or (_device_span_ratio(ours, echo), "sweep levels", "")
    if span is not None:
        total, bound, _ = span
        targets.append({"target": "device-span p50 at C=1 <= 1.5 x (echo p50 + encode p50 + "
                                  "decode p50)",
                        "value": f"{total * 1e3:.2f} vs {bound * 1e3:.2f} ms "
                                 f"({total / bound:.2f}x, {how}{other})",
                        "met": total <= 1.5 * bound})  # fmt: skip
    return targets


def _paired_span_lines(span: dict) -> list[str]:
    """The paired C=1 section of tables.md: all rounds, and the quiet rounds when any."""
    quiet = span.get("quiet") if span.get("quiet", {}).get("stages_s") else None
    probe = span.get("cache_probe")
    lines = [
        "### Device span at C=1, paired with the echo chain\n",
        f"Method: {span['method']}; {span['requests']} device requests "
        f"({span['errors']} errors), {span['echo_calls']} echo calls.\n",
    ]
    if probe and probe.get("p50") is not None:
        rounds = ", ".join(f"{v:.2f}" for v in probe["per_round"])
        corr = probe.get("span_correlation")
        corr = "" if corr is None else (
            f"; correlation of the probe with the round's device span p50: {corr:.2f}")  # fmt: skip
        lines.append(f"Cache probe after each round ({probe['what']}): {rounds}; quiet rounds "
                     f"(<= {probe['quiet_max']:g}): {quiet['rounds'] if quiet else 0} of "
                     f"{len(probe['per_round'])}{corr}.\n")  # fmt: skip

    def cells(block: dict, key: str | None) -> str:
        got = block["echo_s"] if key is None else (
            block["http_s"] if key == "http" else block["stages_s"][key])  # fmt: skip
        return f"{_ms(got['p50'])} | {_ms(got['p99'])}"

    head = "| figure | p50 ms | p99 ms |" + (" quiet p50 ms | quiet p99 ms |" if quiet else "")
    lines += [head, "|---|---|---|" + ("---|---|" if quiet else "")]
    rows = [("echo chain (2 hops)", None), *((k, k) for k in STAGE_KEYS),
            ("HTTP round trip", "http")]  # fmt: skip
    for label, key in rows:
        lines.append(f"| {label} | {cells(span, key)} |"
                     + (f" {cells(quiet, key)} |" if quiet else ""))  # fmt: skip
    return lines + [""]


def wire_comparison(results: dict, model: dict, baud: float) -> dict:
    """Payload bits and modelled air-time per image, ours vs edge-only (see the package doc)."""
    ours_rows = [r for r in results["sweep"] if r["kind"] == "ours" and "mean_bits" in r]
    edge_rows = [r for r in results["sweep"] if r["kind"] == "edge-only"]
    bits_per_symbol = int(model["bits"] or 32)
    pixels = int(np.prod(model["input_shape"]))
    ours_bits = float(np.mean([r["mean_bits"] for r in ours_rows])) if ours_rows else 0.0
    ours_symbols = float(np.mean([r["mean_symbols"] for r in ours_rows])) if ours_rows else 0.0
    edge_bits = pixels * 8.0
    edge_symbols = edge_bits / bits_per_symbol

    def weighted_accuracy(rows):
        n = sum(r["requests"] - r["errors"] for r in rows if r["accuracy"] is not None)
        if not n:
            return None
        return sum(r["accuracy"] * (r["requests"] - r["errors"]) for r in rows
                   if r["accuracy"] is not None) / n  # fmt: skip

    sizes = results.get("message_sizes", {})
    return {
        "convention": "payload bits: ours n_active x bits_per_symbol, edge-only pixels x 8; "
        f"air-time: symbols / {baud:g} Bd with bits_per_symbol={bits_per_symbol} for both",
        "bits_per_symbol": bits_per_symbol,
        "baud": baud,
        "ours_symbols": ours_symbols,
        "ours_payload_bytes": ours_bits / 8,
        "ours_airtime_s": ours_symbols / baud,
        "ours_grpc_request_bytes": sizes.get("request_bytes"),
        "edge_only_payload_bytes": edge_bits / 8,
        "edge_only_symbols": edge_symbols,
        "edge_only_airtime_s": edge_symbols / baud,
        "edge_only_grpc_request_bytes": pixels,
        "bits_ratio": edge_bits / ours_bits if ours_bits else None,
        "airtime_ratio": edge_symbols / ours_symbols if ours_symbols else None,
        **_ours_accuracy(results.get("span_c1"), weighted_accuracy(ours_rows)),
        "edge_only_accuracy": weighted_accuracy(edge_rows),
        "edge_only_replies": sum(r["requests"] - r["errors"] for r in edge_rows),
    }


def _ours_accuracy(span: dict | None, sweep_accuracy: float | None) -> dict:
    """Our live accuracy for the wire comparison: over the paired C=1 span's replies when the
    run made it (1,800 different images by default), else the sweep levels' (with hey, a
    probe of a few hundred replies)."""
    if span and span.get("accuracy") is not None:
        return {"ours_accuracy": span["accuracy"], "ours_accuracy_replies": span["accuracy_n"],
                "ours_accuracy_from": "paired C=1 span"}  # fmt: skip
    return {"ours_accuracy": sweep_accuracy, "ours_accuracy_replies": None,
            "ours_accuracy_from": "sweep levels"}  # fmt: skip


def _generators_line(rows: list[dict]) -> str:
    by_kind: dict[str, set[str]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], set()).add(r.get("generator") or "-")
    return "Load generators: " + "; ".join(
        f"{kind}: {', '.join(sorted(gens))}" for kind, gens in by_kind.items()
    )


def render_tables(results: dict) -> str:
    sweep = results["sweep"]
    stage_gen = {r.get("stages_generator", r.get("generator")) for r in sweep if "stages_s" in r}
    parts = ["### Sweep (closed loop; latency = the client's round trip)\n",
             _generators_line(sweep) + ".\n", sweep_table(sweep), "",
             "### Per-stage latency of our chain, p50 / p99 ms (from the replies)\n",
             f"Replies from: {', '.join(sorted(g for g in stage_gen if g)) or '-'}.\n",
             stage_table(sweep), ""]  # fmt: skip
    ours = _by_concurrency(sweep, "ours")
    echo, edge = _by_concurrency(sweep, "echo"), _by_concurrency(sweep, "edge-only")
    ratio_lines = ["### Ours as ratios to the references (same concurrency)\n",
                   "| C | throughput / echo | p50 / echo | throughput / edge-only | "
                   "p50 / edge-only |", "|---|---|---|---|---|"]  # fmt: skip
    for c, o in sorted(ours.items()):

        def ratio(ref, key, c=c, o=o):
            if c not in ref:
                return "-"
            a = o[key] if key == "throughput_per_s" else o["latency_s"]["p50"]
            b = ref[c][key] if key == "throughput_per_s" else ref[c]["latency_s"]["p50"]
            return f"{a / b:.2f}" if a and b else "-"

        ratio_lines.append(f"| {c} | {ratio(echo, 'throughput_per_s')} | "
                           f"{ratio(echo, 'p50')} | {ratio(edge, 'throughput_per_s')} | "
                           f"{ratio(edge, 'p50')} |")  # fmt: skip
    parts += ratio_lines + [""]
    span = results.get("span_c1")
    if span and "stages_s" in span:
        parts += _paired_span_lines(span)
    w = results.get("wire")
    if w:
        parts += [
            "### Bytes and air-time per image\n",
            f"Convention: {w['convention']}.\n",
            "| | payload bytes | symbols | air-time ms | gRPC request bytes | accuracy |",
            "|---|---|---|---|---|---|",
            f"| ours | {w['ours_payload_bytes']:.1f} | {w['ours_symbols']:.1f} | "
            f"{w['ours_airtime_s'] * 1e3:.2f} | {w['ours_grpc_request_bytes']} | "
            f"{_acc(w['ours_accuracy'])} |",
            f"| edge-only | {w['edge_only_payload_bytes']:.0f} | {w['edge_only_symbols']:.0f} | "
            f"{w['edge_only_airtime_s'] * 1e3:.2f} | {w['edge_only_grpc_request_bytes']} | "
            f"{_acc(w['edge_only_accuracy'])} |",
            f"| edge-only / ours | {_x(w['bits_ratio'])} | {_x(w['airtime_ratio'])} | "
            f"{_x(w['airtime_ratio'])} | | |",
            "",
        ]
    e = results.get("encoder")
    if e:
        speed = e["torch_p50_s"] / e["ort_p50_s"] if e["torch_p50_s"] else None
        parts += [
            "### Device encoder at batch 1, 1 thread\n",
            "| runtime | p50 µs | p99 µs |", "|---|---|---|",
            f"| ONNX Runtime | {e['ort_p50_s'] * 1e6:.1f} | {e['ort_p99_s'] * 1e6:.1f} |",
            f"| PyTorch eager | {_us(e['torch_p50_s'])} | {_us(e['torch_p99_s'])} |",
            f"\nspeed-up (p50): {_x(speed)}\n",
        ]  # fmt: skip
    nob = [r for r in sweep if r["kind"] == "ours-nobatch"]
    pair = (ours.get(nob[0]["concurrency"]), nob[0]) if nob else (None, None)
    if pair[0] is not None and all("stages_s" in r for r in pair):
        a, b = pair
        parts += (
            [
                f"### Edge batching at C={b['concurrency']}\n",
                f"Load generator: {b.get('generator') or '-'}.\n",
                "| edge | req/s | p50 ms | p99 ms | edge_queue p50 ms | decode p50 ms |",
                "|---|---|---|---|---|---|",
            ]
            + [
                f"| {name} | {r['throughput_per_s']:.0f} | {_ms(r['latency_s']['p50'])} | "
                f"{_ms(r['latency_s']['p99'])} | {_ms(r['stages_s']['edge_queue']['p50'])} | "
                f"{_ms(r['stages_s']['decode']['p50'])} |"
                for name, r in (("batching on (default)", a), ("--max-batch-size 1", b))
            ]
            + [""]
        )
    parts += ["### Targets (reported, not asserted)\n", "| target | measured | |", "|---|---|---|"]
    for t in results.get("targets", []):
        parts.append(f"| {t['target']} | {t['value']} | {'met' if t['met'] else 'missed'} |")
    return "\n".join(parts) + "\n"
