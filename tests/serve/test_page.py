"""`r1omni serve` in a real headless browser: Debian's chromium driven by Playwright.

The browser is found at $R1OMNI_CHROMIUM (default /usr/bin/chromium); without it these tests
skip, saying how to install it, except where $R1OMNI_REQUIRE_BROWSER=1 (CI) makes that a
failure. Screenshots go to $R1OMNI_TEST_ARTIFACTS (default test-artifacts/) under serve/.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from r1omni.labels import ALL_LABELS

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("R1OMNI_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("R1OMNI_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "serve"
# Headless, and nothing fetched from elsewhere: this machine's network is closed.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(args: list[str], cwd: Path):
    """`r1omni serve ARGS` on a free localhost port until the block ends; yields its URL."""
    port = _free_port()
    log = (cwd / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "r1omni.cli", "serve", "--port", str(port), *args],
                              cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise AssertionError(f"r1omni serve exited: {(cwd / 'serve.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"r1omni serve did not answer: {(cwd / 'serve.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        message = (f"no chromium at {CHROMIUM}: `apt-get install -y chromium` (Debian), or set R1OMNI_CHROMIUM "
                   "to a Chromium executable")
        if os.environ.get("R1OMNI_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_url(tiny_model, tmp_path_factory):
    """The page for a tiny model, with a 1 MB upload cap so that an oversized file is cheap."""
    with serving(["--model", str(tiny_model), "--max-new-tokens", "12", "--max-upload-mb", "1"],
                 tmp_path_factory.mktemp("serve")) as url:
        yield url


@contextmanager
def opened(browser, url: str, width: int = 1280, height: int = 1000):
    """A page at `url`; on leaving, every request it made must have gone to the server."""
    page = browser.new_page(viewport={"width": width, "height": height})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_selector("h1", timeout=WAIT_MS)
    yield page
    page.close()
    served = urlparse(url).netloc
    elsewhere = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                 and urlparse(u).netloc != served]
    assert not elsewhere, f"the page reached beyond the server: {elsewhere[:5]}"


def _toasts(page) -> list[str]:
    page.wait_for_selector(".toast-body", timeout=WAIT_MS)
    return [toast.inner_text() for toast in page.locator(".toast-body").all()]


def _check_clip_result(page, labels: int, frames: bool = True) -> None:
    page.wait_for_selector("#clip-answer h2", timeout=WAIT_MS)
    assert page.inner_text("#clip-answer h2").strip()
    assert page.input_value("#clip-reasoning textarea").strip()
    chart = page.inner_text("#clip-probabilities")
    assert chart.count("%") == labels, chart
    page.wait_for_selector("#clip-spectrogram img", timeout=WAIT_MS)
    assert (page.locator("#clip-frames img").count() >= 1) == frames


def test_a_clip_upload_shows_answer_reasoning_chart_frames_and_spectrogram(browser, page_url, world_dir):
    clip = world_dir / "clips" / "val" / "val_000000.mp4"
    with opened(browser, page_url) as page:
        page.locator("#clip-video input[type=file]").set_input_files(str(clip))
        page.click("#clip-run")
        _check_clip_result(page, labels=len(ALL_LABELS))  # the tiny model knows every emotion
        page.screenshot(path=str(ARTIFACTS / "clip-desktop.png"), full_page=True)


def test_an_audio_file_alone_is_recognised(browser, page_url, make_audio):
    with opened(browser, page_url) as page:
        page.locator("#clip-audio input[type=file]").set_input_files(str(make_audio("voice.wav")))
        page.get_by_label("audio only").first.check()
        page.click("#clip-run")
        _check_clip_result(page, labels=len(ALL_LABELS), frames=False)


def test_a_corrupt_file_shows_a_message_naming_it(browser, page_url, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video at all")
    with opened(browser, page_url) as page:
        page.locator("#clip-video input[type=file]").set_input_files(str(broken))
        page.click("#clip-run")
        page.wait_for_function("() => [...document.querySelectorAll('.toast-body')]"
                               ".some(t => t.innerText.includes('not a readable media file'))", timeout=WAIT_MS)
        message = next(t for t in _toasts(page) if "not a readable media file" in t)
        assert "broken.mp4: not a readable media file" in message and "Traceback" not in message
        assert "/tmp/" not in message  # the upload's name, not the server's copy
        page.screenshot(path=str(ARTIFACTS / "corrupt-file.png"))


def test_an_oversized_upload_is_refused(browser, page_url, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(2 * 2**20))
    with opened(browser, page_url) as page:
        page.locator("#clip-video input[type=file]").set_input_files(str(big))
        message = " ".join(_toasts(page))
        assert "exceed the maximum allowed size of 1.0 Mb" in message and "big.mp4" in message
        page.screenshot(path=str(ARTIFACTS / "oversized-upload.png"))


def test_an_example_on_a_phone_width_window(browser, page_url):
    with opened(browser, page_url, width=390, height=844) as page:
        page.locator("button:has-text('synthetic:')").first.click()
        page.wait_for_selector("#clip-video video", timeout=WAIT_MS)
        page.click("#clip-run")
        _check_clip_result(page, labels=len(ALL_LABELS))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
        page.screenshot(path=str(ARTIFACTS / "clip-phone.png"), full_page=True)


def test_a_batch_with_a_manifest_shows_table_scores_confusion_and_downloads(browser, page_url, world_dir,
                                                                            tmp_path):
    clips = sorted((world_dir / "clips" / "val").glob("*.mp4"))[:3]
    manifest = tmp_path / "labels.jsonl"
    manifest.write_text("".join(json.dumps({"id": c.stem, "label": "happy", "dataset": "mine",
                                            "video": f"clips/{c.name}", "audio": f"clips/{c.name}"}) + "\n"
                                for c in clips))
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    manifest.write_text(manifest.read_text() + json.dumps({"id": "broken", "label": "sad", "dataset": "mine",
                                                           "video": "broken.mp4"}) + "\n")
    with opened(browser, page_url) as page:
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-files input[type=file]").set_input_files([str(c) for c in clips]
                                                                       + [str(broken), str(manifest)])
        page.wait_for_timeout(1000)
        page.click("#batch-run")
        page.wait_for_function("() => document.querySelector('#batch-summary')?.innerText.includes('UAR')",
                               timeout=WAIT_MS)
        summary = page.inner_text("#batch-summary")
        assert "4 clips, 1 could not be read" in summary and "WAR" in summary
        table = page.inner_text("#batch-table")
        assert all(c.stem in table for c in clips) and "broken.mp4: not a readable media file" in table
        page.wait_for_selector("#batch-confusion img", timeout=WAIT_MS)
        links = {Path(urlparse(a.get_attribute("href")).path).name: a.get_attribute("href")
                 for a in page.locator("#batch-downloads a[href]").all()}
        assert set(links) == {"predictions.jsonl", "predictions.csv"}, links
        with urllib.request.urlopen(urllib.parse.urljoin(page_url, links["predictions.jsonl"])) as download:
            rows = [json.loads(line) for line in download.read().decode().splitlines()]
        assert [r["id"] for r in rows] == [c.stem for c in clips] + ["broken"]
        page.screenshot(path=str(ARTIFACTS / "batch.png"), full_page=True)


def test_without_a_model_the_page_says_how_to_get_one(browser, tmp_path):
    with serving([], tmp_path) as url, opened(browser, url) as page:  # no runs/demo here
        text = page.inner_text("#no-model")
        assert "r1omni demo" in text and "--model DIR" in text


def test_without_a_model_option_the_demos_final_model_is_served(browser, tiny_model, tmp_path):
    final = tmp_path / "runs" / "demo" / "grpo" / "final"
    shutil.copytree(tiny_model, final)
    with serving(["--max-new-tokens", "4"], tmp_path) as url, opened(browser, url) as page:
        header = page.inner_text("#header")
        assert "Model: grpo/final" in header and str(tmp_path) not in page.content()  # a name, not a path
        assert "stay on the server's disk for 10 minutes" in header
        page.wait_for_selector("#clip-run", timeout=WAIT_MS)
        page.get_by_role("tab", name="Batch").click()
        page.wait_for_selector("#batch-run", timeout=WAIT_MS)
        assert page.locator("#batch-manifest").count() == 0  # no data folder: no server paths asked for


def test_a_login_guards_the_page_when_asked(browser, tiny_model, tmp_path):
    (tmp_path / "logins").write_text("ada:correct horse\n")
    with serving(["--model", str(tiny_model), "--auth", "logins", "--max-new-tokens", "4"], tmp_path) as url:
        with pytest.raises(urllib.error.HTTPError):  # the API answers no one without the login
            urllib.request.urlopen(urllib.parse.urljoin(url, "config"), timeout=10)
        page = browser.new_page()
        page.goto(url)
        page.fill("input[type=text]", "ada")
        page.fill("input[type=password]", "wrong")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Incorrect Credentials", timeout=WAIT_MS)
        page.fill("input[type=text]", "ada")
        page.fill("input[type=password]", "correct horse")
        page.get_by_role("button", name="Login").click()
        try:
            page.wait_for_selector("#clip-run", timeout=WAIT_MS)
        finally:
            page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
        page.close()


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "r1omni.cli", "serve", "--port", str(port)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"cannot serve on 127.0.0.1:{port}" in done.stderr and "choose another --port" \
        in done.stderr and "Traceback" not in done.stderr


def test_a_speech_models_claims_are_marked_against_the_measured_sound(browser, tiny_model, tmp_path_factory):
    from voice_levels import trained_speech_model, voice

    work = tmp_path_factory.mktemp("speech")
    model = trained_speech_model(tiny_model, work / "model")
    with serving(["--model", str(model), "--max-new-tokens", "128"], work) as url, opened(browser, url) as page:
        page.locator("#clip-audio input[type=file]").set_input_files(str(voice(work / "new.wav", 180)))
        page.click("#clip-run")
        page.wait_for_selector("#clip-answer h2", timeout=WAIT_MS)
        page.wait_for_function("() => document.querySelector('#clip-claims-table')?.innerText.includes('holds')",
                               timeout=WAIT_MS)
        table = page.inner_text("#clip-claims-table")
        assert "low-pitched" in table and "holds (true)" in table, table
        assert "matches the measured sound" in page.inner_text("#clip-claims")  # the legend of the marks
        page.screenshot(path=str(ARTIFACTS / "claims.png"), full_page=True)


def test_a_talking_face_shows_the_face_crops_the_model_saw(browser, face_model, talking_faces, tmp_path_factory):
    """A clip assembled from a real CK+ face and real Emo-DB speech (not recorded together): the
    gallery shows the crops, each captioned with where the face search found the face."""
    _, written = talking_faces
    work = tmp_path_factory.mktemp("faces")
    with serving(["--model", str(face_model), "--max-new-tokens", "8"], work) as url, opened(browser, url) as page:
        page.locator("#clip-video input[type=file]").set_input_files(str(written[0]))
        page.click("#clip-run")
        page.wait_for_selector("#clip-frames img", timeout=WAIT_MS)
        assert page.locator("#clip-frames img").count() >= 1
        page.wait_for_function("() => document.querySelector('#clip-frames')?.innerText.includes('face found')",
                               timeout=WAIT_MS)
        page.screenshot(path=str(ARTIFACTS / "face-crops.png"), full_page=True)
