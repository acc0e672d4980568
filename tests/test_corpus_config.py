"""A corpus's own config reaches the answer: its not-covered text and fallback links (query filled in),
links built from its templates, and no version line for an unversioned FAQ."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faqbot.answer import render_markdown, render_text
from faqbot.corpus_config import load_corpus_config, parse_config
from faqbot.schema import FaqEntry, FaqItem, Hit, SearchResult
from faqbot.sources import load_corpus

CONFIG = parse_config({
    "name": "widget", "title": "Widget help",
    "not_covered": {"en": "Widget's FAQ does not cover this.", "zh": "Widget 常见问题里没有这个。"},
    "topics": {"en": "Ask about installing or syncing Widget."},
    "fallback": [{"label": {"en": "Search the docs", "zh": "搜索文档"}, "url": "https://w.example/search?q={query}"},
                 {"label": {"en": "Open an issue"}, "url": "https://w.example/issues/new"}],
}, "test")


def test_not_covered_shows_the_corpus_text_and_fallback_links_with_the_query():
    result = SearchResult(query="how to bake bread", lang="en", in_scope=False)
    md = render_markdown(result, config=CONFIG)
    assert "**Widget's FAQ does not cover this.**" in md and "Ask about installing or syncing Widget." in md
    assert "[Search the docs](https://w.example/search?q=how%20to%20bake%20bread)" in md
    assert "[Open an issue](https://w.example/issues/new)" in md
    text = render_text(SearchResult(query="怎么烤面包", lang="zh", in_scope=False), config=CONFIG)
    assert "Widget 常见问题里没有这个。" in text and "搜索文档: https://w.example/search?q=%E6%80%8E%E4%B9%88%E7%83%A4%E9%9D%A2%E5%8C%85" in text
    assert "Open an issue: https://w.example/issues/new" in text  # no zh label: the other language's


def test_without_a_config_the_built_in_texts_stay():
    md = render_markdown(SearchResult(query="x", lang="en", in_scope=False))
    assert "not covered by the" in md and "w.example" not in md


def test_an_unversioned_answer_shows_no_version_and_its_template_links():
    entry = FaqEntry(id="faq/en/1", question="How do I sync?", answer="Press **Sync**.", lang="en", version="",
                     component="widget", category="faq", page="faq.md", url="https://w.example/faq#sync")
    item = FaqItem("faq/1", "", "widget", "faq", {"en": entry})
    result = SearchResult(query="sync", lang="en", in_scope=True, hits=[Hit(item, 0.9, "en")], confidence=0.95)
    md = render_markdown(result, config=CONFIG)
    assert "Version" not in md and "**Component:** widget" in md and "(https://w.example/faq#sync)" in md
    text = render_text(result, config=CONFIG)
    assert "Version" not in text and "Component: widget" in text


def test_the_mindspore_config_is_bundled_and_found_by_layout(corpus_dir, tmp_path):
    cfg = load_corpus_config(corpus_dir)
    assert (cfg.name, cfg.layout) == ("mindspore", "versioned-docs") and cfg.examples["zh"] and cfg.fallback
    page = tmp_path / "elsewhere" / "mindspore-r1.1" / "docs" / "faq" / "source_en" / "x.md"
    page.parent.mkdir(parents=True)
    page.write_text("<font size=3>**Q: Why?**</font>\n\nA: Because.\n", encoding="utf-8")
    assert load_corpus_config(tmp_path / "elsewhere").name == "mindspore"  # its pages, wherever they live


# ------------------------------------------------------------------ an index per corpus

def test_another_corpus_gets_its_own_default_index_folder(tmp_path, monkeypatch):
    from faqbot.config import Settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    default = Settings()
    other = Settings(corpus_dir=tmp_path / "widget-faq")
    assert other.model_index_dir.parent == tmp_path / "cache" / "faqbot" / "indexes"
    assert other.model_index_dir.name.startswith("widget-faq-") and other.model_index_dir != default.model_index_dir
    assert Settings(corpus_dir=default.corpus_dir).model_index_dir == default.index_dir  # no corpus named: index/
    from faqbot.config import DEFAULT_CORPUS

    assert Settings(corpus_dir=DEFAULT_CORPUS / "x" / "..").model_index_dir == default.index_dir  # ../shared/corpus
    assert Settings(corpus_dir=tmp_path / "w", index_dir=tmp_path / "mine").model_index_dir == tmp_path / "mine"
    own = Settings(corpus_dir=tmp_path / "w").model_index_dir
    assert Settings(corpus_dir=tmp_path / "w", model="st:x").model_index_dir == own / "models" / "st_x"


def test_the_manifest_names_its_corpus_and_the_stale_message_names_both(tmp_path, fake_embedder):
    from faqbot.store import build, stale_reason

    a, b = tmp_path / "a", tmp_path / "b"
    for root, name in ((a, "widget"), (b, "gadget")):
        root.mkdir()
        (root / "faqbot.toml").write_text(f'name = "{name}"\n', encoding="utf-8")
        (root / "faq.csv").write_text(f"question,answer\nWhat is {name}?,A tool.\n", encoding="utf-8")
    stored = build(load_corpus(a), fake_embedder, tmp_path / "index", progress=False)
    assert stored.manifest["corpus"] == {"name": "widget", "folder": "a"}
    assert stale_reason(stored.manifest, corpus_dir=a) is None
    why = stale_reason(stored.manifest, corpus_dir=b)
    assert "'widget'" in why and "'gadget'" in why and str(b) in why
    (a / "faq.csv").write_text("question,answer\nWhat is widget?,A better tool.\n", encoding="utf-8")  # a table edit
    assert "changed since the index was built" in stale_reason(stored.manifest, corpus_dir=a)


@pytest.mark.slow
def test_index_and_ask_another_corpus_leave_the_default_index_byte_identical(tmp_path):
    """`faqbot index --corpus X` writes X's own folder; `ask --corpus X` finds it with no --index."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    default_index = repo / "index"
    before = {p: p.read_bytes() for p in default_index.rglob("*") if p.is_file()}
    corpus = tmp_path / "widget"
    shutil.copytree(Path(__file__).parent / "fixtures" / "faqs" / "named", corpus)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("FAQBOT_INDEX", None)
    faqbot = [sys.executable, "-m", "faqbot.cli"]
    proc = subprocess.run([*faqbot, "index", "--corpus", str(corpus)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path / "cache" / "faqbot" / "indexes") in proc.stdout
    proc = subprocess.run([*faqbot, "ask", "--corpus", str(corpus), "--json", "How can I get my report out as a CSV file?"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["answers"][0]["questions"]["zh"] == "怎样导出报表为 CSV？"
    assert {p: p.read_bytes() for p in default_index.rglob("*") if p.is_file()} == before


def test_a_table_alternates_are_indexed_and_survive_applying_approved_alternates(tmp_path, fake_embedder):
    from faqbot.index import is_alternate_row
    from faqbot.store import apply_alternates, build, open_index

    root = tmp_path / "faq"
    shutil.copytree(Path(__file__).parent / "fixtures" / "faqs" / "named", root / "named")
    shutil.copy2(Path(__file__).parent / "fixtures" / "faqs" / "bom.csv", root / "bom.csv")
    corpus = load_corpus(root)
    stored = build(corpus, fake_embedder, tmp_path / "index", progress=False)
    assert int(is_alternate_row(stored.dense.rows).sum()) == len(corpus.alternates) == 4
    approved = tmp_path / "alternates.jsonl"
    approved.write_text(json.dumps({"id": "acct-1", "lang": "en", "question": "new mail address", "approved_by": "t",
                                    "approved_at": "2026-12-07"}) + "\n", encoding="utf-8")
    apply_alternates(tmp_path / "index", fake_embedder, approved)
    after = open_index(tmp_path / "index")
    assert int(is_alternate_row(after.dense.rows).sum()) == 5  # the table's 4 kept, the approved one added
