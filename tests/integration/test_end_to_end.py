"""End to end: edge server, channel proxy and device as real processes on loopback ports.

One stack per module (the edge is stopped and restarted by the last test). The offline
accuracy reference runs the same deployed path in-process: encoder.onnx in ONNX Runtime,
AWGN with NumPy (shared.channel.awgn) on the transmitted prefix, and the edge's decoder
runtime (edge_server.decoder), averaged over several noise draws.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from client.http import png_bytes
from device.encoder import OnnxEncoder
from shared.channel import awgn
from shared.idx import load_test_set
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.live import LiveStackSpec, infer_ok, model_input, needs_test_set, png

pytestmark = needs_test_set

PSNR_DB = 20.0
DEADLINE_S = 1.5  # device's gRPC deadline in this stack
N_ACCURACY = 1000
LIVE_STACK = LiveStackSpec("quick_model_dir", PSNR_DB, device_flags=("--deadline-s", DEADLINE_S))


@pytest.fixture(scope="module")
def default_beta(live_http) -> float:
    return live_http.get("/v1/knobs").json()["beta"]


@pytest.fixture(autouse=True)
def reset_knobs_and_channel(live_http, default_beta):
    """Every test starts (and leaves the stack) at feedback mode, default beta, 20 dB."""
    yield
    live_http.put("/v1/knobs", json={"beta": default_beta, "snr_mode": "feedback", "snr_db": None})
    live_http.put("/v1/channel/psnr", json={"psnr_db": PSNR_DB})


@pytest.fixture(scope="module")
def test_set():
    images, labels = load_test_set(None, N_ACCURACY)
    return images, labels


def offline_accuracy(model_dir, images, labels, beta, snr_db, seeds=(0, 1, 2, 3, 4)) -> float:
    """Same path as deployed, in-process: ONNX encoder -> NumPy AWGN -> decoder runtime."""
    from edge_server.decoder import DecoderRuntime  # torch: test process only, never the device

    encoder = OnnxEncoder(model_dir)
    manifest = encoder.manifest
    encoded = encoder.encode(model_input(manifest, images), beta, snr_db)
    active = np.arange(manifest.d)[None] < encoded.n_active[:, None]
    decoder = DecoderRuntime(model_dir, device="cpu")
    n = len(images)
    accuracies = []
    for seed in seeds:
        received = awgn(encoded.symbols, snr_db, np.random.default_rng(seed)) * active
        probabilities = decoder(
            received.astype(np.float32),
            np.full(n, beta, np.float32),
            np.full(n, snr_db, np.float32),
        )
        accuracies.append(float(np.mean(np.argmax(probabilities, axis=1) == labels)))
    return float(np.mean(accuracies))


# --- accuracy -----------------------------------------------------------------------------
def test_accuracy_at_20_db_matches_the_offline_figure(
    live_stack, live_http, test_set, default_beta
):
    images, labels = test_set
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda image: infer_ok(live_http, image), images))
    assert {r["snr_db"] for r in replies} == {PSNR_DB}
    assert {r["beta"] for r in replies} == {default_beta}
    online = float(np.mean([r["label"] for r in replies] == labels))
    offline = offline_accuracy(live_stack.model_dir, images, labels, default_beta, PSNR_DB)
    print(f"accuracy at {PSNR_DB} dB, beta={default_beta}: online {online:.4f}, "
          f"offline {offline:.4f} (n={len(labels)})")  # fmt: skip
    assert abs(online - offline) <= 0.01


def test_reply_carries_rate_knobs_and_latency(live_http, test_set):
    reply = infer_ok(live_http, test_set[0][0])
    assert reply["class_name"] in live_http.get("/v1/model").json()["class_names"]
    assert len(reply["probabilities"]) == 10
    assert abs(sum(reply["probabilities"]) - 1) < 1e-4
    assert reply["bits_sent"] == reply["symbols_sent"] * reply["bits_per_symbol"]
    assert reply["snr_mode"] == "feedback" and reply["channel_psnr_db"] == PSNR_DB
    assert reply["snr_out_of_range"] is False
    latency = reply["latency_s"]
    stages = ("preprocess", "encode", "device_to_channel", "channel", "airtime",
              "channel_to_edge", "edge_queue", "decode", "total")  # fmt: skip
    assert all(latency[s] >= 0 for s in stages)
    assert latency["airtime"] == pytest.approx(reply["symbols_sent"] / 9600, rel=1e-3)
    measured = sum(latency[s] for s in stages if s not in ("airtime", "total"))
    assert measured <= latency["total"] + 1e-3


# --- SNR feedback and manual SNR ---------------------------------------------------------
def test_feedback_snr_follows_the_channel(live_stack, live_http, test_set):
    image = test_set[0][0]
    with grpc.insecure_channel(live_stack.channel_target) as channel:
        pb_grpc.ChannelStub(channel).SetPsnr(pb.SetPsnrRequest(psnr_db=12.0), timeout=2.0)
    first = infer_ok(live_http, image)  # encoded with the last feedback, carries the new CSI
    assert first["channel_psnr_db"] == 12.0
    second = infer_ok(live_http, image)
    assert second["snr_db"] == 12.0 and second["feedback_psnr_db"] == 12.0
    # through the device's own endpoint the very next request follows
    assert live_http.put("/v1/channel/psnr", json={"psnr_db": 7.5}).json()["psnr_db"] == 7.5
    assert infer_ok(live_http, image)["snr_db"] == 7.5


@pytest.mark.parametrize("psnr_db, bound", [(32.0, 25.0), (-6.0, 0.0)])
def test_channel_psnr_outside_the_trained_range_is_reported(live_http, test_set, psnr_db, bound):
    live_http.put("/v1/channel/psnr", json={"psnr_db": psnr_db}).raise_for_status()
    reply = infer_ok(live_http, test_set[0][0])
    assert reply["snr_out_of_range"] is True
    assert reply["snr_db"] == bound and reply["channel_psnr_db"] == psnr_db
    assert "nearest trained bound" in reply["snr_note"]


def test_manual_snr_is_used_whatever_the_channel(live_http, test_set):
    knobs = live_http.put("/v1/knobs", json={"snr_mode": "manual", "snr_db": 3.0})
    assert knobs.status_code == 200 and knobs.json()["snr_mode"] == "manual"
    reply = infer_ok(live_http, test_set[0][0])
    assert reply["snr_db"] == 3.0 and reply["snr_mode"] == "manual"
    assert reply["channel_psnr_db"] == PSNR_DB


def test_beta_change_is_applied(live_http, test_set):
    assert live_http.put("/v1/knobs", json={"beta": 0.1}).status_code == 200
    assert infer_ok(live_http, test_set[0][0])["beta"] == 0.1


# --- bad input: a clear 4xx, and the stack keeps serving -----------------------------------
def _chunks(total: int, size: int = 1 << 20):
    for _ in range(total // size):
        yield b"\0" * size


BAD_REQUESTS = {
    "not_an_image": (
        lambda h: h.post("/v1/infer", files={"file": ("a.png", b"hello", "image/png")}),
        400, "not a decodable image"),
    "empty_file": (
        lambda h: h.post("/v1/infer", files={"file": ("a.png", b"", "image/png")}), 400, "empty"),
    "empty_json_body": (
        lambda h: h.post("/v1/infer", headers={"content-type": "application/json"}),
        400, "empty"),
    "invalid_json": (
        lambda h: h.post("/v1/infer", content=b"{", headers={"content-type": "application/json"}),
        400, "invalid JSON"),
    "multipart_without_file": (
        lambda h: h.post("/v1/infer", data={"other": "x"}, files={"x": ("a", b"1")}),
        422, "file field"),
    "pixels_wrong_shape": (
        lambda h: h.post("/v1/infer", json={"pixels": [[0, 1], [2, 3]]}), 422, "shape"),
    "unsupported_type": (
        lambda h: h.post("/v1/infer", content=b"x", headers={"content-type": "text/plain"}),
        415, "Content-Type"),
    "upload_50_mb": (
        lambda h: h.post("/v1/infer", files={"file": ("big.png", b"\0" * (50 << 20))}),
        413, "limit"),
    "upload_50_mb_chunked": (
        lambda h: h.post("/v1/infer", content=_chunks(50 << 20),
                         headers={"content-type": "image/png"}),
        413, "limit"),
    "beta_zero": (lambda h: h.put("/v1/knobs", json={"beta": 0}), 422, "beta"),
    "beta_negative": (lambda h: h.put("/v1/knobs", json={"beta": -0.1}), 422, "beta"),
    "beta_above_range": (lambda h: h.put("/v1/knobs", json={"beta": 5.0}), 422, "beta"),
    "beta_not_a_number": (lambda h: h.put("/v1/knobs", json={"beta": "big"}), 422, "beta"),
    "snr_above_range": (
        lambda h: h.put("/v1/knobs", json={"snr_mode": "manual", "snr_db": 40}), 422, "snr_db"),
    "snr_below_range": (
        lambda h: h.put("/v1/knobs", json={"snr_mode": "manual", "snr_db": -3}), 422, "snr_db"),
    "snr_mode_unknown": (lambda h: h.put("/v1/knobs", json={"snr_mode": "auto"}), 422, "snr_mode"),
    "variable_length_on_fixed_model": (
        lambda h: h.put("/v1/knobs", json={"variable_length": True}), 422, "fixed-length"),
    "unknown_knob": (lambda h: h.put("/v1/knobs", json={"gamma": 1}), 422, "gamma"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_clear_4xx_and_the_stack_keeps_serving(
    live_stack, live_http, test_set, case
):
    send, status, message = BAD_REQUESTS[case]
    knobs_before = live_http.get("/v1/knobs").json()
    response = send(live_http)
    assert response.status_code == status, response.text
    assert message in response.text
    assert "Traceback" not in response.text
    assert live_http.get("/v1/knobs").json() == knobs_before  # a refused change changes nothing
    infer_ok(live_http, test_set[0][0])
    assert live_stack.alive()


# --- operations -----------------------------------------------------------------------------
def test_health_readiness_docs_and_metrics(live_http, test_set):
    infer_ok(live_http, test_set[0][0])
    assert live_http.get("/healthz").status_code == 200
    assert live_http.get("/readyz").json()["status"] == "ready"
    assert live_http.get("/docs").status_code == 200
    assert "/v1/infer" in live_http.get("/openapi.json").json()["paths"]
    metrics = live_http.get("/metrics").text
    for name in ('coinference_requests_total{code="200",method="/v1/infer",service="device"}',
                 "coinference_device_failures_total",
                 'coinference_stage_seconds_bucket{le="0.005",service="device",stage="encode"}',
                 "coinference_device_symbols_sent_total", "coinference_device_beta",
                 "coinference_device_snr_db"):  # fmt: skip
        assert name in metrics, name


def test_stopped_edge_gives_503_within_the_deadline_then_recovers(live_stack, live_http, test_set):
    image = test_set[0][0]
    live_stack.stop("edge")
    for _ in range(3):
        start = time.perf_counter()
        response = live_http.post("/v1/infer", files=png(image))
        elapsed = time.perf_counter() - start
        assert response.status_code == 503, response.text
        assert "unavailable" in response.json()["detail"] or "deadline" in response.json()["detail"]
        assert elapsed < DEADLINE_S + 1.0
    live_stack.start_edge()  # same port
    deadline = time.monotonic() + 30
    while True:
        response = live_http.post("/v1/infer", files=png(image))
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 200, response.text
    assert all(live_http.post("/v1/infer", files=png(image)).status_code == 200 for _ in range(3))


def test_concurrent_requests_are_coalesced_and_each_gets_its_own_answer(
    live_stack, live_http, test_set, default_beta
):
    """32 clients at once: the device sends what arrives while calls are out in one
    TransmitBatch (its transmit_batch_size histogram shows batches above 1), every reply
    carries the caller's own X-Request-Id, and accuracy stays at the offline figure."""
    images, labels = test_set
    images, labels = images[:500], labels[:500]

    def one(index: int) -> dict:
        response = live_http.post("/v1/infer", content=png_bytes(images[index]),
                                  headers={"Content-Type": "image/png",
                                           "X-Request-Id": f"coalesce-{index}"})  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    before = batch_size_buckets(live_http)
    with ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(one, range(len(images))))
    after = batch_size_buckets(live_http)
    assert [r["request_id"] for r in replies] == [f"coalesce-{i}" for i in range(len(images))]
    online = float(np.mean([r["label"] for r in replies] == labels))
    offline = offline_accuracy(live_stack.model_dir, images, labels, default_beta, PSNR_DB)
    assert abs(online - offline) <= 0.02, (online, offline)
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    calls = counts["+Inf"]
    assert 0 < calls < len(images), counts  # fewer calls than requests: some were batched
    assert counts["1.0"] < calls, counts  # at least one call carried several transmissions


def batch_size_buckets(http) -> dict[str, float]:
    """The device's cumulative transmit_batch_size histogram buckets, by upper bound."""
    counts = {}
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("coinference_device_transmit_batch_size_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            counts[bound] = float(line.rsplit(" ", 1)[1])
    return counts
