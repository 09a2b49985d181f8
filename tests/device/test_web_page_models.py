"""Browser tests of the page with the models whose controls differ: a variable-length model
trained at one β (VL-VFE, β = 0.01, 10-25 dB) and an entropy-coded model on the digital
links. Real edge, channel and device processes, Debian chromium via Playwright; every test
fails on a JavaScript or console error and on a failed or 4xx/5xx request (``opened_page``).

With UPDATE_SCREENSHOT=1 the screenshots go to reports/web/screenshot-vl.png and
reports/web/screenshot-digital.png, else to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from tests.device.test_web_page import opened_page
from tests.digital.conftest import quick_digital_model_dir  # noqa: F401 (a fixture)
from tests.procs import REPO, running_stack

pytestmark = pytest.mark.browser
SHOTS = REPO / "reports" / "web"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _screenshot(page, name: str, tmp_path) -> None:
    folder = SHOTS if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def _send_random(page) -> None:
    """Click "Random test image" and wait until the page shows the reply to it."""
    count = int(page.locator("#transmission").get_attribute("data-count") or 0)
    page.click("#random-btn")
    page.wait_for_function(
        "document.querySelector('#truth').textContent.startsWith('test image #') && "
        f"Number(document.querySelector('#transmission').dataset.count) > {count}",
        timeout=20_000,
    )


@pytest.fixture(scope="module")
def vl_url(quick_vl_model_dir):
    """The variable-length model, the channel at 5 dB: below its trained 10-25 dB."""
    with running_stack(quick_vl_model_dir, psnr_db=5) as live:
        yield live.url


def test_variable_length_model_fixed_beta_switch_and_range_warning(vl_url, tmp_path):
    knobs = _get_json(f"{vl_url}/v1/knobs")
    assert knobs["beta_range"] == [0.01, 0.01] and knobs["variable_length_supported"]
    with opened_page(vl_url) as (page, errors):
        # one β: no slider, the note says which; the variable-length switch is there, on
        assert page.locator("#beta-knob").is_hidden()
        assert page.locator("#beta-fixed").inner_text() == "β fixed at 0.01 by this model"
        assert page.locator("#vl-knob").is_visible()
        assert page.locator("#variable-length").is_checked()
        assert page.locator("#link-mode-knob").is_hidden()  # not entropy-coded
        assert page.locator("#rate-figure").is_hidden()  # one β: no trade-off to trace

        # 5 dB is outside 10-25 dB: the reply says so and the page shows the warning
        _send_random(page)
        warning = page.locator("#snr-warning")
        assert warning.is_visible()
        assert warning.inner_text().startswith("outside the model's range: ")
        assert "10" in warning.inner_text()  # the nearest trained SNR the encoder used
        at_10_db = int(page.locator("#transmission").inner_text().split(" of ")[0])
        assert 0 < at_10_db <= 64  # the active prefix (at 10 dB the quick model may send all)

        # the switch off: all d = 64 symbols, 32 I/Q pairs in the constellation
        page.locator("#variable-length").uncheck()
        page.wait_for_function("state.knobs.variable_length === false", timeout=10_000)
        assert _get_json(f"{vl_url}/v1/knobs")["variable_length"] is False
        _send_random(page)
        assert page.locator("#transmission").inner_text().startswith("64 of 64 symbols")
        assert page.locator("#chart-constellation").get_attribute("data-points") == "32"
        page.locator("#variable-length").check()
        page.wait_for_function("state.knobs.variable_length === true", timeout=10_000)
        assert _get_json(f"{vl_url}/v1/knobs")["variable_length"] is True

        # the channel back inside the range: the warning goes
        page.locator("#psnr").fill("20")
        page.wait_for_function(  # applied, and the last image sent again at 20 dB
            "Number(document.querySelector('#transmission').dataset.channelPsnr) === 20",
            timeout=15_000,
        )
        assert warning.is_hidden()
        _send_random(page)
        assert warning.is_hidden()
        at_20_db = int(page.locator("#transmission").inner_text().split(" of ")[0])
        assert 0 < at_20_db < 64 and at_20_db <= at_10_db  # a shorter prefix, a better channel
        _screenshot(page, "screenshot-vl.png", tmp_path)
        assert errors == []


@pytest.fixture(scope="module")
def digital_url(quick_digital_model_dir):  # noqa: F811 (the imported fixture)
    """The entropy-coded model with the channel's link analog at first, 20 dB."""
    with running_stack(
        quick_digital_model_dir, 20.0,
        edge_flags=["--device", "cpu"],
        channel_flags=["--seed", 0],
        start_timeout_s={"edge": 90},
    ) as live:  # fmt: skip
        yield live.url


def test_digital_model_link_mode_and_beta_buying_bits(digital_url, tmp_path):
    with opened_page(digital_url) as (page, errors):
        knob = page.locator("#link-mode-knob")
        assert knob.is_visible()
        options = page.locator("#link-mode option").evaluate_all("o => o.map(x => x.value)")
        assert options == ["analog", "ideal", "ldpc-qam"]
        assert page.locator("#link-mode").input_value() == "analog"

        _send_random(page)  # analog: the noisy symbols in the constellation
        assert "analog link" in page.locator("#transmission").inner_text()
        canvas = page.locator("#chart-constellation")
        assert canvas.get_attribute("data-received") == canvas.get_attribute("data-points")

        page.select_option("#link-mode", "ideal")
        page.wait_for_function(
            "document.querySelector('#link-mode').dataset.applied === 'ideal'", timeout=10_000
        )
        assert _get_json(f"{digital_url}/v1/channel")["link_mode"] == "ideal"
        _send_random(page)
        assert "ideal link: " in page.locator("#transmission").inner_text()
        assert canvas.get_attribute("data-received") == "0"  # coded bits travel instead
        assert "carries the entropy-coded bits" in page.locator("#constellation-note").inner_text()

        # β buys bits: stream at the lowest β, then at the highest; the rate–accuracy
        # chart has a point for each, and the coded bits fall
        for end, points in (("0", 1), ("max", 2)):
            value = "0" if end == "0" else page.locator("#beta").get_attribute("max")
            page.locator("#beta").fill(value)
            page.locator("#beta").dispatch_event("change")
            page.wait_for_timeout(300)
            page.click("#stream-btn")
            page.wait_for_function(
                f"document.querySelector('#chart-rate').dataset.points === '{points}' && "
                "state.history.filter(r => r.beta === state.knobs.beta).length >= 4",
                timeout=30_000,
            )
            page.click("#stream-btn")
            page.wait_for_function("!state.streaming")
            page.wait_for_timeout(500)  # the request in flight finishes
        rate = page.evaluate("rateAccuracyPoints(state.history)")
        low, high = min(rate, key=lambda p: p["beta"]), max(rate, key=lambda p: p["beta"])
        assert low["beta"] < high["beta"] and high["bits"] < low["bits"], rate
        _screenshot(page, "screenshot-digital.png", tmp_path)
        assert page.locator("#error").inner_text() == ""
        assert errors == []
