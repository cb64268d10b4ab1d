"""Screenshots of a running `r1omni serve` page for the README: one example clip recognised, at
desktop and at phone width, in Debian's headless chromium; or, with --audio, a speech clip
uploaded to a speech model, its stated levels marked against the measured sound.

    r1omni serve --model runs/demo/grpo_faithful/final &
    python scripts/serve_screenshots.py --url http://127.0.0.1:7860/ --out docs/figures
    r1omni serve --model runs/emodb/grpo-faithful/final &
    python scripts/serve_screenshots.py --audio clip.wav --out docs/figures   # serve_speech_claims.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def shoot(browser, url: str, path: Path, width: int, height: int, example: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.locator("button:has-text('synthetic:')").nth(example).click()
    page.wait_for_selector("#clip-video video", timeout=60_000)
    page.click("#clip-run")
    page.wait_for_selector("#clip-spectrogram img", timeout=300_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(path), full_page=True)
    page.close()


def shoot_speech(browser, url: str, path: Path, audio: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.locator("#clip-audio input[type=file]").set_input_files(str(audio))
    page.click("#clip-run")
    page.wait_for_selector("#clip-spectrogram img", timeout=300_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(path), full_page=True)
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--example", type=int, default=0, help="which bundled example to recognise")
    parser.add_argument("--audio", type=Path, help="upload this speech clip instead (a speech model's page)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        if args.audio:
            shoot_speech(browser, args.url, args.out / "serve_speech_claims.png", args.audio)
            written = [args.out / "serve_speech_claims.png"]
        else:
            shoot(browser, args.url, args.out / "serve_desktop.png", 1280, 900, args.example)
            shoot(browser, args.url, args.out / "serve_phone.png", 390, 844, args.example)
            written = [args.out / "serve_desktop.png", args.out / "serve_phone.png"]
        browser.close()
    print("wrote " + " and ".join(map(str, written)))


if __name__ == "__main__":
    main()
