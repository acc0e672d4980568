"""The chat in a real browser: Playwright (PyPI) driving Debian's Chromium (`apt-get install chromium`)."""

from __future__ import annotations

import sqlite3
from urllib.parse import unquote

import pytest

from faqbot.config import Settings
from faqbot.service import corpus_config

EXAMPLES = corpus_config(Settings()).example_questions()  # the served corpus's own (corpora/mindspore.toml)

pytestmark = pytest.mark.browser

BOT = '[data-testid="bot"]'
USER = '[data-testid="user"]'
TIMEOUT_MS = 60_000  # a generous ceiling for a busy CI machine, not a speed assertion

ZH_Q = "pip安装MindSpore对Python版本是否有特别要求？"
EN_Q = "Does pip installation of MindSpore require a specific Python version?"



@pytest.fixture
def page(browser, web_app):
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(web_app.url)  # never wait for networkidle: Gradio keeps a heartbeat open
    page.locator("#question textarea").wait_for()
    yield page
    context.close()


def _ask(page, text: str) -> None:
    before = page.locator(BOT).count()
    box = page.locator("#question textarea")
    box.fill(text)
    box.press("Enter")
    _wait_for_bot_count(page, before + 1)


def _wait_for_bot_count(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length >= {n}", timeout=TIMEOUT_MS)
    page.locator(".options .option").first.wait_for()


def _href(link) -> str:
    return unquote(link.get_attribute("href"))


def _rows(db, sql: str, *params):
    """Rows from the feedback log; none while the app has not created it yet (read-only: never create it here)."""
    try:
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []


def _wait_for_rows(page, db, sql: str, *params):
    """A vote travels over the queue after the click: poll the log until its row is there."""
    for _ in range(TIMEOUT_MS // 100):
        rows = _rows(db, sql, *params)
        if rows:
            return rows
        page.wait_for_timeout(100)
    return []


def test_chat_answers_zh_and_en_links_sources_follows_a_suggestion_and_logs_a_thumbs_down(page, web_app, retriever):
    zh_top = retriever.search(ZH_Q).hits[0]
    _ask(page, ZH_Q)
    bot = page.locator(BOT).last
    assert zh_top.entry.question.split()[0] in bot.locator("h3").inner_text()
    assert _href(bot.get_by_role("link", name="文档页面")) == zh_top.entry.url
    assert _href(bot.get_by_role("link", name="源文件")) == zh_top.entry.source_url
    assert "置信度" in bot.inner_text()

    en_top = retriever.search(EN_Q).hits[0]
    _ask(page, EN_Q)
    bot = page.locator(BOT).last
    assert en_top.item.id == zh_top.item.id
    assert bot.locator("h3").inner_text().startswith(en_top.entry.question.split()[0])
    assert _href(bot.get_by_role("link", name="Docs page")) == en_top.entry.url
    assert _href(bot.get_by_role("link", name="Source file")) == en_top.entry.source_url

    options = page.locator(".options .option")
    assert 2 <= options.count() <= 4
    suggestion = options.first.inner_text().strip()
    before = page.locator(BOT).count()
    options.first.click()
    _wait_for_bot_count(page, before + 1)
    assert page.locator(USER).last.inner_text().strip() == suggestion
    asked = retriever.search(suggestion)
    answered_id = asked.hits[0].item.id

    page.get_by_role("button", name="Dislike").last.click()
    sql = "SELECT item_id, vote, lang, in_scope, score, time FROM feedback WHERE question = ? AND vote = -1"
    rows = _wait_for_rows(page, web_app.db, sql, suggestion)
    assert len(rows) == 1
    item_id, vote, lang, in_scope, score, time = rows[0]
    assert (item_id, vote, lang) == (answered_id, -1, "en")
    assert score == pytest.approx(asked.confidence, abs=1e-4) and time


def test_off_topic_question_offers_closest_questions_and_is_logged(page, web_app):
    question = "红烧肉怎么做才好吃？"
    _ask(page, question)
    bot = page.locator(BOT).last
    assert "MindSpore FAQ 中没有涵盖这个问题" in bot.inner_text()
    assert 2 <= page.locator(".options .option").count() <= 4
    assert web_app.store.flush(10)  # logged off the request path: wait for the writer
    rows = _rows(web_app.db, "SELECT vote, in_scope, lang FROM feedback WHERE question = ?", question)
    assert rows == [(0, 0, "zh")]


def test_first_screen_has_intro_bilingual_examples_and_filters(page, web_app):
    assert "MindSpore" in page.locator("#intro").inner_text()
    for example in EXAMPLES:
        assert page.locator("#faq-chat").get_by_role("button", name=example).is_visible()
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in EXAMPLES)
    assert any(t.isascii() for t in EXAMPLES)
    version = page.locator("#version-filter")
    assert version.get_by_label("Newest · 最新").is_checked()
    assert version.get_by_label("r1.1").count() == 1 and version.get_by_label("All · 全部").count() == 1
    assert page.locator("#component-filter input").input_value() == "All components · 全部组件"


def test_clicking_an_example_asks_it(page):
    page.locator("#faq-chat").get_by_role("button", name=EXAMPLES[0]).click()
    _wait_for_bot_count(page, 1)
    assert page.locator(USER).first.inner_text().strip() == EXAMPLES[0]
    assert page.locator(BOT).first.locator("h3").count() == 1  # answered, not "not covered"


def test_version_filter_r11_answers_from_r11(page):
    page.locator("#version-filter").get_by_label("r1.1").check()
    _ask(page, ZH_Q)
    assert "r1.1" in page.locator(BOT).last.inner_text()


def test_script_in_question_is_shown_as_text_and_never_runs(page):
    typed = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> <b>bold</b> 怎么安装？"
    _ask(page, typed)
    assert page.locator(USER).last.inner_text().strip() == typed
    assert page.evaluate("window.__pwned") is None
    assert page.locator(f"{USER} b, {USER} img, {USER} script").count() == 0


def test_empty_message_is_ignored_politely(page):
    box = page.locator("#question textarea")
    box.fill("   ")
    box.press("Enter")
    page.get_by_text("Please type a question first").wait_for()
    assert page.locator(BOT).count() == 0 and page.locator(USER).count() == 0


def test_ten_thousand_character_paste_gets_a_reply_and_the_chat_stays_usable(page):
    _ask(page, ("MindSpore pip install error " * 400)[:10_000])
    assert "2,000" in page.locator(BOT).last.inner_text()
    _ask(page, EN_Q)
    assert page.locator(BOT).count() == 2
    assert page.locator(BOT).last.get_by_role("link", name="Docs page").count() == 1


def test_related_reply_shows_its_best_entry_expanded_under_a_clear_header(page, web_app, retriever):
    question = "ImportError: cannot import name 'Cell' from 'mindspore.nn.layer' after upgrading"
    expected = retriever.search(question)
    assert expected.match == "related", "precondition: the FAQ has no sure answer to this error"
    _ask(page, question)
    bot = page.locator(BOT).last
    text = bot.inner_text()
    assert "May be related · 可能相关" in text
    assert "not covered" not in text
    title = bot.locator("h3").first.inner_text().strip()
    assert title == " ".join(expected.hits[0].entry.question.split()).replace("`", "")
    assert "Confidence:" in text  # the best entry is shown in full, with its confidence level
    assert 2 <= page.locator(".options .option").count() <= 4  # the other entries, one click away
