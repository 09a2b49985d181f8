"""Browser test of the page over a fading channel: each reply's channel gain |h| and
instantaneous SNR in the transmission line, a gain trace that fills per request, the fading
named in the channel line. Real processes (channel --fading rayleigh), Debian chromium."""

from __future__ import annotations

import pytest

from tests.device.test_web_page import opened_page
from tests.procs import running_stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fading_url(quick_model_dir):
    flags = ["--fading", "rayleigh", "--seed", 3]
    with running_stack(quick_model_dir, psnr_db=15, channel_flags=flags) as live:
        yield live.url


def test_web_page_shows_the_channel_gain_under_fading(fading_url):
    with opened_page(fading_url) as (page, errors):
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
