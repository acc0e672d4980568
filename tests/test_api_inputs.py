"""The `/ask` and `/search` handlers and related questions: wrong input types get a clear error, odd text gets an
answer, related entries keep the filters (issue 9, findings 4, 5 and 6). Fast tier: fixture index, HashEmbedder."""

from __future__ import annotations

import math
from types import SimpleNamespace

import gradio as gr
import pytest

from faqbot.config import Settings

SEARCH_KEYS = {"query", "lang", "in_scope", "answers"}


@pytest.fixture(scope="module")
def chat(fake_retriever):
    from faqbot.web import FaqChat

    store = SimpleNamespace(record=lambda *a, **k: None, path="unused")  # no feedback database in these tests
    return FaqChat(fake_retriever, Settings(), store=store)


@pytest.mark.parametrize("question", [["how", "to", "install"], 42, 4.2, None, {"q": "install"}, b"install"])
def test_search_and_ask_refuse_a_question_that_is_not_text_with_a_message(chat, question):
    for call in (lambda: chat.search(question), lambda: chat.ask(question)):
        with pytest.raises(gr.Error) as err:
            call()
        assert "question must be a string" in err.value.message


@pytest.mark.parametrize("k", ["abc", "", math.nan, math.inf, -math.inf, 10**20, 1e20, 0, -1, 51, 2.5, True, None, [3]])
def test_search_refuses_a_bad_k_with_a_message(chat, k):
    with pytest.raises(gr.Error) as err:
        chat.search("How do I install MindSpore?", k=k)
    assert "k must be a whole number from 1 to 50" in err.value.message


@pytest.mark.parametrize("k", [3, "3", 3.0, " 3 "])
def test_search_accepts_k_as_a_number_or_numeric_text(chat, k):
    assert len(chat.search("How do I install MindSpore?", k=k)["answers"]) == 3


@pytest.mark.parametrize(("version", "component"), [(5, ""), ("latest", ["mindspore"]), ({"v": 1}, None)])
def test_filters_of_the_wrong_type_are_refused_with_a_message(chat, version, component):
    with pytest.raises(gr.Error) as err:
        chat.search("install", 3, version, component)
    assert "must be a string" in err.value.message


@pytest.mark.parametrize("question", ["install \ud800 MindSpore", "\udcff\udcfe", "卸载\udc80MindSpore", "\x00\x1b[31m pip \u2028"])
def test_lone_surrogates_and_control_characters_get_an_answer_not_an_error(chat, question):
    out = chat.search(question, k=2)
    assert SEARCH_KEYS <= set(out)
    assert "\ud800" not in out["query"] and "\udcff" not in out["query"]
    assert isinstance(chat.ask(question), str)


@pytest.mark.parametrize(("version", "component"), [("latest", None), ("master", None), ("r1.1", None), ("all", "mindinsight"),
                                                    ("latest", "mindspore"), ("r1.1", "mindinsight"), ("master", "mindinsight")])
def test_related_questions_stay_within_the_version_and_component_asked_for(fake_retriever, version, component):
    mask = fake_retriever.filter_mask(version, component)
    checked = 0
    for pos, item in enumerate(fake_retriever.items):
        if not mask[pos]:
            continue
        for hit in fake_retriever.related(item.id, "en", k=3, version=version, component=component):
            assert hit.item.version == version if version in ("master", "r1.1") else True
            assert component is None or hit.item.component == component
            assert mask[fake_retriever._pos[hit.item.id]]
            checked += 1
    assert checked > 0


def test_chat_lookup_passes_its_filters_to_related_questions(fake_retriever):
    from dataclasses import replace

    from faqbot.web import FaqChat

    class AlwaysAnswers:
        """The fixture retriever, answering every question (the stand-in model's scores are not calibrated)."""

        def __getattr__(self, name):
            return getattr(fake_retriever, name)

        def search(self, *args, **kwargs):
            return replace(fake_retriever.search(*args, **kwargs), in_scope=True)

    chat = FaqChat(AlwaysAnswers(), Settings(), store=SimpleNamespace(record=lambda *a, **k: None, path="unused"))
    for version, component in (("r1.1", "mindinsight"), ("master", "mindspore"), ("latest", "mindinsight")):
        mask = fake_retriever.filter_mask(version, component)
        answer = chat.lookup("MindSpore Insight", version, component)
        result, related = answer.result, answer.related
        assert result.hits and related
        assert all(mask[fake_retriever._pos[h.item.id]] for h in related), (version, component)


def test_chat_turn_with_lone_surrogates_echoes_and_answers_without_them(chat):
    _, history, _ = chat.respond("安装 MindSpore \ud800 pip \udcff", [], "latest", "", {})
    text = repr(history)
    assert len(history) == 2 and "\\ud800" not in text and "\\udcff" not in text and "\ufffd" in history[0]["content"]


def test_related_questions_stay_within_the_filters_on_the_shipped_index(retriever):
    """The probe's case: on the real index, no related entry falls outside the version/component asked for."""
    outside = checked = 0
    for version in ("latest", "master", "r1.1"):
        for component in (None, *retriever.components):
            mask = retriever.filter_mask(version, component)
            for pos in mask.nonzero()[0][:40]:
                for hit in retriever.related(retriever.items[pos].id, "zh", k=3, version=version, component=component):
                    checked += 1
                    outside += not mask[retriever._pos[hit.item.id]]
    assert checked > 300 and outside == 0
