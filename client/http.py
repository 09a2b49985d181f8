"""The device's HTTP API from the caller's side (no PyTorch): samples, one request, a run
over many, the per-stage latency table, the PSNR sweep. ``python -m client`` (client/cli.py)
is its command line; the tools, the demo and the tests use it as a library.

Images are sent as multipart uploads (field ``file``); Fashion-MNIST test images are encoded
as PNG first, so they take the same path as any image.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from shared.idx import load_test_set

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"}
# stage key in the reply's latency_s -> column name; "http" is the client's round trip
STAGES = (
    ("preprocess", "preprocess"),
    ("encode", "encode"),
    ("device_to_channel", "dev->chan"),
    ("channel", "channel"),
    ("airtime", "airtime"),
    ("channel_to_edge", "chan->edge"),
    ("edge_queue", "edge queue"),
    ("decode", "decode"),
    ("total", "device total"),
    ("http", "http round trip"),
)


@dataclass
class Sample:
    """One image to send: its name, the file bytes and the true label (None if unknown)."""

    name: str
    data: bytes
    label: int | None = None


@dataclass
class Outcome:
    sample: Sample
    status: int
    reply: dict[str, Any]
    http_s: float  # client-side round trip, seconds

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def correct(self) -> bool | None:
        if not self.ok or self.sample.label is None or "label" not in self.reply:
            return None
        return self.reply["label"] == self.sample.label


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 [H, W] (grey) or [H, W, 3] (RGB) to PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def fashion_samples(n: int, data_dir: str | Path | None = None) -> list[Sample]:
    """The first n Fashion-MNIST test images as PNG samples with their labels."""
    images, labels = load_test_set(data_dir, n)
    return [
        Sample(f"test[{i}]", png_bytes(image), int(label))
        for i, (image, label) in enumerate(zip(images, labels, strict=True))
    ]


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def file_samples(paths: Iterable[str | Path], class_names: Sequence[str] = ()) -> list[Sample]:
    """Image files and folders (recursively); a file's label is its folder name if that names
    a class (case and punctuation ignored, e.g. ``tshirttop/`` for "T-shirt/top")."""
    by_name = {_norm(name): i for i, name in enumerate(class_names)}
    samples = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files = [path]
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
        for file in files:
            samples.append(
                Sample(str(file), file.read_bytes(), by_name.get(_norm(file.parent.name)))
            )
    return samples


class DeviceHttp:
    """Small synchronous client of the device API at ``url``; timeouts in seconds."""

    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DeviceHttp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.method} {response.request.url}: "
                               f"{response.status_code} {response.text}")  # fmt: skip
        return response.json()

    def model(self) -> dict[str, Any]:
        return self._json(self.http.get("/v1/model"))

    def knobs(self) -> dict[str, Any]:
        return self._json(self.http.get("/v1/knobs"))

    def set_knobs(self, **changes: Any) -> dict[str, Any]:
        return self._json(self.http.put("/v1/knobs", json=changes))

    def channel(self) -> dict[str, Any]:
        return self._json(self.http.get("/v1/channel"))

    def set_psnr(self, psnr_db: float) -> dict[str, Any]:
        return self._json(self.http.put("/v1/channel/psnr", json={"psnr_db": psnr_db}))

    def infer(self, sample: Sample, request_id: str | None = None) -> Outcome:
        """POST the image; ``request_id`` (X-Request-Id) names the group of a multi-link model."""
        start = time.perf_counter()
        headers = {"X-Request-Id": request_id} if request_id else None
        response = self.http.post(
            "/v1/infer", files={"file": (sample.name, sample.data)}, headers=headers
        )
        http_s = time.perf_counter() - start
        try:
            reply = response.json()
        except ValueError:
            reply = {"detail": response.text}
        return Outcome(sample, response.status_code, reply, http_s)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Poll GET /readyz until 200 or ``timeout_s`` passes (RuntimeError)."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = self.http.get("/readyz", timeout=2.0)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise RuntimeError(f"device at {self.url} not ready after {timeout_s:g} s: {last}")


def run(client: DeviceHttp, samples: Sequence[Sample]) -> list[Outcome]:
    """Send the samples one by one."""
    return [client.infer(sample) for sample in samples]


def stage_latencies(outcomes: Sequence[Outcome]) -> dict[str, np.ndarray]:
    """Per-stage latencies of the successful outcomes, seconds."""
    ok = [o for o in outcomes if o.ok]
    table = {key: np.array([o.reply["latency_s"].get(key, np.nan) for o in ok]) for key, _ in STAGES
             if key != "http"}  # fmt: skip
    table["http"] = np.array([o.http_s for o in ok])
    return table


def latency_table(outcomes: Sequence[Outcome]) -> str:
    """p50/p95 per stage in milliseconds."""
    stages = stage_latencies(outcomes)
    lines = [f"{'stage':<16} {'p50 ms':>9} {'p95 ms':>9}"]
    for key, title in STAGES:
        values = stages[key][np.isfinite(stages[key])]
        if values.size:
            p50, p95 = np.percentile(values * 1e3, [50, 95])
            lines.append(f"{title:<16} {p50:9.3f} {p95:9.3f}")
    return "\n".join(lines)


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts, accuracy (labelled samples only), mean symbols/bits, total latency p50/p95."""
    ok = [o for o in outcomes if o.ok]
    judged = [o.correct for o in ok if o.correct is not None]
    http = np.array([o.http_s for o in ok]) * 1e3
    images = [o.reply["reconstruction"] for o in ok if "reconstruction" in o.reply]
    return {
        "n": len(outcomes),
        "ok": len(ok),
        "failed": len(outcomes) - len(ok),
        "accuracy": float(np.mean(judged)) if judged else None,
        "mean_symbols": float(np.mean([o.reply["symbols_sent"] for o in ok])) if ok else None,
        "mean_bits": float(np.mean([o.reply["bits_sent"] for o in ok])) if ok else None,
        "snr_db": sorted({round(o.reply["snr_db"], 3) for o in ok}),
        "p50_ms": float(np.percentile(http, 50)) if ok else None,
        "p95_ms": float(np.percentile(http, 95)) if ok else None,
        # reconstruction models: mean PSNR (dB) / SSIM of the received images
        "mean_psnr_db": float(np.mean([r["psnr_db"] for r in images])) if images else None,
        "mean_ssim": float(np.mean([r["ssim"] for r in images])) if images else None,
    }


