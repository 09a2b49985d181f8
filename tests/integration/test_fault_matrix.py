"""Fault matrix with real processes (tools/stack.py): kill -9 the edge or the channel under
load, restart the device with a state file, refuse corrupt state files.

Under load, 16 clients each send their own Fashion-MNIST test images, every request with a
unique ``X-Request-Id``. The channel runs at 60 dB PSNR and the encoder at a fixed 25 dB
(manual mode), so each image's answer is all but deterministic: a reference pass before the
fault gives each image's label and probabilities, and every 200 reply must carry its own
request id *and* its own image's answer (another request's answer would show as different
probabilities). Every other reply must be an explicit 503/504 within the request deadline
plus ``MARGIN_S``; an httpx timeout (a hang) fails the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest

from client.http import png_bytes
from shared.idx import load_test_set
from shared.manifest import load_manifest
from tests.procs import PYTHON, ServiceProcess, Stack, free_port

CLIENTS = 16
IMAGES_PER_CLIENT = 4
DEADLINE_S = 2.0  # the device's --deadline-s: budget of a request's gRPC calls
MARGIN_S = 3.0  # HTTP queueing + pre-processing on a busy 2-core machine (two test workers)
HANG_S = DEADLINE_S + 10.0  # the client's own timeout: reaching it means a hang
RECOVERY_S = 5.0  # the device serves again within this of the new process being ready
FREEZE_S = DEADLINE_S + 1.5  # a frozen (SIGSTOP) service: in-flight requests time out
PROBABILITY_ATOL = 0.05  # 60 dB channel: answers differ by ~1e-3 between runs

DEVICE_FLAGS = ["--snr-mode", "manual", "--snr-db", 25, "--deadline-s", DEADLINE_S,
                "--log-level", "warning"]  # fmt: skip
EDGE_FLAGS = ["--device", "cpu", "--grace-s", 1]


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    pixels, _labels = load_test_set(None, CLIENTS * IMAGES_PER_CLIENT)
    return [png_bytes(image) for image in pixels]


@pytest.fixture
def stack(quick_model_dir):
    with Stack(
        quick_model_dir,
        psnr_db=60.0,
        edge_flags=EDGE_FLAGS,
        device_flags=DEVICE_FLAGS,
        start_timeout_s={"edge": 180, "channel": 90, "device": 90},
    ) as live:
        live.start()
        yield live


@dataclass
class Record:
    request_id: str
    image: int
    started: float
    latency_s: float
    status: int | None  # None: no HTTP answer (httpx error or hang)
    body: dict = field(default_factory=dict)
    error: str = ""


async def post(client: httpx.AsyncClient, images, image: int) -> Record:
    request_id = f"fm-{image}-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    try:
        response = await client.post(
            "/v1/infer",
            content=images[image],
            headers={"Content-Type": "image/png", "X-Request-Id": request_id},
        )
    except httpx.HTTPError as exc:
        return Record(request_id, image, started, time.monotonic() - started, None, {}, repr(exc))
    latency = time.monotonic() - started
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = {"raw": response.text[:200]}
    return Record(request_id, image, started, latency, response.status_code, body)


async def reference_answers(client, images) -> dict[int, np.ndarray]:
    """Each image's probabilities from a healthy stack, one request at a time."""
    answers = {}
    for image in range(len(images)):
        record = await post(client, images, image)
        assert record.status == 200, record
        answers[image] = np.asarray(record.body["probabilities"])
    return answers


def check_replies(records: list[Record], reference: dict[int, np.ndarray]) -> None:
    """Every reply is its own request's answer or an explicit 503/504 in time; none hangs."""
    assert records
    for r in records:
        assert r.status in (200, 503, 504), f"{r.request_id}: {r.status} {r.error} {r.body}"
        assert r.latency_s <= DEADLINE_S + MARGIN_S, (
            f"{r.request_id} took {r.latency_s:.2f} s (status {r.status})"
        )
        if r.status == 200:
            assert r.body["request_id"] == r.request_id
            probabilities = np.asarray(r.body["probabilities"])
            np.testing.assert_allclose(
                probabilities, reference[r.image], atol=PROBABILITY_ATOL,
                err_msg=f"{r.request_id} got an answer that is not its image's",
            )  # fmt: skip
            assert r.body["label"] == int(np.argmax(reference[r.image]))
        else:
            assert r.body.get("detail"), r  # explicit, with a message


