"""Bounded fuzz of the text contracts (issue 9, finding 4, 11; issue 23, "keep the probe as tests"): `faqbot ask
--jsonl` answers every input line with exactly one JSON line, in order, that `splitlines()` cannot split; the
`/ask` and `/search` handlers answer any text and refuse any other type with a message; and over HTTP, the served
app (`/api/search`, `/api/feedback`, Gradio's `/gradio_api/call/ask` and `/search`) never answers 500 or
`{"error": null}`, always says what is wrong, answers each case (a generous timeout is the hang guard, not a
timing assertion) and logs an input error in one line, never a traceback. All on the fixture index.

FAQBOT_FUZZ_EXAMPLES sets the number of cases per test (default 25; the issue's run is 2,000, docs/performance.md).
"""

from __future__ import annotations

import io
import json
import os
import sys
import urllib.error
import urllib.request
from types import SimpleNamespace
from unittest import mock

import gradio as gr
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import launch_app, post
from faqbot import cli
from faqbot.config import Settings

EXAMPLES = int(os.environ.get("FAQBOT_FUZZ_EXAMPLES") or 25)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
ANSWER_KEYS = {"id", "question", "questions", "answer", "url", "source_url", "version", "component", "score"}

# Characters that break naive line handling or encoding: lone surrogates, line separators, controls, CJK.
NASTY = ["\ud800", "\udcff", "\u2028", "\u2029", "\x85", "\r", "\x0b", "\x0c", "\x1c", "\x00", "\x1b[2J", "\ufeff",
         "安装", "MindSpore", "pip install", " ", "\t", "`", "<script>", "ERR_UNSAFE_PORT", "\U0001F600"]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=12).map("".join)
# An input line as bytes: random bytes, or nasty text encoded as a sloppy producer would (surrogates included).
input_line = st.one_of(
    st.binary(max_size=60),
    nasty_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"x" * 60_000, "\u4e2d".encode() * 60_000, b"a@" * 20_000]),  # long lines (the probe's)
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
        # a line over the question limit is cut at the door, before any other work
        assert obj["query"] == line.decode("utf-8", "replace")[:Settings().max_question_chars]
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



# --- the served app over HTTP ---------------------------------------------------------------------------------

HANG_GUARD = 60.0  # seconds one request may take before the case counts as a hang

# Text the probe used: long runs (over the question limit), e-mail-like runs (the old quadratic mask), CJK, nesting.
long_text = st.sampled_from(["x" * 60_000, "中" * 60_000, "a@" * 20_000, "安装 MindSpore " * 2_000, "[" * 3_000])
http_text = st.one_of(nasty_text, nasty_text, nasty_text, long_text)
json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), http_text),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                          max_leaves=12)
history_value = st.one_of(st.none(), st.lists(http_text, max_size=8), json_value)


@pytest.fixture(scope="module")
def served(fake_retriever, tmp_path_factory):
    """The whole app as `faqbot serve` runs it; the vote rate limit is off so that votes reach the checks."""
    settings = Settings(feedback_db=tmp_path_factory.mktemp("fb") / "feedback.sqlite3", vote_rate=0)
    base, demo = launch_app(fake_retriever, settings)
    yield base
    demo.close()


def _http(method: str, url: str, body: bytes | None = None, content_type: str = "application/json",
          headers: dict | None = None) -> tuple[int, bytes]:
    if body is not None:
        return post(url, body, content_type, headers or {})
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=HANG_GUARD) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _reset_allowed(body: bytes, path: str) -> bool:
    """A body beyond what the door reads before its 413 (rest.DRAIN_FACTOR) may be answered by a hang-up."""
    from faqbot.rest import DRAIN_FACTOR

    s = Settings()
    limit = s.max_body_bytes if path.startswith("/api/") else s.max_request_bytes
    return len(body) > max(DRAIN_FACTOR * limit, s.max_request_bytes)


def _assert_refused_with_a_message(status: int, raw: bytes) -> None:
    assert status != 500 and status < 500 or status == 503, (status, raw[:300])
    error = json.loads(raw)["error"]
    assert isinstance(error, str) and error.strip(), raw[:300]


def _assert_no_traceback(capfd) -> None:
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, (out + err)[-2000:]


@pytest.mark.slow
@FUZZ
@given(method=st.sampled_from(["GET", "POST", "POST", "POST"]), q=st.one_of(http_text, json_value),
       k=st.one_of(st.none(), st.integers(-3, 60), json_value),
       version=st.one_of(st.none(), st.sampled_from(["latest", "master", "r1.1", "all", ""]), json_value),
       history=history_value, extra=st.one_of(st.none(), st.binary(max_size=40), json_value),
       mode=st.sampled_from(["object", "object", "raw", "value"]))
