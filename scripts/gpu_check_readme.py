"""``reports/gpu/README.md`` from ``results.json`` of ``scripts/gpu_check.py``: one
section per step that left results (no hand-typed numbers)."""

from __future__ import annotations

from scripts.gpu_check_workers import BATCHES

HEADLINE = "beta=0.0001,snr_db=20"


def _fmt(value, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def readme(res: dict) -> str:
    """The README of one run's results."""
    steps = res.get("steps", {})
    lines = _head(res) + _status(steps)
    for section in (_decode, _edge, _training, _nccl):
        lines += section(steps)
    return "\n".join(lines) + "\n"


def _head(res: dict) -> list[str]:
    env = res.get("env", {})
    return [
        "# GPU check",
        "",
        "Written by `python scripts/gpu_check.py` from [`results.json`](results.json) "
        "(regenerate with `--readme-only`); logs of the run are not kept here.",
        "",
        f"Run {res.get('started', '?')}: {env.get('gpu', 'no GPU')}"
        f" ({env.get('gpu_memory_gib', '?')} GiB), {env.get('cpu_count')} CPU cores; "
        f"Python {env.get('python')}, torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), "
        f"grpcio {env.get('grpc')}, protobuf {env.get('google.protobuf')}, "
        f"onnxruntime {env.get('onnxruntime')}.",
    ]


def _status(steps: dict) -> list[str]:
    lines = [
        "",
        "## Status of each step",
        "",
        "| step | status | wall s | note |",
        "| --- | --- | --- | --- |",
    ]
    for name, rec in steps.items():
        note = rec.get("summary") or ""
        if name == "tests":
            note += "; test_cuda.py: " + (
                "skipped (no CUDA)"
                if rec.get("cuda_test_skipped")
                else f"{rec.get('cuda_tests_passed')} passed on cuda"
            )
        lines.append(f"| {name} | {rec.get('status')} | {_fmt(rec.get('wall_s'))} | {note} |")
    return lines


def _results(steps: dict, prefix: str) -> dict:
    """The results of the steps named ``prefix*`` that have one."""
    return {n: s["result"] for n, s in steps.items() if n.startswith(prefix) and "result" in s}


def _decode(steps: dict) -> list[str]:
    decode = _results(steps, "decode_")
    if not decode:
        return []
    cols = list(decode)
    heads = [f"{v['device']}, {v['torch_threads']} thr." for v in decode.values()]
    lines = [
        "",
        "## Decode throughput: DecoderRuntime in process (images/s; p50 ms per call)",
        "",
        "The 4-bit quick model (`--quick --bits 4 --seed 0`), random received symbols; one "
        "call = numpy in, torch on the device, softmax, numpy out.",
        "",
        "| batch | " + " | ".join(heads) + " |",
        "| --- |" + " --- |" * len(cols),
    ]
    for i, n in enumerate(BATCHES):
        cells = []
        for c in cols:
            row = decode[c]["rows"][i]
            cells.append(f"{row['images_per_s']:,.0f} ({row['ms_p50']:.3f} ms)")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def _edge(steps: dict) -> list[str]:
    edge = _results(steps, "edge_")
    if not edge:
        return []
    lines = [
        "",
        "## Edge service in process (EdgeDecoder: validation, batching, replies; no gRPC)",
        "",
        "| device | requests | in flight | max batch | requests/s | p50 decode_s ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in edge.values():
        lines.append(
            f"| {v['device']} | {v['requests']} | {v['in_flight']} | {v['max_batch_size']} "
            f"| {v['requests_per_s']:,.0f} | {v['decode_s_p50_ms']:.3f} |"
        )
    return lines


def _training(steps: dict) -> list[str]:
    trains = {n: s for n, s in steps.items() if n.startswith(("train_", "torchrun_"))}
    if not trains:
        return []
    lines = [
        "",
        f"## Training (`python -m trainer train --bits 4 --seed 0`; accuracy: {HEADLINE})",
        "",
        "| run | status | epochs | s per epoch | training wall s | test accuracy | "
        "final train accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in trains.items():
        lines.append(
            f"| {name} | {s.get('status')} | {s.get('epochs', '—')} "
            f"| {_fmt(s.get('epoch_wall_s'), '.2f')} | {_fmt(s.get('train_wall_s'))} "
            f"| {_fmt(s.get('test_accuracy'), '.4f')} "
            f"| {_fmt(s.get('final_train_accuracy'), '.4f')} |"
        )
    return lines


def _nccl(steps: dict) -> list[str]:
    probe = steps.get("nccl_probe")
    if not probe:
        return []
    result = probe.get("result")
    return ["", "## nccl", "", f"Probe: {probe.get('status')}" + (
        f"; backend {result['backend']}, world size {result['world_size']}, NCCL "
        f"{result['nccl_version']}, all-reduce {result['all_reduce']}, "
        f"{result['ddp_steps']} DDP steps" if result else "") + "."]  # fmt: skip
