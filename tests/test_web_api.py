"""The app's API end to end through gradio_client: `/ask` (markdown) and `/search` (the `ask --json` object)."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from faqbot.answer import LABELS, link_target
from faqbot.cli import main
from faqbot.web import RETRIEVAL_CONCURRENCY

ZH_Q = "pip安装MindSpore对Python版本是否有特别要求？"
EN_Q = "Does pip installation of MindSpore require a specific Python version?"


@pytest.fixture(scope="module")
def client(web_app):
    return Client(web_app.url, verbose=False)


def test_ask_returns_answer_markdown_in_the_users_language(client, retriever):
    for question, lang in ((ZH_Q, "zh"), (EN_Q, "en")):
        md = client.predict(question, api_name="/ask")
        top = retriever.search(question).hits[0]
        assert md.startswith("### ")
        assert top.entry.lang == lang
        assert f"({link_target(top.entry.url)})" in md and f"({link_target(top.entry.source_url)})" in md
        assert LABELS[lang]["confidence"] in md and LABELS[lang]["related"] in md


def test_search_returns_the_same_object_as_ask_json(client, capsys):
    got = client.predict(EN_Q, api_name="/search")
    assert main(["ask", "--json", EN_Q]) == 0
    assert got == json.loads(capsys.readouterr().out)
    assert got["in_scope"] is True and got["lang"] == "en"
    assert {"id", "question", "questions", "answer", "url", "source_url", "version", "component", "score"} <= set(got["answers"][0])


def test_search_takes_k_version_and_component(client):
    got = client.predict(ZH_Q, k=3, version="r1.1", component="mindspore", api_name="/search")
    assert 1 <= len(got["answers"]) <= 3
    assert {a["version"] for a in got["answers"]} == {"r1.1"}
    assert {a["component"] for a in got["answers"]} == {"mindspore"}


def test_unknown_filter_is_a_clear_error(client):
    with pytest.raises(AppError, match="(?i)unknown version 'r9.9'"):
        client.predict(EN_Q, version="r9.9", api_name="/search")


def test_off_topic_question_via_ask_is_honest_and_logged(client, web_app):
    question = "What is the best pizza topping in Naples?"
    md = client.predict(question, api_name="/ask")
    assert "not covered by the MindSpore FAQ" in md
    assert web_app.store.flush(10)
    rows = sqlite3.connect(web_app.db).execute("SELECT vote, in_scope, lang FROM feedback WHERE question = ?", (question,)).fetchall()
    assert rows == [(0, 0, "en")]


def test_html_in_question_never_comes_back_raw(client):
    md = client.predict("<script>alert(1)</script><img src=x onerror=alert(2)> 怎么安装？", api_name="/ask")
    assert "<script" not in md and "<img" not in md


def test_empty_and_huge_questions_get_a_clear_reply(client):
    assert "question" in client.predict("   ", api_name="/ask").lower()
    long_md = client.predict("How do I install MindSpore with pip? " * 300, api_name="/ask")
    assert "2,000" in long_md.split("\n")[0]
    assert client.predict(EN_Q, api_name="/ask").startswith("### ")  # still serving


def test_several_clients_are_served_at_once_from_one_loaded_index(web_app, retriever):
    questions = [ZH_Q, EN_Q, "MindSpore 支持哪些硬件平台？", "How can I save and load a model checkpoint?"] * 2

    def ask(question: str) -> dict:
        return Client(web_app.url, verbose=False).predict(question, api_name="/search")

    with ThreadPoolExecutor(max_workers=len(questions)) as pool:
        results = list(pool.map(ask, questions))
    assert [r["query"] for r in results] == questions
    assert all(r.pop("fallback_links") == [] for r in results)  # all covered: no "search the docs" links
    assert results == [retriever.search(q).to_dict() for q in questions]


def test_queue_limits_are_set_on_purpose(web_app):
    fns = list(web_app.demo.fns.values())
    retrieval = [fn for fn in fns if fn.concurrency_id == "retrieval"]
    assert {fn.api_name for fn in retrieval} >= {"ask", "search"}
    assert len(retrieval) == 5  # chat submit, suggestion click, example click, /ask, /search: one shared queue
    assert all(fn.concurrency_limit == RETRIEVAL_CONCURRENCY > 1 for fn in retrieval)
