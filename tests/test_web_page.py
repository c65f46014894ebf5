"""The read-along page at `/` in a real browser: Debian's chromium driven by Playwright, against the real
service (create_app under uvicorn on 127.0.0.1). It plays the streamed audio and the highlight follows
the words."""

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package): the read-along page is not tested", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the `test` extra)")
uvicorn = pytest.importorskip("uvicorn", reason="the `serve` extra is not installed")

from playwright.sync_api import sync_playwright  # noqa: E402

from reader.engine import Reader  # noqa: E402
from reader.service import ServiceSettings, create_app  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
TEXT = "The library opened at nine. By ten, every table by the windows was taken. Nobody noticed the rain until it stopped."
API_KEY = "read-along-test-key"
SCREENSHOT = os.environ.get("READ_ALONG_SCREENSHOT")  # where to keep the mid-reading screenshot (else the test's tmp_path)

# Samples in the page every 20 ms until the reading finishes (or 60 s): the highlighted text (the
# CSS highlight the reader sees), the AudioContext's clock, the samples received.
WATCH = """async () => {
  const seen = [], clock = [];
  const began = performance.now();
  while (performance.now() - began < 60000) {
    const highlight = CSS.highlights.get("spoken");
    const word = highlight ? [...highlight][0].toString() : null;
    if (word && word !== seen[seen.length - 1]) seen.push(word);
    const context = window.readAlong.context;
    if (context && context.state !== "closed") clock.push(context.currentTime);
    if (document.getElementById("status").textContent.startsWith("Finished") || window.readAlong.error) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { seen, clock, samples: window.readAlong.samples, words: window.readAlong.words, error: window.readAlong.error,
           status: document.getElementById("status").textContent };
}"""


@pytest.fixture(scope="module")
def server_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Reader(), ServiceSettings(api_key=API_KEY))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, server_url, **options):
    """The page, its API key entered (the server wants one) and the voices loaded."""
    page = browser.new_page(**options)
    page.goto(server_url + "/")
    status = page.locator("#status")
    status.filter(has_text="needs an API key").wait_for(timeout=30000)
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("API key").press("Tab")
    page.wait_for_function("document.getElementById('voice').options.length > 0", timeout=30000)
    return page


def test_page_plays_the_reading_and_highlights_word_after_word(server_url, browser, tmp_path):
    page = open_page(browser, server_url, viewport={"width": 1000, "height": 700})
    assert page.get_by_label("Voice").input_value().lower() == "lj"
    page.get_by_label("Text to read").fill(TEXT)
    page.get_by_role("button", name="Read").click()
    page.evaluate(f"() => {{ window.watching = ({WATCH})(); }}")
    page.wait_for_function("window.readAlong.spoken.length >= 3", timeout=60000)
    page.screenshot(path=SCREENSHOT or str(tmp_path / "read-along.png"))  # mid-reading, a word lit
    result = page.evaluate("window.watching")
    assert result["error"] is None and result["status"].startswith("Finished"), result["status"]

    # Audio played: the samples arrived, and the AudioContext's clock ran for about as long.
    received = result["samples"] / 24000
    assert received > 3.0
    assert max(result["clock"]) - min(result["clock"]) > 0.8 * received
    # The highlight went through the words of the text, in order.
    seen = result["seen"]
    assert len(seen) >= 3 and all(word.strip() for word in seen)
    position = 0
    for word in seen:
        found = TEXT.find(word, position)
        assert found >= 0, f"{word!r} highlighted out of order: {seen}"
        position = found + len(word)
    assert len(set(seen)) >= 0.6 * len(re.findall(r"\w+", TEXT))  # most words were lit, not only a few
    page.close()


def test_stop_button_stops_the_reading(server_url, browser):
    page = open_page(browser, server_url)
    page.get_by_label("Text to read").fill(TEXT + " " + TEXT)
    page.get_by_role("button", name="Read").click()
    page.wait_for_function("window.readAlong.spoken.length >= 1", timeout=60000)
    page.get_by_role("button", name="Stop").click()
    assert page.locator("#status").text_content() == "Stopped."
    assert page.evaluate("window.readAlong.context.state") == "closed"
    assert page.evaluate("CSS.highlights.has('spoken')") is False
    assert page.get_by_role("button", name="Read").is_enabled() and page.get_by_role("button", name="Stop").is_disabled()
    page.close()
