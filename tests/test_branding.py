"""Another team's FAQ speaks in its own name everywhere: the service holds the corpus config read from
settings.corpus_dir, and the REST JSON, `faqbot ask`, `faqbot chat`, `--help` and `app.py --help` show its title,
texts and links (fixture: tests/fixtures/faqs/branded, a CSV FAQ with its faqbot.toml). No MindSpore string is
left in src/faqbot outside the bundled corpus config. Fast tier: HashEmbedder, no Gradio."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import BRANDED_DIR
from faqbot import cli
from faqbot.config import Settings
from faqbot.service import FaqService

REPO = Path(__file__).resolve().parents[1]
BRANDED = BRANDED_DIR
OFF_TOPIC = "What is the capital of France?"
SEARCH = "https://gadget.example/search?q=" + urllib.parse.quote(OFF_TOPIC)
ISSUE = "https://git.example/gadget/issues/new?title=" + urllib.parse.quote(OFF_TOPIC)


@pytest.fixture
def gadget(branded_retriever, tmp_path):
    return FaqService(branded_retriever, Settings(corpus_dir=BRANDED, feedback_db=tmp_path / "fb.sqlite3"))


def test_the_service_reads_the_corpus_config_once_from_the_settings(gadget):
    config = gadget.config
    assert (config.name, config.display_title, config.page_title) == ("gadget", "Gadget FAQ", "Gadget help desk")
    assert config.heading == "Gadget help desk · Gadget 帮助台"
    assert config.example_questions() == ["Gadget 怎么恢复出厂设置？", "How do I pair my Gadget with a phone?",
                                          "Why does sync stop at 99%?"]


def test_the_bundled_corpus_reads_as_before():
    """The default corpus's config supplies the texts the front ends used to hard-code."""
    from faqbot.service import corpus_config

    config = corpus_config(Settings())
    assert config.page_title == "MindSpore FAQ bot" and config.heading == "MindSpore FAQ bot · MindSpore 常见问题助手"
    assert config.help_text == "Bilingual (zh/en) FAQ bot for the MindSpore docs."
    assert config.example_questions() == ["MindSpore 支持 Windows 吗？", "Which Python version does MindSpore need?",
                                          "怎么把数据集的两列合并成一列？", "How can I merge two dataset columns into one?"]


def test_the_json_answer_carries_the_template_links_and_the_fallback_links(gadget):
    found = gadget.answer("How do I pair my Gadget with a phone?").to_dict()
    assert found["match"] == "answer" and found["fallback_links"] == []  # one shape: the key is always there
    top = found["answers"][0]
    assert top["url"] == "https://gadget.example/faq/en/pair"
    assert top["source_url"] == "https://git.example/gadget/faq/blob/main/faq.csv"
    missed = gadget.answer(OFF_TOPIC).to_dict()
    assert missed["match"] == "none"
    assert missed["fallback_links"] == [{"label": "Search the Gadget docs", "url": SEARCH},
                                        {"label": "Ask the Gadget team", "url": ISSUE}]
    zh = gadget.answer("红烧肉怎么做才好吃？").to_dict()
    assert [link["label"] for link in zh["fallback_links"]] == ["搜索 Gadget 文档", "向 Gadget 团队提问"]


def test_rest_api_search_answers_with_the_corpus_links(gadget):
    from conftest import serve_asgi
    from faqbot.rest import RestApi

    port, stop = serve_asgi(RestApi(gadget, workers=1).app())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/search?" + urllib.parse.urlencode({"q": OFF_TOPIC}),
                                    timeout=60) as resp:
            body = json.loads(resp.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/search?" + urllib.parse.urlencode(
                {"q": "Why does sync stop at 99%?"}), timeout=60) as resp:
            hit = json.loads(resp.read())
    finally:
        stop()
    assert [link["url"] for link in body["fallback_links"]] == [SEARCH, ISSUE]
    assert hit["answers"][0]["url"] == "https://gadget.example/faq/en/sync"
    assert hit["answers"][0]["component"] == "cloud"


@pytest.fixture
def gadget_cli(branded_retriever, monkeypatch):
    """`faqbot ask/chat --corpus BRANDED` over the fixture retriever (the real command, the model stubbed out)."""
    monkeypatch.setattr(cli, "_load_retriever", lambda args: (branded_retriever, None))


def test_cli_ask_shows_the_corpus_texts_and_links(gadget_cli, capsys):
    assert cli.main(["ask", "--corpus", str(BRANDED), OFF_TOPIC]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The Gadget FAQ has nothing on this yet.")
    assert f"Search the Gadget docs: {SEARCH}" in out and f"Ask the Gadget team: {ISSUE}" in out
    assert cli.main(["ask", "--corpus", str(BRANDED), "--json", "Gadget 怎么恢复出厂设置？"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["answers"][0]["url"] == "https://gadget.example/faq/zh/reset"


def test_cli_chat_banner_and_replies_are_the_corpus_own(gadget_cli, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("红烧肉怎么做才好吃？\n"))
    assert cli.main(["chat", "--corpus", str(BRANDED)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Gadget help desk · Gadget 帮助台"
    assert "Gadget 常见问题里还没有这个问题。" in out and "搜索 Gadget 文档: https://gadget.example/search?q=" in out


def test_help_texts_name_the_corpus_given_on_the_command_line(capsys, monkeypatch):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "Bilingual (zh/en) FAQ bot for the MindSpore docs." in capsys.readouterr().out  # the default corpus
    monkeypatch.setenv("FAQBOT_CORPUS", str(BRANDED))
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "Answers about the Gadget sync app, in Chinese or English." in capsys.readouterr().out
    monkeypatch.delenv("FAQBOT_CORPUS")
    with pytest.raises(SystemExit):
        cli.main(["ask", "--corpus", str(BRANDED), "--help"])
    assert "only this component (app, cloud)" in " ".join(capsys.readouterr().out.split())
    assert cli.main(["ask", "--corpus", str(BRANDED)]) == 2  # no question: the example is the corpus's own
    assert 'faqbot ask "How do I pair my Gadget with a phone?"' in capsys.readouterr().err
    proc = subprocess.run([sys.executable, str(REPO / "app.py"), "--corpus", str(BRANDED), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Serve the Gadget FAQ chat in the browser." in " ".join(proc.stdout.split())


def test_no_mindspore_string_in_the_package_outside_its_bundled_config():
    src = REPO / "src" / "faqbot"
    found = [f"{p.relative_to(src)}:{n}" for p in sorted(src.rglob("*")) if p.is_file() and p.suffix != ".pyc"
             and p.relative_to(src).as_posix() != "corpora/mindspore.toml"
             for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if "mindspore" in line.lower()]
    assert found == []
    assert "mindspore" in (src / "corpora" / "mindspore.toml").read_text(encoding="utf-8").lower()


def test_a_missing_index_names_the_corpus_in_the_command_to_run(tmp_path):
    """`faqbot index` run bare would index the default corpus: `ask` says `--corpus X` too. (app.py builds a
    missing index on its first start, issue 18: tests/test_first_start.py.)"""
    import os
    import shlex

    faq = tmp_path / "our faq"
    faq.mkdir()
    (faq / "faq.csv").write_text("question,answer\nHow do I reset it?,Hold the button.\n", encoding="utf-8")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    want = f"run `faqbot index --corpus {shlex.quote(str(faq))}` to build it"
    for command in ([sys.executable, "-m", "faqbot.cli", "ask", "--corpus", str(faq), "reset?"],):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 2 and want in proc.stderr, proc.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("manifest.json"))  # nothing built