def sweep(client: DeviceHttp, samples: Sequence[Sample], psnrs_db: Sequence[float]):
    """Send all samples at each channel PSNR (dB); restore the PSNR afterwards.

    Returns ``[(psnr_db, summary, outcomes), ...]``.
    """
    original = client.channel()["psnr_db"]
    rows = []
    try:
        for psnr_db in psnrs_db:
            client.set_psnr(psnr_db)
            outcomes = run(client, samples)
            rows.append((psnr_db, summarise(outcomes), outcomes))
    finally:
        client.set_psnr(original)
    return rows


def fmt(value: Any, spec: str) -> str:
    """``value`` formatted by ``spec``, or "-" for None (a column with no figure)."""
    return "-" if value is None else format(value, spec)


def sweep_table(rows) -> str:
    """One line per PSNR: accuracy (or, for a reconstruction model, the received images'
    mean PSNR in dB and SSIM), mean symbols, mean bits, SNR used, latency p50/p95 (ms)."""
    images = any(s.get("mean_psnr_db") is not None for _, s, _ in rows)
    quality = f"{'img PSNR':>8} {'SSIM':>6}" if images else f"{'accuracy':>8}"
    lines = [
        f"{'PSNR dB':>8} {'n':>5} {'fail':>4} {quality} {'symbols':>8} {'bits':>8} "
        f"{'enc SNR dB':>10} {'p50 ms':>8} {'p95 ms':>8}"
    ]
    for psnr_db, s, _ in rows:
        snr = ",".join(f"{v:g}" for v in s["snr_db"]) or "-"
        if images:
            quality = f"{fmt(s['mean_psnr_db'], '8.2f')} {fmt(s['mean_ssim'], '6.3f')}"
        else:
            quality = fmt(s["accuracy"], "8.3f")
        lines.append(
            f"{psnr_db:8g} {s['n']:5d} {s['failed']:4d} {quality} "
            f"{fmt(s['mean_symbols'], '8.2f')} {fmt(s['mean_bits'], '8.1f')} {snr:>10} "
            f"{fmt(s['p50_ms'], '8.2f')} {fmt(s['p95_ms'], '8.2f')}"
        )
    return "\n".join(lines)


def print_predictions(outcomes: Sequence[Outcome], class_names: Sequence[str]) -> None:
    for o in outcomes:
        if not o.ok:
            print(f"{o.sample.name}: HTTP {o.status}: {o.reply.get('detail')}")
            continue
        r = o.reply
        if "reconstruction" in r:
            rec = r["reconstruction"]
            print(
                f"{o.sample.name}: received {rec['shape']} PSNR {rec['psnr_db']:.2f} dB "
                f"SSIM {rec['ssim']:.3f}  symbols={r['symbols_sent']} snr={r['snr_db']:g} dB"
            )
            continue
        truth = "" if o.sample.label is None else f" (true: {class_names[o.sample.label]})"
        p = max(r.get("probabilities") or [float("nan")])
        total_ms = r["latency_s"]["total"] * 1e3
        print(
            f"{o.sample.name}: {r.get('class_name')} p={p:.3f}{truth}  symbols={r['symbols_sent']}"
            f" bits={r['bits_sent']} snr={r['snr_db']:g} dB  total={total_ms:.2f} ms"
        )
