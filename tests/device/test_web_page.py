"""Browser test of the device's web page (GET /): real edge + channel + device processes,
Debian chromium driven by Playwright. Skipped only when chromium or playwright is missing.

Saves a screenshot in the test's temporary folder; with UPDATE_SCREENSHOT=1 to
reports/web/screenshot.png (the one the README shows), so a test run leaves the tree clean.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.procs import REPO, running_stack

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO / "reports" / "web" / "screenshot.png"


@pytest.fixture(scope="module")
def stack(quick_model_dir):
    """edge + channel (10 dB) + device on free ports; yields the device URL."""
    with running_stack(quick_model_dir, psnr_db=10) as live:
        yield live.url


@contextlib.contextmanager
def opened_page(url: str):
    """The device page at ``url`` loaded in headless chromium and ready: yields (page, the
    problems so far: uncaught JavaScript errors, console errors, requests that failed or
    answered 4xx/5xx). Skips the test when chromium or playwright is missing."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium (make browser)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.method} {r.url}"))
            page.on(
                "response",
                lambda r: (
                    r.status >= 400 and errors.append(f"{r.status}: {r.request.method} {r.url}")
                ),
            )
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            yield page, errors
        finally:
            browser.close()


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _image_file(tmp_path: Path) -> Path:
    """A trouser-like picture: a bright vertical pair of bars on black, 56x56 RGB."""
    pixels = np.zeros((56, 56, 3), dtype=np.uint8)
    pixels[4:52, 16:26] = 220
    pixels[4:52, 30:40] = 220
    pixels[4:12, 16:40] = 220
    path = tmp_path / "upload.png"
    Image.fromarray(pixels).save(path)
    return path


