"""Browser test of the web page with an admin token on the device and the channel (real
processes, Debian chromium via Playwright): the first knob change answers 401, the page asks
for the token once, keeps it in sessionStorage and sends it as a bearer token from then on
(also for the channel PSNR, which the device forwards). A refused token is asked for again.
Skipped only when chromium or playwright is missing."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.device.test_web_page import CHROMIUM, CHROMIUM_ARGS
from tests.procs import running_stack

pytestmark = pytest.mark.browser

TOKEN = "web-admin-token"


@pytest.fixture(scope="module")
def stack(quick_model_dir, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN)
    flags = ["--admin-token-file", token_file]
    with running_stack(
        quick_model_dir, psnr_db=10, channel_flags=flags, device_flags=flags
    ) as live:
        yield live.url


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium (make browser)")
    return pytest.importorskip("playwright.sync_api", reason="playwright not installed")


def test_page_asks_for_the_token_once(stack):
    sync_api = _browser()
    url = stack
    beta_before = _get_json(f"{url}/v1/knobs")["beta"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            prompts: list[str] = []

            def answer(dialog):
                prompts.append(dialog.message)
                dialog.accept(TOKEN)

            page.on("dialog", answer)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            assert prompts == []  # reading needs no token

            # 1. a knob change: 401, the prompt, the retry with the token succeeds
            page.locator("#beta").fill("900")
            for _ in range(100):  # up to 10 s; waiting in Playwright lets it answer the prompt
                if _get_json(f"{url}/v1/knobs")["beta"] != pytest.approx(beta_before):
                    break
                page.wait_for_timeout(100)
            else:
                pytest.fail(f"beta unchanged; page says {page.locator('#error').inner_text()!r}")
            assert len(prompts) == 1 and "admin token" in prompts[0]
            stored = page.evaluate("sessionStorage.getItem('coinference-admin-token')")
            assert stored == TOKEN

            # 2. the channel PSNR: the stored token goes along (device -> channel), no prompt
            page.locator("#psnr").fill("14")
            page.wait_for_function(
                "Number(document.querySelector('#psnr').dataset.applied) === 14",
                timeout=10_000,
            )
            assert _get_json(f"{url}/v1/channel")["psnr_db"] == pytest.approx(14.0)
            page.locator("#snr-mode").check()
            page.wait_for_function("!document.querySelector('#snr-db').disabled", timeout=10_000)
            assert len(prompts) == 1
            assert page.locator("#error").inner_text() == ""
            assert not errors, errors
        finally:
            browser.close()


def test_a_refused_token_is_asked_for_again(stack):
    sync_api = _browser()
    url = stack
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            answers = iter(["wrong-token", TOKEN])
            prompts: list[str] = []

            def answer(dialog):
                prompts.append(dialog.message)
                dialog.accept(next(answers))

            page.on("dialog", answer)
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=15_000)
            page.locator("#beta").fill("100")
            page.wait_for_function(
                "document.querySelector('#error').textContent.includes('401')", timeout=10_000
            )
            assert "wrong admin token" in page.locator("#error").inner_text()
            assert page.evaluate("sessionStorage.getItem('coinference-admin-token')") is None
            page.locator("#beta").fill("200")  # the next change asks again
            page.wait_for_function(
                "document.querySelector('#error').textContent === ''", timeout=10_000
            )
            assert len(prompts) == 2 and "refused" not in prompts[1]
            assert page.evaluate("sessionStorage.getItem('coinference-admin-token')") == TOKEN
        finally:
            browser.close()