def test_api_search_over_http_answers_or_refuses_with_a_message(served, capfd, method, q, k, version, history, extra, mode):
    from urllib.parse import urlencode

    fields = {"q": q, "k": k, "version": version, "history": history}
    if method == "GET":
        # a URL is cut to 2,000 characters a value: the HTTP layer refuses a head over 16 KB itself (400)
        query = {name: (value if isinstance(value, str) else json.dumps(value))[:2000] for name, value in fields.items()
                 if value is not None}
        status, raw = _http("GET", f"{served}/api/search?" + urlencode(query, errors="surrogatepass"))
    else:
        body = {"object": lambda: json.dumps({n: v for n, v in fields.items() if v is not None}).encode(),
                "raw": lambda: extra if isinstance(extra, bytes) else json.dumps(extra).encode(),
                "value": lambda: json.dumps(q).encode()}[mode]()
        status, raw = _http("POST", f"{served}/api/search", body)
        if status == 0 and _reset_allowed(body, "/api/search"):
            return
    if status == 200:
        out = json.loads(raw)
        assert {"query", "lang", "in_scope", "answers"} <= set(out)
    else:
        _assert_refused_with_a_message(status, raw)
    _assert_no_traceback(capfd)


@pytest.mark.slow
@FUZZ
@given(question=st.one_of(http_text, json_value), item_id=st.one_of(st.sampled_from(["master/mindspore/installation/x"]), json_value),
       vote=st.one_of(st.sampled_from(["like", "dislike"]), json_value), session=st.one_of(st.none(), http_text, json_value),
       content_type=st.sampled_from(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"]),
       origin=st.sampled_from([None, None, "https://evil.example", "null"]), raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_api_feedback_over_http_saves_or_refuses_with_a_message(served, capfd, question, item_id, vote, session,
                                                                 content_type, origin, raw):
    body = raw if raw is not None else json.dumps({"question": question, "item_id": item_id, "vote": vote,
                                                   "session": session}).encode()
    status, out = _http("POST", f"{served}/api/feedback", body, content_type, {"Origin": origin} if origin else None)
    if status == 0 and _reset_allowed(body, "/api/feedback"):
        return
    if status == 202:
        assert json.loads(out)["status"] == "saved"
    else:
        _assert_refused_with_a_message(status, out)
    _assert_no_traceback(capfd)


def gradio_call(base: str, api: str, body: bytes) -> tuple[int, object]:
    """POST /gradio_api/call/<api>, then GET its event stream: (status, ("complete"|"error", payload)) or
    (status, refusal body) when the POST itself was refused."""
    status, raw = _http("POST", f"{base}/gradio_api/call/{api}", body)
    if status != 200:
        return status, raw
    event_id = json.loads(raw)["event_id"]
    status, stream = _http("GET", f"{base}/gradio_api/call/{api}/{event_id}")
    assert status == 200, (status, stream[:300])
    lines = stream.decode("utf-8").splitlines()
    event = [line[7:] for line in lines if line.startswith("event: ")][-1]
    payload = json.loads([line[6:] for line in lines if line.startswith("data: ")][-1])
    return status, (event, payload)


@pytest.mark.slow
@FUZZ
@example(api="ask", question="", k=0, version="latest", history=None, arity=0, raw=float("inf"))  # was a 500
@example(api="search", question="", k=0, version="latest", history=None, arity=0, raw={"a": 1})
@given(api=st.sampled_from(["ask", "search"]), question=st.one_of(http_text, http_text, json_value),
       k=st.one_of(st.integers(-3, 60), json_value), version=st.one_of(st.sampled_from(["latest", "master"]), json_value),
       history=history_value, arity=st.integers(0, 6), raw=st.one_of(st.none(), st.none(), st.binary(max_size=40), json_value))
def test_gradio_api_over_http_answers_or_gives_an_error_event_with_a_message(served, capfd, api, question, k, version,
                                                                               history, arity, raw):
    inputs = [question, k, version, "", history] if api == "search" else [question, version, "", history]
    if raw is None:
        body = json.dumps({"data": inputs[:arity] if arity < len(inputs) else inputs}).encode()
    else:
        body = raw if isinstance(raw, bytes) else json.dumps({"data": raw}).encode()
    status, result = gradio_call(served, api, body)
    if status == 0 and _reset_allowed(body, "/gradio_api/"):
        return
    if status != 200:  # refused at the door (413/422) or by Gradio (a body that is no call)
        assert 400 <= status < 500, (status, result[:300])
        assert json.loads(result).get("error") or json.loads(result).get("detail"), result[:300]
    else:
        event, payload = result
        if event == "error":
            assert payload is not None, "{'error': null}"
            message = payload if isinstance(payload, str) else json.dumps(payload)
            assert message.strip() and message != "null"
        else:
            assert event == "complete" and payload and payload[0]
    _assert_no_traceback(capfd)