def test_web_page(stack, tmp_path):
    url = stack
    class_names = _get_json(f"{url}/v1/model")["class_names"]
    knobs = _get_json(f"{url}/v1/knobs")
    psnr_before = _get_json(f"{url}/v1/channel")["psnr_db"]

    with opened_page(url) as (page, errors):
        assert page.title() == "Hyper-VIB device"
        assert page.locator("#error").inner_text() == ""
        assert knobs["beta_range"][0] > 0
        assert page.locator("#link-mode-knob").is_hidden()  # no entropy model: analog only
        assert page.locator("#vl-knob").is_hidden()  # a fixed-length model: no such switch
        assert page.locator("#beta-knob").is_visible() and page.locator("#beta-fixed").is_hidden()

        # 1. upload an image: prediction, probabilities and latency table appear
        page.set_input_files("#file", str(_image_file(tmp_path)))
        page.wait_for_function(
            "document.querySelector('#prediction').dataset.label !== ''", timeout=15_000
        )
        label = int(page.locator("#prediction").get_attribute("data-label"))
        assert 0 <= label < len(class_names)
        assert page.locator("#prediction").inner_text() == class_names[label]
        assert page.locator("#probs .bar").count() == len(class_names)
        stages = page.locator("#latency-table tbody tr").evaluate_all(
            "rows => rows.map(r => [r.dataset.stage, parseFloat(r.cells[1].textContent)])"
        )
        stage_ms = dict(stages)
        for key in ("preprocess", "encode", "decode", "total", "http"):
            assert key in stage_ms, stages
            assert stage_ms[key] >= 0
        assert stage_ms["total"] > 0

        # the constellation of that request: d/2 I/Q pairs sent and as many received, the
        # noise measured between them near the channel's sigma^2 (10 dB: 0.1; 64 real
        # symbols put the ratio inside [0.5, 2] with near certainty), none when not noisy
        d = _get_json(f"{url}/v1/model")["d"]
        canvas = page.locator("#chart-constellation")
        assert canvas.get_attribute("data-points") == str(d // 2)
        assert canvas.get_attribute("data-received") == str(d // 2)
        noise_var = _get_json(f"{url}/v1/channel")["noise_var"]
        measured = float(canvas.get_attribute("data-measured-noise-var"))
        assert 0.5 * noise_var < measured < 2.0 * noise_var, (measured, noise_var)
        assert "I/Q pairs" in page.locator("#constellation-note").inner_text()

        # 2. move the PSNR slider: the channel's PSNR changes, and the next reply shows it
        slider = page.locator("#psnr")
        low, high = knobs["snr_db_range"]  # inside the trained range, not the same value
        target = float(round(high - 2.0)) if abs(psnr_before - (high - 2.0)) > 1 else low + 2.0
        slider.fill(str(target))
        page.wait_for_function(
            f"Number(document.querySelector('#psnr').dataset.applied) === {target}",
            timeout=10_000,
        )
        assert _get_json(f"{url}/v1/channel")["psnr_db"] == pytest.approx(target)
        page.click("#random-btn")
        page.wait_for_function(
            f"Number(document.querySelector('#transmission').dataset.channelPsnr) === {target}",
            timeout=15_000,
        )
        # (the page also re-sent the uploaded image at the new PSNR; the random one follows)
        page.wait_for_function(
            "document.querySelector('#truth').textContent.startsWith('test image #')",
            timeout=15_000,
        )

        # 3. the SNR-mode switch says what it does: checked = the encoder's SNR set by
        #    hand (slider enabled), unchecked = from the channel's feedback (CSI)
        assert knobs["snr_mode"] == "feedback"
        switch = page.locator("#snr-mode")
        assert not switch.is_checked() and page.locator("#snr-db").is_disabled()
        assert page.locator("label[for='snr-mode']").inner_text().strip() == "manual SNR"
        assert "feedback" in page.locator("#snr-mode-label").inner_text()
        switch.check()
        page.wait_for_function("!document.querySelector('#snr-db').disabled", timeout=10_000)
        assert _get_json(f"{url}/v1/knobs")["snr_mode"] == "manual"
        assert "manual" in page.locator("#snr-mode-label").inner_text()
        switch.uncheck()
        page.wait_for_function("document.querySelector('#snr-db').disabled", timeout=10_000)
        assert _get_json(f"{url}/v1/knobs")["snr_mode"] == "feedback"

        # 4. stream for a couple of seconds: the counter and the charts move
        accuracy_canvas = page.locator("#chart-accuracy")
        before_pixels = accuracy_canvas.evaluate("c => c.toDataURL()")
        page.click("#stream-btn")
        page.wait_for_function(
            "Number(document.querySelector('#stream-stats').dataset.count) >= 5",
            timeout=20_000,
        )
        page.wait_for_timeout(1500)
        page.click("#stream-btn")
        page.wait_for_timeout(300)
        count = int(page.locator("#stream-stats").get_attribute("data-count"))
        assert count >= 5
        assert int(accuracy_canvas.get_attribute("data-points")) >= 5
        assert int(page.locator("#chart-latency").get_attribute("data-points")) >= 5
        assert accuracy_canvas.evaluate("c => c.toDataURL()") != before_pixels
        assert page.locator("#error").inner_text() == ""
        assert not errors, errors

        shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "s.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    assert Image.open(io.BytesIO(shot.read_bytes())).size[0] >= 1000


def test_rate_accuracy_chart_gains_a_point_per_beta(stack):
    """Stream at one β, move the β slider, stream on: the rate–accuracy chart has a point
    for each β with its mean bits and accuracy (this 4-bit fixed-length model sends 256 bits
    at every β; a variable-length or entropy-coded one sends fewer as β rises)."""
    with opened_page(stack) as (page, errors):
        assert page.locator("#rate-figure").is_visible()
        page.locator("#beta").fill("0")  # the slider's low end: the trained range's lowest β
        page.locator("#beta").dispatch_event("change")
        page.wait_for_timeout(300)
        page.click("#stream-btn")
        page.wait_for_function(
            "Number(document.querySelector('#stream-stats').dataset.count) >= 5", timeout=20_000
        )
        page.locator("#beta").fill(page.locator("#beta").get_attribute("max"))
        page.locator("#beta").dispatch_event("change")
        page.wait_for_function(
            "document.querySelector('#chart-rate').dataset.points === '2'", timeout=20_000
        )
        page.click("#stream-btn")
        points = page.evaluate("rateAccuracyPoints(state.history)")
        assert len(points) >= 2
        low, high = min(points, key=lambda p: p["beta"]), max(points, key=lambda p: p["beta"])
        assert high["bits"] <= low["bits"] and low["beta"] < high["beta"]
        assert sum(p["n"] for p in points) >= 5
        assert all(0.0 <= p["accuracy"] <= 1.0 for p in points)
        assert not errors, errors
