"""Conversations in a real browser (Playwright + Debian's Chromium): a follow-up question answered from the
chat's history, and the chat on a phone-sized screen (390x844)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

FIRST, FOLLOW, GOLD = "MindSpore Lite 怎么设置日志级别？", "一共有几种？", "master/lite/lite/b2817349"  # issue 11's example
BOT = '[data-testid="bot"]'
TIMEOUT_MS = 60_000  # a generous ceiling for a busy CI machine, not a speed assertion
PHONE = {"width": 390, "height": 844}



def _open(browser, url: str, viewport: dict, **context_options):
    context = browser.new_context(viewport=viewport, **context_options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)  # never wait for networkidle: Gradio keeps a heartbeat open
    page.locator("#question textarea").wait_for()
    return context, page


def _ask(page, text: str) -> None:
    before = page.locator(BOT).count()
    box = page.locator("#question textarea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length >= {before + 1}", timeout=TIMEOUT_MS)
    page.locator(".options .option").first.wait_for()


def test_follow_up_in_the_browser_is_answered_from_the_earlier_question(browser, web_app, retriever):
    gold = retriever.item(GOLD).entry("zh").question
    assert retriever.search(FOLLOW).match == "none"  # asked alone, it is "not covered"
    context, page = _open(browser, web_app.url, {"width": 1200, "height": 1000})
    try:
        _ask(page, FIRST)
        _ask(page, FOLLOW)
        bot = page.locator(BOT).last
        assert bot.locator("h3").inner_text().strip() == gold
        assert "没有涵盖" not in bot.inner_text()
    finally:
        context.close()


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return box


def test_on_a_phone_the_filters_fold_into_one_row_and_the_input_and_first_answer_are_in_view(browser, web_app):
    context, page = _open(browser, web_app.url, PHONE, is_mobile=True, has_touch=True)
    try:
        folded = page.locator("#filters").get_by_text("Filters · 筛选")
        folded.wait_for()
        page.wait_for_function("!document.querySelector('#version-filter') || "
                               "!document.querySelector('#version-filter').offsetParent")  # folded after load
        assert not page.locator("#version-filter").is_visible()
        assert not page.locator("#component-filter").is_visible()
        filters = _box(page, "#filters")
        assert filters["height"] < 70  # one row, not four rows of radios and a cut-off dropdown

        _ask(page, "MindSpore 支持 Windows 吗？")
        assert page.evaluate("window.scrollY") == 0  # nothing had to be scrolled past
        answer, box = _box(page, BOT), _box(page, "#question textarea")
        assert answer["y"] < PHONE["height"] and answer["y"] + answer["height"] > filters["y"] + filters["height"]
        assert page.locator(BOT).first.is_visible()
        assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"]  # the input stays on screen

        folded.click()  # the filters are one tap away
        page.locator("#version-filter").get_by_label("r1.1").wait_for(state="visible")
    finally:
        context.close()


def test_on_a_wide_screen_the_filters_are_shown_without_a_fold(browser, web_app):
    context, page = _open(browser, web_app.url, {"width": 1200, "height": 1000})
    try:
        page.locator("#version-filter").get_by_label("r1.1").wait_for(state="visible")
        assert page.locator("#component-filter").is_visible()
        assert not page.locator("#filters").get_by_text("Filters · 筛选").is_visible()
    finally:
        context.close()
