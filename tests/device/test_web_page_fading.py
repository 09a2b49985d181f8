"""Browser test of the page over a fading channel: each reply's channel gain |h| and
instantaneous SNR in the transmission line, a gain trace that fills per request, the fading
named in the channel line. Real processes (channel --fading rayleigh), Debian chromium."""

from __future__ import annotations

import pytest

from tests.device.test_web_page import CHROMIUM, CHROMIUM_ARGS
from tests.procs import running_stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fading_url(quick_model_dir):
    flags = ["--fading", "rayleigh", "--seed", 3]
    with running_stack(quick_model_dir, psnr_db=15, channel_flags=flags) as live:
        yield live.url


def test_web_page_shows_the_channel_gain_under_fading(fading_url):
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium (make browser)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(fading_url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            assert "fading rayleigh" in page.locator("#channel-state").inner_text()
            assert page.locator("#gain-figure").is_hidden()  # no reply yet
            for k in range(3):
                page.click("#random-btn")
                page.wait_for_function(
                    f"document.querySelector('#chart-gain').dataset.points === '{k + 1}'",
                    timeout=15_000,
                )
            assert page.locator("#gain-figure").is_visible()
            text = page.locator("#transmission").inner_text()
            assert "fading |h| " in text and "instantaneous SNR" in text
            assert errors == []
        finally:
            browser.close()
