"""End-to-end test of the web page in a real browser: uvicorn on 127.0.0.1 (free port, background thread),
Debian's /usr/bin/chromium driven headless by Playwright (never a browser Playwright downloads).

Skips only when chromium or the playwright package is missing. Set FAK3ZER0_UPDATE_SCREENSHOT=1 to refresh
docs/img/web.png (it is also written when missing).
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]
DOCS_SCREENSHOT = REPO / "docs" / "img" / "web.png"

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

from fak3zer0.server import Settings, create_app  # noqa: E402
from fak3zer0.server.testing import LiveServer  # noqa: E402


def pick_sample(tmp_path_factory) -> tuple[Path, str]:
    """A real fake video from the shared dev set when present (the smallest full-frame one), else one of its
    fake face images, else the generated astronaut clip. Returns (path, frames to sample)."""
    from fak3zer0.paths import dev_data_dir

    dev = dev_data_dir()
    if dev:
        videos = sorted((dev / "videos" / "fake").glob("*.mp4"), key=lambda p: ("facecrop" in p.name, p.stat().st_size))
        if videos:
            return videos[0], "8"
        images = sorted((dev / "images" / "fake").glob("*.jpg")) + sorted((dev / "images" / "fake").glob("*.png"))
        if images:
            return images[0], "1"
    from fak3zer0.samples import make_samples

    return make_samples(tmp_path_factory.getbasetemp() / "fak3zer0-server-media")[1], "8"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from fak3zer0.models import create_model
    from fak3zer0.models.checkpoint import save_checkpoint

    tmp = tmp_path_factory.mktemp("browser")
    ckpt = save_checkpoint(tmp / "tiny-web.pt", create_model("meso4"))
    settings = Settings(data_dir=tmp / "data", models=[str(ckpt)], frames=8, threads=1, device="cpu")
    with LiveServer(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_upload_in_browser_shows_verdict_chart_and_heatmap(live, browser, tmp_path_factory, tmp_path):
    sample, frames = pick_sample(tmp_path_factory)
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    try:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(live + "/")
        wait_until(page, "document.querySelector('#model-select').options.length > 0")
        assert page.get_by_role("status").inner_text().startswith("Ready")

        # choose the file through its labelled input (what drag-and-drop also fills), set frames, submit
        page.get_by_label("Drop a video or image here").set_input_files(str(sample))
        page.locator("details.options summary").click()
        page.get_by_label("Frames to sample from a video").fill(frames)
        submit = page.get_by_role("button", name="Analyse")
        assert submit.is_enabled()
        submit.click()

        wait_until(page, "document.querySelector('#status').textContent.startsWith('Analysis finished')",
                               timeout=120_000)
        verdict = page.locator("#verdict")
        text = verdict.inner_text()
        assert verdict.get_attribute("data-verdict") in ("fake", "real"), text
        assert text.startswith(("Likely FAKE", "Likely REAL"))
        assert page.locator("#fact-model").inner_text().startswith("tiny-web")
        assert page.locator("#analysis-progress").get_attribute("value") == "100"
        assert page.locator("#upload-progress").get_attribute("value") == "100"

        # the chart: a canvas with drawn (non-transparent) pixels and a text summary
        drawn = page.evaluate("""() => {
            const c = document.querySelector('#chart');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n; }""")
        assert drawn > 500, drawn
        assert "Face 0" in page.locator("#chart-summary").inner_text()

        # the heat map image of each face loaded (fetched from the API)
        wait_until(page, "[...document.querySelectorAll('#faces img')].length > 0 && "
                               "[...document.querySelectorAll('#faces img')].every(i => i.complete && i.naturalWidth > 0)",
                               timeout=30_000)
        widths = page.evaluate("[...document.querySelectorAll('#faces img')].map(i => i.naturalWidth)")
        assert widths and all(w > 0 for w in widths)

        # history lists it; opening it again works from the list (keyboard)
        item = page.locator("#history li button").first
        assert sample.name in item.inner_text()
        item.focus()
        page.keyboard.press("Enter")
        wait_until(page, "document.querySelector('#status').textContent.startsWith('Showing')")

        shot = tmp_path / "web.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("FAK3ZER0_UPDATE_SCREENSHOT") or not DOCS_SCREENSHOT.exists():
            save_docs_screenshot(shot, DOCS_SCREENSHOT)

        # phone width: nothing wider than the screen
        page.set_viewport_size({"width": 375, "height": 800})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, overflow
        assert not errors, errors
    finally:
        page.close()


def test_page_asks_for_the_token_and_sends_it(browser, tmp_path):
    from fak3zer0.models import create_model
    from fak3zer0.models.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "guarded.pt", create_model("meso4"))
    settings = Settings(data_dir=tmp_path / "data", models=[str(ckpt)], token="let-me-in", threads=1, device="cpu")
    with LiveServer(create_app(settings)) as url:
        page = browser.new_page(viewport={"width": 375, "height": 800})   # phone width
        try:
            page.goto(url + "/")
            field = page.get_by_label("This server needs an API token")
            field.wait_for(state="visible")
            field.fill("wrong")
            field.press("Enter")                                  # keyboard only
            wait_until(page, "document.querySelector('#token-error').textContent.includes('not accepted')")
            field.fill("let-me-in")
            page.get_by_role("button", name="Use token").click()
            wait_until(page, "document.querySelector('#status').textContent.startsWith('Ready')")
            assert page.locator("#token-section").is_hidden()
            assert page.locator("#model-select option").first.text_content().startswith("guarded")
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
        finally:
            page.close()


def wait_until(page, js: str, timeout: float = 30_000) -> None:
    """Poll a JS expression until truthy. (Playwright's wait_for_function evaluates a string inside the
    page, which the page's Content-Security-Policy rightly forbids; page.evaluate is not subject to it.)"""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(js):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {js}; status: {page.locator('#status').inner_text()!r}")
        time.sleep(0.1)


def save_docs_screenshot(src: Path, dst: Path, limit: int = 300_000) -> None:
    """Copy the screenshot for the docs, palette-compressed to stay under ``limit`` bytes."""
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.stat().st_size <= limit:
        shutil.copyfile(src, dst)
        return
    with Image.open(src) as im:
        im = im.convert("RGB")
        for colours, scale in ((256, 1.0), (128, 1.0), (128, 0.75), (64, 0.6)):
            small = im.resize((int(im.width * scale), int(im.height * scale))) if scale < 1 else im
            small.quantize(colours, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
            if dst.stat().st_size <= limit:
                return
