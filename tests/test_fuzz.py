"""Bounded fuzz of the two text contracts (issue 9, finding 4, 11): `faqbot ask --jsonl` answers every input line
with exactly one JSON line, in order, that `splitlines()` cannot split; the `/ask` and `/search` handlers answer
any text and refuse any other type with a message. Fast tier: the CLI's own code on the fixture index."""

from __future__ import annotations

import io
import json
import sys
from types import SimpleNamespace
from unittest import mock

import gradio as gr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faqbot import cli
from faqbot.config import Settings

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
ANSWER_KEYS = {"id", "question", "questions", "answer", "url", "source_url", "version", "component", "score"}

# Characters that break naive line handling or encoding: lone surrogates, line separators, controls, CJK.
NASTY = ["\ud800", "\udcff", "\u2028", "\u2029", "\x85", "\r", "\x0b", "\x0c", "\x1c", "\x00", "\x1b[2J", "\ufeff",
         "安装", "MindSpore", "pip install", " ", "\t", "`", "<script>", "ERR_UNSAFE_PORT", "\U0001F600"]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=12).map("".join)
# An input line as bytes: random bytes, or nasty text encoded as a sloppy producer would (surrogates included).
input_line = st.one_of(
    st.binary(max_size=60),
    nasty_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
).map(lambda b: b.replace(b"\n", b" "))


def run_jsonl(fake_retriever, data: bytes) -> bytes:
    """`faqbot ask --jsonl --k 2` in process on the fixture index, stdin and stdout as real byte streams."""
    stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    with mock.patch.object(cli, "_load_retriever", lambda args: (fake_retriever, None)), \
            mock.patch.object(sys, "stdin", stdin), mock.patch.object(sys, "stdout", stdout):
        code = cli.main(["ask", "--jsonl", "--k", "2"])
    stdout.flush()
    assert code == 0
    return out.getvalue()


@FUZZ
@given(lines=st.lists(input_line, max_size=6))
def test_jsonl_gives_one_json_line_per_input_line_in_order(fake_retriever, lines):
    raw = run_jsonl(fake_retriever, b"".join(line + b"\n" for line in lines))
    text = raw.decode("utf-8")  # strict: valid UTF-8 whatever came in
    out = text.splitlines()
    assert len(out) == len(lines) == text.count("\n")
    for line, got in zip(lines, out):
        obj = json.loads(got)
        assert obj["query"] == line.decode("utf-8", "replace").replace("\ufffd", "\ufffd")
        assert {"query", "lang", "in_scope", "answers"} <= set(obj) and len(obj["answers"]) <= 2


def test_jsonl_answers_the_printf_example_and_a_last_line_without_newline(fake_retriever):
    out = run_jsonl(fake_retriever, b"ok\n\xff\nok2\n\xe2\x80\xa8tail").decode("utf-8").splitlines()
    assert [json.loads(line)["query"] for line in out] == ["ok", "\ufffd", "ok2", "\u2028tail"]


# --- the API handlers ----------------------------------------------------------------------------------------

any_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=8),
                      st.lists(st.text(max_size=4), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
question_value = st.one_of(nasty_text, nasty_text, any_value)
k_value = st.one_of(st.integers(-3, 60), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4), any_value)
filter_value = st.one_of(st.sampled_from(["latest", "master", "r1.1", "all", "", "mindspore", "mindinsight"]), nasty_text, any_value)


@pytest.fixture(scope="module")
def chat(fake_retriever):
    from faqbot.web import FaqChat

    return FaqChat(fake_retriever, Settings(), store=SimpleNamespace(record=lambda *a, **k: None, path="unused"))


def _refused_with_a_message(call) -> object:
    """The call's result, or None when it raised gr.Error with a message (what the API client sees)."""
    try:
        return call()
    except gr.Error as err:
        assert isinstance(err.message, str) and err.message.strip()
        return None


@FUZZ
@given(question=question_value, k=k_value, version=filter_value, component=filter_value)
def test_search_api_returns_the_documented_object_or_a_clear_error(chat, question, k, version, component):
    out = _refused_with_a_message(lambda: chat.search(question, k, version, component))
    if out is None:
        return
    assert {"query", "lang", "in_scope", "answers"} <= set(out) and out["lang"] in ("zh", "en")
    assert isinstance(question, str) and 1 <= len(out["answers"]) + (not out["answers"]) <= 50
    for a in out["answers"]:
        assert ANSWER_KEYS <= set(a)
    json.dumps(out, ensure_ascii=False).encode("utf-8")  # serialisable, no lone surrogate


@FUZZ
@given(question=question_value, version=filter_value, component=filter_value)
def test_ask_api_returns_markdown_or_a_clear_error(chat, question, version, component):
    md = _refused_with_a_message(lambda: chat.ask(question, version, component))
    if md is not None:
        assert isinstance(question, str) and isinstance(md, str) and md.strip()
        md.encode("utf-8")
