"""Bad-input matrix: one real stack (edge + channel + device, admin token on, small limits)
for the module, and a table of hostile or malformed requests over HTTP (device) and gRPC
(channel ``Transmit`` / ``SetPsnr`` / ``SetProfile``, edge ``Decode``).

Every case checks four things: the status (HTTP code or gRPC status); a message that says
what to fix (a keyword); the service still serving afterwards (a good request answered);
and the answer counted in that service's ``/metrics`` under
``coinference_requests_total{service,method,code}``. A few valid-but-unusual inputs (1×1,
CMYK, animated GIF, multi-page TIFF, EXIF-rotated) are in the table with 200.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.security import auth_metadata
from tests.procs import running_stack

TOKEN = "matrix-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_UPLOAD_BYTES = 200_000
MAX_MESSAGE_BYTES = 65_536
BODY_TIMEOUT_S = 2.0
OK = grpc.StatusCode.OK


@pytest.fixture(scope="module")
def live(quick_model_dir, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN)
    with running_stack(
        quick_model_dir,
        psnr_db=20.0,
        metrics_ports=True,
        edge_flags=["--max-message-bytes", MAX_MESSAGE_BYTES],
        channel_flags=[
            "--max-message-bytes",
            MAX_MESSAGE_BYTES,
            "--admin-token-file",
            token_file,
        ],  # fmt: skip
        device_flags=[
            "--admin-token-file",
            token_file,
            "--max-upload-bytes",
            MAX_UPLOAD_BYTES,
            "--http-body-timeout-s",
            BODY_TIMEOUT_S,
        ],  # fmt: skip
    ) as stack:
        with (
            httpx.Client(base_url=stack.url, timeout=10) as http,
            grpc.insecure_channel(stack.channel_target) as channel,
            grpc.insecure_channel(stack.edge_target) as edge,
        ):
            model = http.get("/v1/model").json()
            yield Live(stack, http, pb_grpc.ChannelStub(channel), pb_grpc.EdgeStub(edge), model)


@dataclass
class Live:
    stack: object
    http: httpx.Client
    channel: pb_grpc.ChannelStub
    edge: pb_grpc.EdgeStub
    model: dict

    def good_transmission(self, **fields) -> pb.Transmission:
        m = self.model
        values = dict(
            request_id="matrix",
            model_id=m["model_id"],
            beta=float(np.sqrt(np.prod(m["beta_range"]))),
            snr_db=float(np.mean(m["snr_db_range"])),
            bits_per_symbol=m["bits"] or 0,
            d=m["d"],
            symbols=[0.25] * m["d"],
        )
        values.update(fields)
        return pb.Transmission(**values)

    def metrics_text(self, service: str) -> str:
        if service == "device":
            return self.http.get("/metrics").text
        port = self.stack.metrics_ports[service]
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


# ---- payloads -------------------------------------------------------------------------------
def image_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(size=(28, 28), mode="L") -> bytes:
    return image_bytes(Image.new(mode, size, 128), "PNG")


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG whose header declares width × height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * 1024, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))  # fmt: skip


def animated_gif() -> bytes:
    frames = [Image.new("P", (28, 28), i * 60) for i in range(3)]
    return image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


def multipage_tiff() -> bytes:
    pages = [Image.new("RGB", (28, 28), (i * 80, 0, 0)) for i in range(3)]
    return image_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    return image_bytes(Image.new("RGB", (40, 20), (200, 10, 10)), "JPEG", exif=exif)


SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
       b'<rect width="28" height="28" fill="#888"/></svg>')  # fmt: skip


def pixels(value=128.0, shape=(28, 28)) -> list:
    return np.full(shape, value).tolist()


# ---- one case -------------------------------------------------------------------------------
Outcome = tuple[object, str]  # (HTTP status or gRPC code, message)


@dataclass(frozen=True)
class Case:
    name: str
    service: str  # "device" | "channel" | "edge": where it is counted and re-checked
    method: str  # the metric's method label (device: the path; gRPC: the method name)
    run: Callable[[Live], Outcome]
    expect: object  # HTTP status (int) or grpc.StatusCode
    keyword: str  # the message names what to fix


def http(method: str, path: str, *, auth: bool = False, **kwargs) -> Callable[[Live], Outcome]:
    def run(live: Live) -> Outcome:
        headers = {**kwargs.pop("headers", {}), **(AUTH if auth else {})}
        reply = live.http.request(method, path, headers=headers, **kwargs)
        try:
            body = reply.json()
            message = body.get("detail", json.dumps(body)) if isinstance(body, dict) else ""
        except ValueError:
            message = reply.text
        return reply.status_code, str(message)

    return run


def infer_raw(data: bytes, content_type: str) -> Callable[[Live], Outcome]:
    return http("POST", "/v1/infer", content=data, headers={"Content-Type": content_type})


def infer_file(data: bytes, name: str = "image", field: str = "file") -> Callable:
    def run(live: Live) -> Outcome:
        return http("POST", "/v1/infer", files={field: (name, data)})(live)

    return run


def infer_json_text(text: str) -> Callable[[Live], Outcome]:
    return infer_raw(text.encode(), "application/json")


def knobs(body: object, auth: bool = True, raw: str | None = None) -> Callable:
    content = raw.encode() if raw is not None else json.dumps(body).encode()
    return http("PUT", "/v1/knobs", auth=auth, content=content,
                headers={"Content-Type": "application/json"})  # fmt: skip


def channel_psnr(raw: str, auth: bool = True) -> Callable:
    return http("PUT", "/v1/channel/psnr", auth=auth, content=raw.encode(),
                headers={"Content-Type": "application/json"})  # fmt: skip


def chunked_over_limit(live: Live) -> Outcome:
    def body():
        for _ in range(MAX_UPLOAD_BYTES // 10_000 + 5):
            yield b"\x00" * 10_000

    return http("POST", "/v1/infer", content=body(),
                headers={"Content-Type": "application/octet-stream"})(live)  # fmt: skip


def slow_upload(live: Live) -> Outcome:
    """Slowloris: one connection sends a body a few bytes per second; meanwhile normal
    requests from other connections are answered promptly, and the slow one gets 408."""
    host, port = live.stack.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_S + 10)
    sock.sendall(b"POST /v1/infer HTTP/1.1\r\nHost: device\r\nContent-Type: "
                 b"application/octet-stream\r\nContent-Length: 5000\r\n\r\n")  # fmt: skip
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                sock.sendall(b"xxx")
            except OSError:
                return
            stop.wait(0.5)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        latencies = []
        for _ in range(5):  # other clients meanwhile
            start = time.perf_counter()
            reply = httpx.post(f"{live.stack.url}/v1/infer", json={"pixels": pixels()}, timeout=5)
            latencies.append(time.perf_counter() - start)
            assert reply.status_code == 200, reply.text
        assert max(latencies) < 1.0, latencies
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            part = sock.recv(65536)
            if not part:
                break
            response += part
    finally:
        stop.set()
        sender.join(5)
        sock.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(body)["detail"]


def grpc_call(stub_name: str, method: str, request, auth: bool = False) -> Callable:
    def run(live: Live) -> Outcome:
        stub = getattr(live, stub_name)
        request_message = request(live) if callable(request) else request
        try:
            getattr(stub, method)(
                request_message, timeout=5, metadata=auth_metadata(TOKEN if auth else None)
            )
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
        return OK, ""

    return run


def transmit(**fields) -> Callable:
    return grpc_call("channel", "Transmit", lambda live: live.good_transmission(**fields))


def decode(**fields) -> Callable:
    return grpc_call("edge", "Decode", lambda live: live.good_transmission(**fields))


def set_profile(**oneof) -> Callable:
    return grpc_call("channel", "SetProfile", pb.SetProfileRequest(**oneof), auth=True)


NAN, INF = float("nan"), float("inf")
TOO_BIG = [0.5] * (MAX_MESSAGE_BYTES // 4 + 1000)  # over the limit, under 2x (counted)
WALK = pb.RandomWalkProfile
D = 64  # the quick model's feature dimension (checked in the test)

I, K, C, P = "/v1/infer", "/v1/knobs", "/v1/channel/psnr", "other"
CASES = [
    # -- images over HTTP -------------------------------------------------------------------
    Case("empty body", "device", I, infer_raw(b"", "application/octet-stream"), 400, "empty"),
    Case("text body", "device", I, infer_raw(b"hello", "text/plain"), 415, "Content-Type"),
    Case("text sent as PNG", "device", I, infer_raw(b"hello", "image/png"), 400, "image"),
    Case("truncated PNG", "device", I, infer_raw(png((64, 64))[:60], "image/png"), 400, "image"),
    Case("SVG", "device", I, infer_raw(SVG, "image/svg+xml"), 400, "PNG"),
    Case("decompression bomb", "device", I, infer_raw(bomb_png(), "image/png"), 413, "pixels"),
    Case("1x1 image", "device", I, infer_raw(png((1, 1)), "image/png"), 200, "label"),
    Case("reconstruction asked of a classifier", "device", I,
         http("POST", "/v1/infer?task=reconstruction", content=png((28, 28)),
              headers={"Content-Type": "image/png"}), 422, "classification"),
    Case("CMYK JPEG", "device", I,
         infer_raw(image_bytes(Image.new("CMYK", (28, 28)), "JPEG"), "image/jpeg"), 200, "label"),
    Case("animated GIF", "device", I, infer_raw(animated_gif(), "image/gif"), 200, "label"),
    Case("multi-page TIFF", "device", I, infer_raw(multipage_tiff(), "image/tiff"), 200, "label"),
    Case("EXIF-rotated JPEG", "device", I,
         infer_raw(exif_rotated_jpeg(), "image/jpeg"), 200, "label"),
    Case("16-bit PNG", "device", I,
         infer_raw(image_bytes(Image.new("I;16", (28, 28), 40000), "PNG"), "image/png"),
         200, "label"),
    Case("multipart file", "device", I, infer_file(png()), 200, "label"),
    Case("wrong multipart field", "device", I, infer_file(png(), field="image"), 422, "file"),
    Case("two files", "device", I,
         http("POST", I, files=[("file", ("a.png", png())), ("file", ("b.png", png()))]),
         400, "one file"),
    Case("multipart without file", "device", I,
         http("POST", I, data={"note": "x"}, files={"other": ("x", b"")}), 422, "file"),
    Case("unsupported type", "device", I, infer_raw(b"<a/>", "application/xml"), 415, "image/*"),
    Case("over upload limit", "device", I,
         infer_raw(b"\x00" * (MAX_UPLOAD_BYTES + 1), "image/png"), 413, "limit"),
    Case("chunked over limit", "device", I, chunked_over_limit, 413, "limit"),
    Case("slow upload", "device", I, slow_upload, 408, "http-body-timeout-s"),
    # -- JSON pixels --------------------------------------------------------------------------
    Case("JSON empty body", "device", I, infer_json_text(""), 400, "pixels"),
    Case("JSON invalid", "device", I, infer_json_text("{pixels: "), 400, "invalid JSON"),
    Case("JSON wrong shape", "device", I,
         infer_json_text(json.dumps({"pixels": pixels(shape=(10, 10))})), 422, "shape"),
    Case("JSON NaN", "device", I,
         infer_json_text(json.dumps({"pixels": pixels(NAN)})), 422, "NaN"),
    Case("JSON strings", "device", I,
         infer_json_text(json.dumps({"pixels": [["a"] * 28] * 28})), 422, "numbers"),
    Case("JSON nested junk", "device", I,
         infer_json_text(json.dumps({"pixels": [{"a": [1]}, [2, [3]], None]})), 422, "pixels"),
    Case("JSON top-level list", "device", I, infer_json_text("[1, 2]"), 422, "object"),
    Case("JSON no pixels", "device", I, infer_json_text('{"image": 1}'), 422, "pixels"),
    Case("JSON out of range", "device", I,
         infer_json_text(json.dumps({"pixels": pixels(300)})), 422, "[0, 255]"),
    Case("JSON unknown field", "device", I,
         infer_json_text(json.dumps({"pixels": pixels(), "x": 1})), 422, "unknown"),
    Case("JSON bad pixel_range", "device", I,
         infer_json_text(json.dumps({"pixels": pixels(), "pixel_range": "0-9"})), 422,
         "pixel_range"),
    # -- knobs and channel PSNR over HTTP ------------------------------------------------------
    Case("knobs without token", "device", K, knobs({"beta": 1e-3}, auth=False), 401, "token"),
    Case("knobs wrong token", "device", K,
         http("PUT", K, json={"beta": 1e-3}, headers={"Authorization": "Bearer x"}), 401,
         "wrong admin token"),
    Case("knobs NaN beta", "device", K, knobs(None, raw='{"beta": NaN}'), 422, "finite"),
    Case("knobs negative beta", "device", K, knobs({"beta": -1.0}), 422, "beta"),
    Case("knobs beta out of range", "device", K, knobs({"beta": 10.0}), 422, "trained range"),
    Case("knobs string beta", "device", K, knobs({"beta": "big"}), 422, "beta"),
    Case("knobs boolean beta", "device", K, knobs({"beta": True}), 422, "beta"),
    Case("knobs numeric-string beta", "device", K, knobs({"beta": "0.001"}), 422, "beta"),
    Case("knobs integer variable_length", "device", K, knobs({"variable_length": 1}), 422,
         "variable_length"),
    Case("knobs string variable_length", "device", K, knobs({"variable_length": "true"}), 422,
         "variable_length"),
    Case("knobs unknown field", "device", K, knobs({"gamma": 1}), 422, "gamma: unknown field"),
    Case("knobs bad snr_mode", "device", K, knobs({"snr_mode": "auto"}), 422, "snr_mode"),
    Case("knobs snr_db out of range", "device", K,
         knobs({"snr_mode": "manual", "snr_db": 99}), 422, "snr_db"),
    Case("knobs infinite snr_db", "device", K, knobs(None, raw='{"snr_db": Infinity}'), 422,
         "finite"),
    Case("knobs bad variable_length", "device", K, knobs({"variable_length": "maybe"}), 422,
         "variable_length"),
    Case("knobs not JSON", "device", K, knobs(None, raw="beta=1"), 422, "JSON"),
    Case("knobs list body", "device", K, knobs([1, 2]), 422, "body"),
    Case("psnr without token", "device", C, channel_psnr('{"psnr_db": 10}', auth=False), 401,
         "token"),
    Case("psnr NaN", "device", C, channel_psnr('{"psnr_db": NaN}'), 422, "finite"),
    Case("psnr string", "device", C, channel_psnr('{"psnr_db": "loud"}'), 422, "psnr_db"),
    Case("psnr boolean", "device", C, channel_psnr('{"psnr_db": true}'), 422, "psnr_db"),
    Case("psnr numeric string", "device", C, channel_psnr('{"psnr_db": "10"}'), 422, "psnr_db"),
    Case("psnr missing", "device", C, channel_psnr("{}"), 422, "psnr_db"),
    Case("psnr out of range", "device", C, channel_psnr('{"psnr_db": 500}'), 422, "dB"),
    Case("unknown path", "device", P, http("GET", "/v1/nothing"), 404, "Not Found"),
    Case("wrong method", "device", I, http("GET", I), 405, "Method Not Allowed"),
    # -- gRPC: channel Transmit (the edge's verdict passes through) ---------------------------
    Case("Transmit NaN symbols", "channel", "Transmit", transmit(symbols=[NAN] * 4),
         grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
    Case("Transmit Inf symbols", "channel", "Transmit", transmit(symbols=[INF, 0.1]),
         grpc.StatusCode.INVALID_ARGUMENT, "infinity"),
    Case("Transmit too many symbols", "channel", "Transmit", transmit(symbols=[0.1] * (D + 1)),
         grpc.StatusCode.INVALID_ARGUMENT, "more than"),
    Case("Transmit wrong model id", "channel", "Transmit", transmit(model_id="other"),
         grpc.StatusCode.FAILED_PRECONDITION, "model id mismatch"),
    Case("Transmit wrong bits", "channel", "Transmit", transmit(bits_per_symbol=3),
         grpc.StatusCode.INVALID_ARGUMENT, "bits_per_symbol"),
    Case("Transmit empty message", "channel", "Transmit",
         grpc_call("channel", "Transmit", pb.Transmission()),
         grpc.StatusCode.INVALID_ARGUMENT, "model_id is missing"),
    Case("Transmit over size limit", "channel", "Transmit", transmit(symbols=TOO_BIG),
         grpc.StatusCode.RESOURCE_EXHAUSTED, "max-message-bytes"),
    Case("Transmit beta out of range", "channel", "Transmit", transmit(beta=5.0),
         grpc.StatusCode.INVALID_ARGUMENT, "beta"),
    # -- gRPC: channel admin ----------------------------------------------------------------
    Case("SetPsnr without token", "channel", "SetPsnr",
         grpc_call("channel", "SetPsnr", pb.SetPsnrRequest(psnr_db=10)),
         grpc.StatusCode.UNAUTHENTICATED, "admin token"),
    Case("SetPsnr NaN", "channel", "SetPsnr",
         grpc_call("channel", "SetPsnr", pb.SetPsnrRequest(psnr_db=NAN), auth=True),
         grpc.StatusCode.INVALID_ARGUMENT, "finite"),
    Case("SetProfile reversed walk", "channel", "SetProfile",
         set_profile(random_walk=WALK(low_db=20, high_db=5, step_db=1, period_s=1)),
         grpc.StatusCode.INVALID_ARGUMENT, "low_db < high_db"),
    Case("SetProfile empty trace", "channel", "SetProfile", set_profile(trace=pb.TraceProfile()),
         grpc.StatusCode.INVALID_ARGUMENT, "no rows"),
    Case("SetProfile no profile", "channel", "SetProfile", set_profile(),
         grpc.StatusCode.INVALID_ARGUMENT, "fixed, random_walk, trace"),
    Case("SetProfile without token", "channel", "SetProfile",
         grpc_call("channel", "SetProfile", pb.SetProfileRequest(fixed=pb.FixedProfile())),
         grpc.StatusCode.UNAUTHENTICATED, "admin token"),
    # -- gRPC: edge Decode --------------------------------------------------------------------
    Case("Decode NaN symbols", "edge", "Decode", decode(symbols=[NAN]),
         grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
    Case("Decode Inf symbols", "edge", "Decode", decode(symbols=[-INF] * 3),
         grpc.StatusCode.INVALID_ARGUMENT, "infinity"),
    Case("Decode too many symbols", "edge", "Decode", decode(symbols=[0.0] * (3 * D)),
         grpc.StatusCode.INVALID_ARGUMENT, "more than"),
    Case("Decode wrong model id", "edge", "Decode", decode(model_id="x"),
         grpc.StatusCode.FAILED_PRECONDITION, "model id mismatch"),
    Case("Decode wrong bits", "edge", "Decode", decode(bits_per_symbol=1),
         grpc.StatusCode.INVALID_ARGUMENT, "bits_per_symbol"),
    Case("Decode wrong d", "edge", "Decode", decode(d=D + 1),
         grpc.StatusCode.INVALID_ARGUMENT, "d="),
    Case("Decode empty message", "edge", "Decode", grpc_call("edge", "Decode", pb.Transmission()),
         grpc.StatusCode.INVALID_ARGUMENT, "model_id is missing"),
    Case("Decode no symbols", "edge", "Decode", decode(symbols=[]),
         grpc.StatusCode.INVALID_ARGUMENT, "no symbols"),
    Case("Decode over size limit", "edge", "Decode", decode(symbols=TOO_BIG),
         grpc.StatusCode.RESOURCE_EXHAUSTED, "max-message-bytes"),
    Case("Decode SNR out of range", "edge", "Decode", decode(snr_db=NAN),
         grpc.StatusCode.INVALID_ARGUMENT, "snr_db"),
]  # fmt: skip


def request_count(text: str, service: str, method: str, code: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name != "coinference_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (sample.name.endswith("_total") and labels.get("service") == service
                    and labels.get("method") == method and labels.get("code") == code):  # fmt: skip
                return sample.value
    return 0.0


def still_serving(live: Live, service: str) -> None:
    """A good request to the service the case targeted is answered."""
    if service == "device":
        reply = live.http.post("/v1/infer", json={"pixels": pixels()})
        assert reply.status_code == 200, reply.text
    else:
        stub = live.channel.Transmit if service == "channel" else live.edge.Decode
        assert stub(live.good_transmission(), timeout=5).model_id == live.model["model_id"]


def test_matrix_has_enough_cases():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.service for case in CASES} == {"device", "channel", "edge"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(live, case):
    assert live.model["d"] == D
    code = str(case.expect) if isinstance(case.expect, int) else case.expect.name
    before = request_count(live.metrics_text(case.service), case.service, case.method, code)

    status, message = case.run(live)

    assert status == case.expect, message
    assert case.keyword in message, message
    assert "Traceback" not in message
    still_serving(live, case.service)
    after = request_count(live.metrics_text(case.service), case.service, case.method, code)
    assert after >= before + 1, (case.method, code, before, after)