async def fault_under_load(stack: Stack, images, service: str, fault: str = "kill") -> dict:
    """Load with CLIENTS clients, then the fault: ``"kill"``: kill -9 ``service`` and
    restart it on its port; ``"freeze"``: SIGSTOP it for FREEZE_S (longer than the
    deadline: a hung peer), then SIGCONT. Returns the records and the times (monotonic s)
    of the fault, the restart and the recovery."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=stack.url, timeout=HANG_S, limits=limits) as client:
        reference = await reference_answers(client, images)
        records: list[Record] = []
        stop = asyncio.Event()

        async def worker(k: int) -> None:
            turn = 0
            while not stop.is_set():
                image = k + CLIENTS * (turn % IMAGES_PER_CLIENT)
                records.append(await post(client, images, image))
                turn += 1

        workers = [asyncio.create_task(worker(k)) for k in range(CLIENTS)]
        try:
            await asyncio.sleep(1.5)  # steady load before the fault
            proc = stack.procs[service].proc
            killed_at = time.monotonic()
            if fault == "kill":
                proc.kill()  # SIGKILL: no graceful shutdown
                proc.wait()
                await asyncio.sleep(1.5)  # the outage, under load
                restarted_at = time.monotonic()
                await asyncio.to_thread(stack.start_service, service)  # same port, healthy
            else:
                os.kill(proc.pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(FREEZE_S)
                finally:
                    restarted_at = time.monotonic()
                    os.kill(proc.pid, signal.SIGCONT)
            ready_at = time.monotonic()
            recovered_at = None
            while time.monotonic() < ready_at + RECOVERY_S + HANG_S:
                done = [r for r in records if r.started >= ready_at and r.status == 200]
                if done:
                    recovered_at = min(r.started + r.latency_s for r in done)
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # steady load after the recovery
        finally:
            stop.set()
            await asyncio.gather(*workers)
    return {
        "records": records,
        "reference": reference,
        "killed_at": killed_at,
        "restarted_at": restarted_at,
        "ready_at": ready_at,
        "recovered_at": recovered_at,
    }


@pytest.mark.parametrize(
    ("service", "fault"), [("edge", "kill"), ("channel", "kill"), ("edge", "freeze")]
)
def test_fault_under_load_gives_explicit_errors_and_recovers(stack, images, service, fault):
    """kill -9 (then a new process on the same port), or a hang (SIGSTOP, then SIGCONT)."""
    run = asyncio.run(fault_under_load(stack, images, service, fault))
    records = run["records"]
    check_replies(records, run["reference"])

    # the fault was felt: every answer given during the outage is a 503/504
    outage = [
        r
        for r in records
        if run["killed_at"] + 0.2 <= r.started + r.latency_s < run["restarted_at"]
    ]
    assert outage and all(r.status in (503, 504) for r in outage)
    # the device serves again within RECOVERY_S of the new process being ready ...
    assert run["recovered_at"] is not None, "no request served after the restart"
    assert run["recovered_at"] - run["ready_at"] < RECOVERY_S
    # ... and keeps serving: every request started a moment after the recovery succeeds
    after = [r for r in records if r.started >= run["recovered_at"] + 0.5]
    assert after and all(r.status == 200 for r in after)
    assert stack.alive()


def test_knobs_set_at_run_time_survive_a_device_restart(quick_model_dir, tmp_path) -> None:
    state_file = tmp_path / "state" / "knobs.json"
    wanted = {"beta": 0.05, "snr_mode": "manual", "snr_db": 7.5}
    with Stack(
        quick_model_dir,
        edge_flags=EDGE_FLAGS,
        device_flags=["--state-file", state_file, "--log-level", "warning"],
        start_timeout_s={"edge": 180, "channel": 90, "device": 90},
    ) as live:
        live.start()
        reply = httpx.put(f"{live.url}/v1/knobs", json=wanted, timeout=10)
        assert reply.status_code == 200, reply.text
        refused = httpx.put(f"{live.url}/v1/knobs", json={"beta": 7.0}, timeout=10)
        assert refused.status_code == 422  # a refused change is not saved

        live.start_service("device")  # restart (SIGTERM), same flags, same state file
        knobs = httpx.get(f"{live.url}/v1/knobs", timeout=10).json()
        assert {name: knobs[name] for name in wanted} == wanted
        saved = json.loads(state_file.read_text())
        assert saved["knobs"] == {**wanted, "variable_length": False}

        # still applied to inference after the restart
        image = png_bytes(load_test_set(None, 1)[0][0])
        answer = httpx.post(
            f"{live.url}/v1/infer", content=image, headers={"Content-Type": "image/png"},
            timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["beta"] == wanted["beta"]
        assert answer.json()["snr_db"] == wanted["snr_db"]


def corrupt_states(model_id: str) -> dict[str, tuple[str, str]]:
    """name -> (file text, what the refusal must say)."""
    knobs = {"beta": 1e-3, "snr_mode": "feedback", "snr_db": None, "variable_length": False}
    good = {"format": "coinference-device-knobs/1", "model_id": model_id, "knobs": knobs}
    return {
        "bad-json": ('{"format": "coinference-device-knobs/1", "knobs": {', "not valid JSON"),
        "wrong-type": (
            json.dumps({**good, "knobs": {**knobs, "beta": "0.01"}}),
            "knobs.beta must be a JSON number",
        ),
        "beta-out-of-range": (
            json.dumps({**good, "knobs": {**knobs, "beta": 50.0}}),
            "invalid knobs for this model",
        ),
        "other-model": (json.dumps({**good, "model_id": "0123abcd"}), "model '0123abcd'"),
    }


@pytest.mark.parametrize(
    ("case", "how"),
    [("bad-json", "flag"), ("wrong-type", "flag"), ("beta-out-of-range", "flag"),
     ("other-model", "flag"), ("other-model", "env")],
)  # fmt: skip
def test_a_corrupt_state_file_is_refused_at_start_up(quick_model_dir, tmp_path, case, how):
    """--state-file or DEVICE_STATE_FILE: exit 2, one ERROR line saying why, file untouched."""
    text, reason = corrupt_states(load_manifest(quick_model_dir).model_id)[case]
    state_file = tmp_path / "knobs.json"
    state_file.write_text(text)
    args = [PYTHON, "-m", "device", "--model", quick_model_dir, "--port", free_port(),
            "--channel", f"127.0.0.1:{free_port()}"]  # fmt: skip
    env = {}
    if how == "flag":
        args += ["--state-file", state_file]
    else:
        env["DEVICE_STATE_FILE"] = str(state_file)
    with ServiceProcess(args, env=env) as proc:
        code = proc.proc.wait(90)
        output = proc.output()
    assert code == 2, output
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, output  # one line says why
    assert "cannot start: state file" in errors[0] and str(state_file) in errors[0]
    assert reason in errors[0], errors[0]
    assert "Traceback" not in output
    assert state_file.read_text() == text  # refused as a whole, never rewritten
