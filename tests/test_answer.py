"""How answers read: user's language and labels, sources, confidence, honest "not covered", safe text."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

from faqbot.answer import (
    LABELS,
    Bands,
    confidence_level,
    escape_markdown,
    render_markdown,
    render_text,
    safe_markdown,
    suggestions,
)
from faqbot.config import Settings
from faqbot.schema import Hit, SearchResult
from faqbot.service import corpus_config

ZH_Q = "pip安装MindSpore对Python版本是否有特别要求？"
EN_Q = "Does pip installation of MindSpore require a specific Python version?"
OFF_TOPIC_ZH = "红烧肉怎么做才好吃？"
OFF_TOPIC_EN = "What is the best pizza topping in Naples?"

_md = MarkdownIt("commonmark").enable("table")
MINDSPORE = corpus_config(Settings())  # the served corpus's texts (corpora/mindspore.toml), as the service passes them


def _html(markdown: str) -> str:
    return _md.render(markdown)


def _labels_absent(text: str, lang: str) -> bool:
    other = LABELS["en" if lang == "zh" else "zh"]
    return all(other[key] not in text for key in ("confidence", "version", "component", "docs", "source"))


def test_zh_question_gets_zh_answer_with_zh_labels(retriever):
    result = retriever.search(ZH_Q)
    assert result.lang == "zh" and result.in_scope
    md = render_markdown(result)
    top = result.hits[0]
    assert md.startswith("### ")
    assert top.entry.lang == "zh"
    for key in ("confidence", "version", "component", "docs", "source"):
        assert LABELS["zh"][key] in md
    assert _labels_absent(md, "zh")


def test_en_question_gets_en_answer_with_en_labels(retriever):
    result = retriever.search(EN_Q)
    assert result.lang == "en" and result.in_scope
    md = render_markdown(result)
    assert result.hits[0].entry.lang == "en"
    for key in ("confidence", "version", "component", "docs", "source"):
        assert LABELS["en"][key] in md
    assert _labels_absent(md, "en")


def test_zh_and_en_question_about_same_entry_link_the_same_item_in_each_language(retriever):
    zh, en = retriever.search(ZH_Q), retriever.search(EN_Q)
    assert zh.hits[0].item.id == en.hits[0].item.id
    zh_md, en_md = render_markdown(zh), render_markdown(en)
    item = zh.hits[0].item
    for lang, md in (("zh", zh_md), ("en", en_md)):
        entry = item.entries[lang]
        assert entry.question.split()[0] in md.splitlines()[0]
        links = [unquote(u) for u in re.findall(r"\]\((https?://[^)\s]+)\)", md)]
        assert entry.url in links and entry.source_url in links
    assert "/zh-CN/" in item.entries["zh"].url or "source_zh_cn" in item.entries["zh"].source_url
    assert "source_en" in item.entries["en"].source_url


def test_answer_title_and_body_render_as_markdown(retriever):
    result = retriever.search(ZH_Q)
    html = _html(render_markdown(result))
    assert html.startswith("<h3>")
    hrefs = [unquote(h) for h in re.findall(r'<a href="([^"]+)"', html)]
    assert result.hits[0].entry.url in hrefs and result.hits[0].entry.source_url in hrefs


def test_answer_keeps_code_blocks_and_lists(corpus):
    entry = next(e for e in corpus.entries if "```" in e.answer and re.search(r"^\s*(\d+\.|-|\*) ", e.answer, re.M))
    item = next(i for i in corpus.items if entry in i.entries.values())
    html = _html(render_markdown(SearchResult(entry.question, entry.lang, True, [Hit(item, 0.9, entry.lang)], confidence=1.2)))
    assert "<pre><code" in html
    assert "<li>" in html


def _not_covered(retriever, question: str) -> SearchResult:
    """The search result for `question` as the bot reports it when it has no answer (its hits are suggestions)."""
    return replace(retriever.search(question), in_scope=False)


@pytest.mark.parametrize(("question", "lang", "phrase"), [(OFF_TOPIC_ZH, "zh", "MindSpore FAQ 中没有涵盖这个问题"), (OFF_TOPIC_EN, "en", "not covered by the MindSpore FAQ")])
def test_not_covered_reply_is_honest_in_users_language_with_closest_questions(retriever, question, lang, phrase):
    result = _not_covered(retriever, question)
    assert result.lang == lang
    md = render_markdown(result, config=MINDSPORE)
    assert phrase in md
    offered = suggestions(result)
    assert 2 <= len(offered) <= 4
    assert offered[0] == " ".join(result.hits[0].entry.question.split())
    for q in offered:
        assert safe_markdown(q) in md
    assert "### " not in md  # no answer pretends to be the answer


def test_every_answer_offers_two_to_four_related_questions_not_itself(retriever):
    for q in (ZH_Q, EN_Q):
        result = retriever.search(q)
        related = retriever.related(result.hits[0].item.id, result.lang, k=3)
        offered = suggestions(result, related)
        assert 2 <= len(offered) <= 4
        assert " ".join(result.hits[0].entry.question.split()) not in offered
        assert len(set(offered)) == len(offered)


def test_chat_markdown_points_to_suggestion_buttons_instead_of_listing_them(retriever):
    result = retriever.search(EN_Q)
    related = retriever.related(result.hits[0].item.id, result.lang, k=3)
    md = render_markdown(result, related=related, list_suggestions=False)
    assert LABELS["en"]["related_click"] in md
    assert all(safe_markdown(q) not in md for q in suggestions(result, related))


def test_confidence_indicator_follows_given_bands():
    bands = Bands(high=0.9, medium=0.8)
    assert [confidence_level(s, bands) for s in (0.95, 0.9, 0.85, 0.8, 0.5)] == ["high", "high", "medium", "medium", "low"]
    assert confidence_level(0.85, Bands(high=0.84, medium=0.5)) == "high"


def test_confidence_indicator_uses_the_results_confidence_in_users_language(retriever):
    result = retriever.search(ZH_Q)
    just_below, just_above = result.confidence - 0.01, result.confidence + 0.01
    high = render_markdown(result, bands=Bands(high=just_below, medium=just_below - 1))
    medium = render_markdown(result, bands=Bands(high=just_above, medium=just_below))
    low = render_markdown(result, bands=Bands(high=just_above + 1, medium=just_above))
    label = LABELS["zh"]["confidence"]
    assert f"**{label}:** {LABELS['zh']['high']}" in high
    assert f"**{label}:** {LABELS['zh']['medium']}" in medium
    assert f"**{label}:** {LABELS['zh']['low']}" in low


def test_item_only_in_other_language_carries_a_fallback_note(corpus):
    item = next(i for i in corpus.items if not i.bilingual)
    lang = "en" if item.langs == ("zh",) else "zh"
    md = render_markdown(SearchResult("q", lang, True, [Hit(item, 0.9, lang)], confidence=1.2))
    assert LABELS[lang]["fallback"] in md
    assert item.entry(lang).question.split()[0] in md


def test_script_in_faq_text_is_shown_as_text_and_code_is_untouched():
    md = "\n\n".join(
        [
            "Run <script>alert(1)</script> or <img src=x onerror=alert(2)> with `a<b>c` inline.",
            "See <https://www.mindspore.cn> and <hostname>.",
            "```python\nx = '<script>kept in code</script>'\n```",
            '<table><tr><td onclick="steal()" rowspan="2">cell<br/>next</td></tr></table>',
        ]
    )
    safe = safe_markdown(md)
    html = _html(safe)
    assert "<p>Run &lt;script&gt;alert(1)&lt;/script&gt; or &lt;img src=x onerror=alert(2)&gt; with <code>a&lt;b&gt;c</code> inline.</p>" in html
    assert '<a href="https://www.mindspore.cn">https://www.mindspore.cn</a> and &lt;hostname&gt;.' in html
    assert "x = '&lt;script&gt;kept in code&lt;/script&gt;'" in html
    assert '<td rowspan="2">cell<br/>next</td>' in html
    assert "onclick" not in html
    assert "<script" not in html and "<img" not in html


def test_code_blocks_nested_in_lists_keep_angle_brackets():
    md = "1. Run it:\n\n    ```text\n    Current thread (most recent call first):\n    <no Python frame>\n    ```\n\n2. Then <stop>."
    html = _html(safe_markdown(md))
    assert "<code class=\"language-text\">Current thread (most recent call first):\n&lt;no Python frame&gt;\n</code>" in html
    assert "Then &lt;stop&gt;." in html


@pytest.mark.slow  # every entry of the corpus
def test_code_blocks_in_real_faq_entries_are_untouched(corpus):
    md = MarkdownIt("commonmark")
    for entry in corpus.entries:
        before = [t.content for t in md.parse(entry.answer) if t.type in ("fence", "code_block")]
        after = [t.content for t in md.parse(safe_markdown(entry.answer)) if t.type in ("fence", "code_block")]
        assert after == before, entry.id


_ALLOWED_TAG = re.compile(r"</?(br|table|thead|tbody|tr|td|th|p|b|i|em|strong|sub|sup|ul|ol|li)(\s+(rowspan|colspan|align)=\"[\w -]+\")*\s*/?>")


@pytest.mark.slow  # every entry of the corpus
def test_no_raw_html_survives_in_any_real_faq_entry(corpus):
    md = MarkdownIt("commonmark")
    for entry in corpus.entries:
        for text in (entry.question, entry.answer):
            for token in md.parse(safe_markdown(text)):
                children = token.children or [token]
                for t in children:
                    if t.type in ("html_inline", "html_block"):
                        for tag in re.findall(r"<[^>]*>", t.content):
                            assert _ALLOWED_TAG.fullmatch(tag), (entry.id, tag)


def test_user_text_is_escaped_to_show_exactly_what_was_typed():
    typed = "<script>alert(1)</script> **not bold** `x` [a](javascript:alert(1)) # hi\n    indented"
    html = _html(escape_markdown(typed))
    assert "<script" not in html and "<strong>" not in html and "<code>" not in html and "<a " not in html and "<h1>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "**not bold**" in html


def test_empty_question_gets_a_polite_prompt(fake_retriever):
    result = fake_retriever.search("   ")
    md = render_markdown(result)
    assert md and "Traceback" not in md
    assert "question" in md.lower() or "问题" in md


def test_long_paste_answer_carries_the_note(fake_retriever):
    result = fake_retriever.search("How do I install MindSpore with pip? " * 300)
    assert result.message
    md = render_markdown(result)
    assert md.startswith("> **")
    assert len(md) < 20_000


def test_render_text_for_terminal_has_answer_and_sources(retriever):
    result = retriever.search(EN_Q)
    text = render_text(result)
    top = result.hits[0]
    assert text.splitlines()[0] == " ".join(top.entry.question.split())
    assert top.entry.url in text and top.entry.source_url in text
    assert "###" not in text and "<br" not in text
    assert LABELS["en"]["confidence"] in text


def test_render_text_for_terminal_says_not_covered_in_chinese(retriever):
    result = _not_covered(retriever, OFF_TOPIC_ZH)
    text = render_text(result, config=MINDSPORE)
    assert text.startswith("MindSpore FAQ 中没有涵盖这个问题")
    assert " ".join(result.hits[0].entry.question.split()) in text
