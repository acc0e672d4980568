"""Make docs/screenshot.png: the chat answering a real question, rendered by a real browser.

    python scripts/screenshot.py [--question "..."] [--out docs/screenshot.png]

Needs the `test` extra (playwright) and Debian's Chromium: `apt-get install -y chromium`; for Chinese text and
emoji in the picture also `apt-get install -y fonts-wqy-microhei fonts-noto-color-emoji`. The app runs in this
process on a free port with a throw-away feedback database, so the user's own log is never touched.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
DEFAULT_QUESTIONS = ["How can I merge two dataset columns into one?"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", action="append", help="question to ask (repeat for several)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshot.png")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1200)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"screenshot: {CHROMIUM} not found; install it with `apt-get install -y chromium`", file=sys.stderr)
        return 2
    questions = args.question or DEFAULT_QUESTIONS

    from playwright.sync_api import sync_playwright

    from faqbot.config import settings_from_env
    from faqbot.search import Retriever
    from faqbot.server import build_app, launch_options

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_env().with_(feedback_db=Path(tmp) / "feedback.sqlite3")
        demo = build_app(Retriever.from_settings(settings, rebuild=False), settings)
        demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True, **launch_options())
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height}, device_scale_factor=1)
                page.set_default_timeout(60_000)
                page.goto(demo.local_url)  # not networkidle: Gradio keeps a heartbeat open
                box = page.locator("#question textarea")
                for n, question in enumerate(questions, start=1):
                    box.fill(question)
                    box.press("Enter")
                    page.wait_for_function(f"document.querySelectorAll('[data-testid=\"bot\"]').length >= {n}")
                page.locator(".options .option").first.wait_for()
                box.blur()
                page.wait_for_timeout(800)  # let the scroll-to-bottom animation settle
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            demo.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
