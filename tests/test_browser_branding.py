"""The chat served from another team's FAQ (tests/fixtures/faqs/branded and its faqbot.toml) shows that FAQ's
title, banner, intro, examples, entry links and not-covered text with its fallback links: the Blocks as built
(fast tier) and the page in a real browser (Playwright + Debian's Chromium). HashEmbedder, no model."""

from __future__ import annotations

import socket
import urllib.parse

import pytest

from conftest import BRANDED_DIR
from faqbot.config import Settings

OFF_TOPIC = "What is the capital of France?"
SEARCH = "https://gadget.example/search?q=" + urllib.parse.quote(OFF_TOPIC)
EXAMPLES = ["Gadget 怎么恢复出厂设置？", "How do I pair my Gadget with a phone?", "Why does sync stop at 99%?"]
BOT = '[data-testid="bot"]'
TIMEOUT_MS = 60_000  # a generous ceiling for a busy CI machine, not a speed assertion


def _settings(tmp_path) -> Settings:
    return Settings(corpus_dir=BRANDED_DIR, feedback_db=tmp_path / "feedback.sqlite3")


def test_the_blocks_carry_the_corpus_title_intro_and_examples(branded_retriever, tmp_path):
    import gradio as gr

    from faqbot.web import build_blocks

    demo = build_blocks(branded_retriever, _settings(tmp_path))
    try:
        assert demo.title == "Gadget help desk"
        blocks = list(demo.blocks.values())
        intro = next(b for b in blocks if isinstance(b, gr.Markdown) and b.elem_id == "intro")
        assert intro.value.splitlines() == ["## Gadget help desk · Gadget 帮助台",
                                            "Ask how to pair, sync or reset your Gadget.", "询问 Gadget 的配对、同步或重置。"]
        chat = next(b for b in blocks if isinstance(b, gr.Chatbot))
        assert [e["text"] for e in chat.examples] == EXAMPLES and chat.label == "Gadget FAQ"
        assert "MindSpore" not in str(demo.config)
    finally:
        demo.faqbot_chat.store.close()


@pytest.fixture(scope="module")
def branded_app(branded_retriever, tmp_path_factory):
    from faqbot.server import build_app, launch_options

    demo = build_app(branded_retriever, _settings(tmp_path_factory.mktemp("branded")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(demo))
    yield demo
    demo.close()
    demo.faqbot_chat.store.close()


def _ask(page, text: str) -> str:
    before = page.locator(BOT).count()
    box = page.locator("#question textarea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length >= {before + 1}", timeout=TIMEOUT_MS)
    return BOT + f" >> nth={before}"


@pytest.mark.browser
def test_the_chat_from_another_corpus_shows_its_title_examples_links_and_not_covered_text(browser, branded_app):
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(branded_app.local_url)  # never wait for networkidle: Gradio keeps a heartbeat open
        page.locator("#question textarea").wait_for()
        assert page.title() == "Gadget help desk"
        intro = page.locator("#intro").inner_text()
        assert "Gadget help desk · Gadget 帮助台" in intro and "Ask how to pair, sync or reset your Gadget." in intro
        for example in EXAMPLES:
            assert page.locator("#faq-chat").get_by_role("button", name=example).is_visible()
        assert "MindSpore" not in page.locator("body").inner_text()

        page.locator("#faq-chat").get_by_role("button", name=EXAMPLES[1]).click()
        page.locator(BOT).first.wait_for()
        answer = page.locator(BOT).first
        answer.locator("a[href='https://gadget.example/faq/en/pair']").wait_for()
        assert answer.locator("a[href='https://git.example/gadget/faq/blob/main/faq.csv']").count() == 1

        page.reload()  # a new conversation: asked after the pairing answer, it would be read as a follow-up
        page.locator("#question textarea").wait_for()
        reply = page.locator(_ask(page, OFF_TOPIC))
        reply.get_by_text("The Gadget FAQ has nothing on this yet.").wait_for()
        search = reply.get_by_role("link", name="Search the Gadget docs")
        assert urllib.parse.unquote(search.get_attribute("href")) == urllib.parse.unquote(SEARCH)
        assert reply.get_by_role("link", name="Ask the Gadget team").count() == 1
    finally:
        context.close()
