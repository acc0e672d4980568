"""The source layer reads any team's FAQ: markdown at any heading level, CSV (BOM), TSV, JSONL, JSON, XLSX;
bad rows are reported with file:line and skipped; language comes from the text; twins pair by id and file name.
Fixtures in tests/fixtures/faqs/ are written for these tests in the shapes of real public FAQs."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

from faqbot.sources import pair_report
from faqbot.corpus_config import CorpusConfig, CorpusConfigError, load_corpus_config, read_config
from faqbot.sources import load_corpus, twin_key
from faqbot.sources.lang import detect_lang, path_hint

FIX = Path(__file__).parent / "fixtures" / "faqs"


def _copy(tmp_path: Path, *names: str) -> Path:
    for name in names:
        src = FIX / name
        dst = tmp_path / name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return tmp_path


def _by_question(corpus):
    return {e.question: e for e in corpus.entries}


def test_markdown_questions_at_any_heading_level(tmp_path):
    c = load_corpus(_copy(tmp_path, "markdown/h2.md"))
    assert [e.question for e in c.entries] == ["How do I reset my password?", "Why is the sync slow on Windows?"]
    first = c.entries[0]
    assert "widgetctl reset-password" in first.answer and "### Details" in first.answer  # code and sub-heading kept
    assert "Licensed" not in first.answer and "title: FAQ" not in first.answer
    assert first.lang == "en" and c.problems == []


def test_markdown_chinese_question_prefix_list_wrapped_answer_and_separators(tmp_path):
    c = load_corpus(_copy(tmp_path, "markdown/h5.md"))
    e1, e2 = c.entries
    assert e1.question == "安装 widget 时提示找不到 libfoo.so，怎么办？"  # 问题： stripped, ##### level
    assert e2.question == "Windows 下用 pip 安装很慢，如何解决？"  # a #### one on the same page
    assert e1.answer.startswith("把 libfoo 所在目录") and "答复" not in e1.answer and "+ " not in e1.answer
    assert "```bash\nexport LD_LIBRARY_PATH=/opt/foo/lib\n```" in e1.answer  # the list item's body dedented
    assert not any(e.answer.rstrip().endswith("---") for e in c.entries)
    assert {e.lang for e in c.entries} == {"zh"} and e1.heading_path == ("安装常见问题", "环境变化")


def test_markdown_plain_q_and_a_prefixes(tmp_path):
    c = load_corpus(_copy(tmp_path, "markdown/prefixes.md"))
    got = {e.question: (e.answer, e.lang) for e in c.entries}
    assert got == {
        "Can I run widget offline?": ("Yes, once the model files are downloaded.", "en"),
        "离线能用 widget 吗？": ("可以，只要先下载好模型文件。", "zh"),
        "如何卸载 widget？": ("运行 `pip uninstall widget`。", "zh"),
    }


def test_html_headings_are_questions_and_a_question_without_answer_is_reported(tmp_path):
    c = load_corpus(_copy(tmp_path, "markdown/html_h3.md"))
    assert [e.question for e in c.entries] == ["Does widget read config files?", "How do I search `gzip` files?"]
    assert [p.message.split(":")[0:2] for p in c.problems] == [["markdown/html_h3.md", "18"]]
    assert "no answer" in c.problems[0].message


def test_a_prose_page_is_not_read_as_a_faq(tmp_path):
    c = load_corpus(_copy(tmp_path, "markdown/prose.md"))
    assert c.entries == [] and "no FAQ entries recognised" in c.problems[0].message


def test_csv_with_bom_pairs_rows_by_id_and_reports_the_bad_row(tmp_path):
    c = load_corpus(_copy(tmp_path, "bom.csv"))
    q = _by_question(c)
    assert set(q) == {"How do I change my e-mail address?", "如何修改邮箱地址？", "可以开发票吗？"}
    assert [p.message for p in c.problems] == ["bom.csv:6: the row has no answer; it was skipped (fill it in or delete the row)"]
    pair = next(i for i in c.items if i.id == "acct-1")
    assert pair.bilingual and pair.entries["zh"].question == "如何修改邮箱地址？"
    assert pair.entries["en"].answer == "Open **Settings**, then *Account*.\n\nConfirm from the new address."
    assert pair.entries["en"].url == "https://example.org/faq#email"
    assert q["可以开发票吗？"].lang == "zh"  # no lang cell: from the text
    assert ("acct-1", "en", "Update my email") in c.alternates and ("acct-1", "zh", "更换邮箱") in c.alternates


def test_tsv_in_azure_columns(tmp_path):
    c = load_corpus(_copy(tmp_path, "azure.tsv"))
    q = _by_question(c)
    assert set(q) == {"Where are the logs?", "日志在哪里？"}
    logs = q["Where are the logs?"]
    assert (logs.url, logs.component, logs.version) == ("https://example.org/logs", "cli", "2.0")
    assert q["日志在哪里？"].url == ""  # Source "Editorial" is not a link
    assert [p.message for p in c.problems] == ["azure.tsv:3: the row has no question; it was skipped (fill it in or delete the row)"]


def test_jsonl_short_field_names_twins_alternates_and_bad_lines(tmp_path):
    c = load_corpus(_copy(tmp_path, "rows.jsonl"))
    assert [i.id for i in c.items] == ["net-1"] and c.items[0].bilingual
    assert ("net-1", "en", "corporate proxy") in c.alternates
    assert [p.message.split(":")[:2] for p in c.problems] == [["rows.jsonl", "3"], ["rows.jsonl", "4"]]
    assert "bad JSON" in c.problems[0].message and "no answer" in c.problems[1].message


def test_json_list(tmp_path):
    rows = [{"Question": "Is it free?", "Answer": "Yes."}, {"Question": "收费吗？", "Answer": "免费。"}, {"Answer": "orphan"}]
    (tmp_path / "faq.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    c = load_corpus(tmp_path)
    assert [(e.question, e.lang) for e in c.entries] == [("Is it free?", "en"), ("收费吗？", "zh")]
    assert len(c.problems) == 1 and c.problems[0].message.startswith("faq.json:")


def test_gb18030_csv_from_a_chinese_spreadsheet(tmp_path):
    (tmp_path / "faq.csv").write_bytes("问题,答案\n怎么登录？,用手机号登录。\n".encode("gb18030"))
    c = load_corpus(tmp_path)
    assert [(e.question, e.answer) for e in c.entries] == [("怎么登录？", "用手机号登录。")]


def test_csv_without_question_column_is_named(tmp_path):
    (tmp_path / "faq.csv").write_text("title,body\nx,y\n", encoding="utf-8")
    c = load_corpus(tmp_path)
    assert c.entries == [] and "faq.csv:1: no question and answer column" in c.problems[0].message


def _xlsx(path: Path) -> None:
    import openpyxl
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Q", "A", "Alternate 1", "Alternate 2", "ID"])
    sheet.append(["How do I invite a teammate?", "Use **Team → Invite**.", "add a colleague", "share access", 7])
    sheet.append(["如何邀请同事？", "在**团队 → 邀请**中操作。", None, None, 7])
    sheet.append(["A question without answer", None, None, None, 8])
    book.save(path)


def test_xlsx_through_openpyxl(tmp_path):
    _xlsx(tmp_path / "faq.xlsx")
    c = load_corpus(tmp_path)
    assert [i.id for i in c.items] == ["7"] and c.items[0].bilingual
    assert ("7", "en", "share access") in c.alternates
    assert [p.message for p in c.problems] == ["faq.xlsx:4: the row has no answer; it was skipped (fill it in or delete the row)"]


def test_xlsx_without_openpyxl_says_what_to_install(tmp_path, monkeypatch):
    _xlsx(tmp_path / "faq.xlsx")
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    c = load_corpus(tmp_path)
    assert c.entries == [] and "pip install 'faqbot[xlsx]'" in c.problems[0].message


def test_language_from_the_text_when_the_folder_lies(tmp_path):
    c = load_corpus(_copy(tmp_path, "lying"))
    assert {e.page: e.lang for e in c.entries} == {"lying/en/guide.md": "zh", "lying/zh/guide.md": "en"}
    assert len(c.items) == 2 and all(i.bilingual for i in c.items)  # zh/ and en/ twins, paired anyway
    pair = next(i for i in c.items if "重置密码" in i.entries["zh"].question)
    assert pair.entries["en"].question == "How do I reset my password?"


def test_twins_paired_by_file_name_and_an_unpaired_entry_stays_alone(tmp_path):
    c = load_corpus(_copy(tmp_path, "named"))
    pairs = {(i.entries["zh"].question, i.entries["en"].question) for i in c.items if i.bilingual}
    assert pairs == {("怎样导出报表为 CSV？", "How do I export a report as CSV?"),
                     ("支持暗色主题吗？", "Is there a dark theme?")}
    alone = [i for i in c.items if not i.bilingual]
    assert [i.langs for i in alone] == [("zh",)] and "中文版" in alone[0].entries["zh"].question
    report = pair_report(c)  # `faqbot stats`: the twin files reported as one page
    assert list(report) == ["named/faq.md"] and (report["named/faq.md"]["zh"], report["named/faq.md"]["paired"]) == (3, 2)


def test_detect_lang_traditional_mixed_and_hint():
    assert detect_lang("如何設定代理伺服器？") == "zh"  # Traditional
    assert detect_lang("paddle 2.0 是否支持 python2，python3.5 ？") == "zh"
    assert detect_lang("How do I fix `错误` in the log?", "The message means the file is missing.") == "en"
    assert detect_lang("`rg -z`", "```\nrg -z\n```", hint="zh-CN") == "zh"  # no prose: the hint decides
    assert path_hint("docs/faq.zh-CN.md") == "zh" and path_hint("en/latest/FAQ.md") == "en" and path_hint("a/b.md") is None
    assert twin_key("faq.zh-CN.md") == twin_key("faq.en-US.md") and twin_key("zh/a/FAQ.md") == twin_key("en/a/FAQ.md")


def test_corpus_config_defaults_own_file_and_bundled(tmp_path, corpus_dir):
    assert load_corpus_config(tmp_path) == CorpusConfig(name=tmp_path.name)
    (tmp_path / "faqbot.toml").write_text(
        'name = "widget"\ntitle = "Widget help"\npage_url = "https://w.example/{stem}{anchor_hash}"\n'
        '[examples]\nen = ["How do I reset my password?"]\n'
        '[[fallback]]\nlabel = { en = "Search", zh = "搜索" }\nurl = "https://w.example/s?q={query}"\n', encoding="utf-8")
    cfg = load_corpus_config(tmp_path)
    assert (cfg.name, cfg.display_title, cfg.examples["en"]) == ("widget", "Widget help", ("How do I reset my password?",))
    assert cfg.fallback_links("重置 密码", "zh") == [("搜索", "https://w.example/s?q=%E9%87%8D%E7%BD%AE%20%E5%AF%86%E7%A0%81")]
    shutil.copy2(FIX / "markdown" / "h2.md", tmp_path / "faq.md")
    c = load_corpus(tmp_path)
    assert [e.url for e in c.entries] == ["https://w.example/faq#how-do-i-reset-my-password",
                                          "https://w.example/faq#why-is-the-sync-slow-on-windows"]
    assert {e.component for e in c.entries} == {"widget"}
    assert load_corpus_config(corpus_dir).layout == "versioned-docs"  # the bundled config, by the pages' layout


def test_a_bad_config_is_named(tmp_path):
    (tmp_path / "faqbot.toml").write_text('page_url = "https://x/{nope}"\n', encoding="utf-8")
    with pytest.raises(CorpusConfigError, match=r"faqbot.toml: `page_url` uses \{nope\}"):
        read_config(tmp_path / "faqbot.toml")
    shutil.copy2(FIX / "markdown" / "h2.md", tmp_path / "faq.md")
    c = load_corpus(tmp_path)  # reported, defaults used, the FAQ still read
    assert len(c.entries) == 2 and "page_url" in c.problems[0].message


def test_a_one_language_faq_is_found_from_the_other_language(tmp_path, embedder):
    """Chinese-only entries (no twin) answer English questions through the multilingual model, and back."""
    from faqbot.search import Retriever
    from faqbot.store import build

    c = load_corpus(_copy(tmp_path, "markdown/h5.md", "markdown/h2.md"))
    assert {i.langs for i in c.items} == {("zh",), ("en",)}
    stored = build(c, embedder, None, progress=False)
    retriever = Retriever(stored.dense, stored.lexical, embedder)
    cases = {
        "Installing widget fails because libfoo.so cannot be found": "安装 widget 时提示找不到 libfoo.so，怎么办？",
        "pip downloads are really slow on my Windows machine": "Windows 下用 pip 安装很慢，如何解决？",
        "忘记密码了，怎么重新设置？": "How do I reset my password?",
    }
    for query, question in cases.items():
        result = retriever.search(query)
        assert result.hits[0].entry.question == question, query
        assert result.hits[0].fallback  # shown in the FAQ's language, marked as such


def test_a_csv_with_a_very_long_answer_is_read(tmp_path):
    long_answer = "Run `widget --trace` and read the log.\n\n" + "x" * 300_000
    with (tmp_path / "faq.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["question", "answer"], ["Where is the trace log?", long_answer]])
    c = load_corpus(tmp_path)
    assert c.problems == [] and c.entries[0].answer == long_answer.strip()
