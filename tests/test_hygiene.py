"""Text hygiene (issue 9): lone surrogates, line-break characters in JSON lines, and link schemes from the corpus.

Fast tier: the real corpus pages, embedded by the conftest's HashEmbedder."""

from __future__ import annotations

import json
import re
import shutil
from types import SimpleNamespace

import pytest
from markdown_it import MarkdownIt

from faqbot.answer import json_line, link_scheme, safe_links, safe_markdown, scrub_text
from faqbot.config import Settings

# A renderer that follows every link, as a browser-side markdown renderer may: markdown-it's own scheme filter
# is switched off so the test sees exactly what our text would produce.
_BROWSER_LIKE = MarkdownIt("commonmark")
_BROWSER_LIKE.validateLink = lambda url: True
_HREF = re.compile(r"""\b(?:href|src)\s*=\s*["']?\s*([^"'\s>]*)""", re.IGNORECASE)

ATTACKS = [
    "![i](javascript:alert(1))",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1) 'title')",
    "[x](\njavascript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&#x3A;alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](<java script:alert(1)>)",
    "[x](%6aavascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![i](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)",
    "[x](vbscript:msgbox(1))",
    "[x](file:///etc/passwd)",
    "<javascript:alert(1)>",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "[x][ref]\n\n[ref]:\n  javascript:alert(1)",
    '<a href="javascript:alert(1)">x</a>',
    "<img src=' JaVaScript:alert(1)'>",
]

SAFE = ["[d](https://www.mindspore.cn/docs)", "[m](mailto:a@b.org)", "[r](../faq/installation.md#x)", "[a](#anchor)",
        "<https://gitee.com/mindspore/docs>", "[h](http://example.org/a_(b))"]


def _targets(md: str) -> list[str]:
    return _HREF.findall(_BROWSER_LIKE.render(md))


def _bad(targets: list[str]) -> list[str]:
    return [t for t in targets if link_scheme(t) not in (None, "http", "https", "mailto")]


@pytest.mark.parametrize("attack", ATTACKS)
def test_unsafe_link_schemes_from_the_corpus_never_reach_the_rendered_chat(attack):
    md = safe_markdown(f"See this: {attack} and more.")
    assert _bad(_targets(md)) == []


@pytest.mark.parametrize("attack", ATTACKS)
def test_unsafe_link_schemes_never_reach_json_consumers(attack):
    assert _bad(_targets(safe_links(attack))) == []


@pytest.mark.parametrize("link", SAFE)
def test_http_https_mailto_and_relative_links_are_kept_as_they_are(link):
    assert safe_links(link) == link
    assert _targets(safe_markdown(link)) == _targets(link) != []


@pytest.mark.parametrize("code", ["`[x](javascript:alert(1))`", "```\n[x](javascript:alert(1))\n```", "    <javascript:x>"])
def test_links_inside_code_are_text_and_left_untouched(code):
    assert safe_links(code) == code


def test_no_real_faq_answer_loses_a_link(corpus):
    changed = [e.id for e in corpus.entries if safe_links(e.answer) != e.answer]
    assert changed == []


def test_lone_surrogates_become_replacement_characters():
    assert scrub_text("a\udcffb\ud800c\U0001F600") == "a\ufffdb\ufffdc\U0001F600"
    assert scrub_text("中文 ok") == "中文 ok"


@pytest.mark.parametrize("text", ["a\u2028b", "a\u2029b", "a\x85b", "a\nb\rc", "a\x0b\x0c\x1c\x1d\x1eb", "x\udc80y"])
def test_json_line_is_one_line_whatever_the_text(text):
    line = json_line({"query": text, "answers": [{"answer": text}]})
    assert len(line.splitlines()) == 1
    assert json.loads(line)["query"] == scrub_text(text)
    line.encode("utf-8")  # no lone surrogate left to break the output stream


# --- a malicious page in the corpus, end to end through the app's handlers ---------------------------------

EVIL_ANSWER = "Click ![i](javascript:alert(1)) or [here](JAVASCRIPT:alert(2)) or [ok](https://www.mindspore.cn/)."


@pytest.fixture(scope="module")
def evil_chat(tmp_path_factory, corpus_dir, fake_embedder):
    """FaqChat over one real page whose first answer links to javascript: (as an edited page could)."""
    from faqbot.corpus import load_corpus
    from faqbot.store import build_index
    from faqbot.lexical import LexicalIndex
    from faqbot.search import Retriever
    from faqbot.web import FaqChat

    root = tmp_path_factory.mktemp("evil")
    page = "mindspore-r1.1/docs/faq/source_en/programming_language_extensions.md"
    (root / page).parent.mkdir(parents=True)
    shutil.copy2(corpus_dir / page, root / page)
    corpus = load_corpus(root)
    first = corpus.entries[0]
    text = (root / page).read_text(encoding="utf-8")
    (root / page).write_text(text.replace(first.answer.splitlines()[0], EVIL_ANSWER, 1), encoding="utf-8")
    corpus = load_corpus(root)
    assert any("javascript:" in e.answer for e in corpus.entries)
    index = build_index(corpus, fake_embedder, None, progress=False, reuse=False)
    retriever = Retriever(index, LexicalIndex.build(index.items, ""), fake_embedder)
    store = SimpleNamespace(record=lambda *a, **k: None, path="unused")
    return FaqChat(retriever, Settings(), store=store), first.question


def test_json_answer_of_search_api_has_no_unsafe_link(evil_chat):
    chat, question = evil_chat
    out = chat.search(question, k=3, version="all")
    evil = [a for a in out["answers"] if "Click" in a["answer"]]
    assert evil, "the edited entry should be among the answers"
    for a in out["answers"]:
        assert _bad(_targets(a["answer"])) == []
    assert "https://www.mindspore.cn/" in _targets(evil[0]["answer"])


def test_chat_markdown_of_an_answer_with_unsafe_links_has_none(evil_chat):
    from faqbot.answer import render_markdown
    from faqbot.schema import Hit, SearchResult

    chat, question = evil_chat
    item = next(it for it in chat.retriever.items if "Click" in it.entry("en").answer)
    md = render_markdown(SearchResult(question, "en", True, [Hit(item, 1.0, "en")], confidence=1.5))
    assert "Click" in md and "https://www.mindspore.cn/" in _targets(md)
    assert _bad(_targets(md)) == []


def test_ask_api_markdown_has_no_unsafe_link(evil_chat):
    chat, question = evil_chat
    assert _bad(_targets(chat.ask(question, version="all"))) == []
