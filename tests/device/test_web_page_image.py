"""Browser test of the page with an image (reconstruction) model: the sent and received
images side by side with PSNR / SSIM, the β slider replaced by a note (the model has one β),
a new PSNR re-sends the image, and the stream charts PSNR. Real processes, Debian chromium."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from tests.device.test_web_page import opened_page
from tests.procs import REPO, running_stack

pytestmark = pytest.mark.browser
SCREENSHOT = REPO / "reports" / "web" / "screenshot-image.png"


@pytest.fixture(scope="module")
def image_url(quick_image_model_dir):
    with running_stack(quick_image_model_dir, psnr_db=2) as live:
        yield live.url


def test_web_page_with_an_image_model(image_url, tmp_path):
    upload = tmp_path / "shirt.jpg"
    pixels = np.zeros((80, 60, 3), np.uint8)
    pixels[10:70, 12:48] = (200, 180, 160)
    Image.fromarray(pixels).save(upload, quality=90)
    with opened_page(image_url) as (page, errors):
        assert page.locator("#result-title").inner_text() == "Received image"
        assert page.locator("#beta-knob").is_hidden()
        assert page.locator("#beta-fixed").inner_text() == "β fixed at 1 by this model"

        page.set_input_files("#file", str(upload))
        page.wait_for_function(
            "document.querySelector('#reconstruction').dataset.psnr !== undefined",
            timeout=15_000,
        )
        assert page.locator("#reconstruction").is_visible()
        for img in ("#rec-sent", "#rec-received"):
            assert page.locator(img).get_attribute("src").startswith("data:image/png;base64,")
            assert page.locator(img).evaluate("i => i.naturalWidth") == 28
        text = page.locator("#prediction").inner_text()
        assert text.startswith("PSNR ") and "SSIM" in text and "28×28" in text
        first = float(page.locator("#reconstruction").get_attribute("data-psnr"))
        assert page.locator("#snr-warning").is_hidden()  # 2 dB: inside 0-20 dB

        # the constellation: complex symbols (I/Q pairs, mean power 1 per real symbol), the
        # received ones off by the channel's noise, sigma^2 = 10^(-2/10) = 0.63 per real one
        n_symbols = int(page.locator("#transmission").inner_text().split(" of ")[0])
        canvas = page.locator("#chart-constellation")
        assert canvas.get_attribute("data-points") == str((n_symbols + 1) // 2)
        assert canvas.get_attribute("data-received") == canvas.get_attribute("data-points")
        measured = float(canvas.get_attribute("data-measured-noise-var"))
        assert 0.5 * 10**-0.2 < measured < 2.0 * 10**-0.2, measured
        assert "(average power)" in page.locator("#constellation-note").inner_text()

        # a new channel PSNR sends the same image again: the reply shows the new PSNR
        page.locator("#psnr").fill("20")
        page.wait_for_function(
            "Number(document.querySelector('#transmission').dataset.channelPsnr) === 20",
            timeout=15_000,
        )
        again = float(page.locator("#reconstruction").get_attribute("data-psnr"))
        assert again != first

        # 25 dB is past the model's 0-20 dB: the page says the encoder is out of range
        page.locator("#psnr").fill("25")
        page.wait_for_function(
            "Number(document.querySelector('#transmission').dataset.channelPsnr) === 25",
            timeout=15_000,
        )
        assert page.locator("#snr-warning").is_visible()
        assert "outside the model's range" in page.locator("#snr-warning").inner_text()

        page.click("#stream-btn")
        page.wait_for_function(
            "Number(document.querySelector('#stream-stats').dataset.count) >= 4",
            timeout=20_000,
        )
        page.click("#stream-btn")
        page.wait_for_timeout(300)
        assert "mean PSNR" in page.locator("#stream-stats").inner_text()
        assert int(page.locator("#chart-accuracy").get_attribute("data-points")) >= 4
        assert "PSNR" in page.locator("#chart-quality-caption").inner_text()
        assert page.locator("#error").inner_text() == ""
        assert not errors, errors
        shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "s.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
