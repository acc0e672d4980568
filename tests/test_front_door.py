"""One front door (issue 22) and limits at every door (issue 23): every surface goes through service.FaqService.

Fast tier (fixture index, HashEmbedder): the import graph; the service, REST and CLI without Gradio; off-topic
questions from Gradio /search and REST /api/search in `faqbot feedback gaps`; texts cut before any other work
(masking included); body size, JSON depth and upload limits with JSON errors; old Gradio API calls with fewer
inputs; `ask --jsonl` error lines with the usual keys. Slow tier (real model and index): the same question with
the same history through the chat handler, Gradio /ask and /search, /api/search, `ask --jsonl` and the REPL gets
the same entry, level and confidence.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from faqbot.config import Settings
from faqbot.conversation import Conversation
from faqbot.feedback import FeedbackStore
from faqbot.service import FaqService, InputError, json_depth

REPO = Path(__file__).resolve().parents[1]
SERVICE_KEYS = {"query", "lang", "match", "in_scope", "confidence", "answers"}


# --------------------------------------------------------------------------- structure


def test_import_graph_is_one_way_without_new_cycles():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "import_graph.py")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "one way" in proc.stdout


def test_import_graph_check_finds_an_upward_import_a_cycle_and_gradio_in_rest(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    for name, text in {"search.py": "from faqbot.service import FaqService\n", "service.py": "from . import search\n",
                       "rest.py": "import gradio\nfrom faqbot.service import x\n", "web.py": "from faqbot import rest\n",
                       "cli.py": "from faqbot.service import x\n"}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = import_graph.problems(*import_graph.graph(tmp_path))
    assert any(p.startswith("upward import: search") for p in found)
    assert any(p.startswith("import cycle: search <-> service") for p in found)
    assert any(p.startswith("rest imports gradio") for p in found)
    assert any(p.startswith("front end web imports front end rest") for p in found)
    assert any("web does not import the service" in p for p in found)


def test_service_rest_and_cli_import_no_gradio():
    code = ("import sys; import faqbot.service, faqbot.rest, faqbot.cli, faqbot.conversation; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gradio'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# Test files about the Gradio front end or the served app (chat, Gradio API, both on one server): the only ones
# the fast tier may import Gradio for. The REST API, the service and the CLI are tested without it.
GRADIO_TESTS = {"test_api_http.py", "test_api_inputs.py", "test_bench_soak.py", "test_benchmarks.py", "test_browser.py",
                "test_browser_conversation.py", "test_conversation.py", "test_feedback_learning.py", "test_fuzz.py",
                "test_hygiene.py", "test_learning_simulation.py", "test_replicas.py", "test_rest.py", "test_web_api.py",
                "test_front_door.py", "test_config_disclosure.py", "test_vote_guard.py", "test_alternates_serving.py",
                "test_hostile_load.py", "test_connections.py", "test_browser_branding.py", "test_gradio_costs.py"}


def test_the_fast_tier_imports_no_gradio_outside_the_web_tests():
    others = sorted(str(p) for p in (REPO / "tests").glob("test_*.py") if p.name not in GRADIO_TESTS)
    assert any(p.endswith("test_rest_feedback.py") for p in others)  # the REST API is tested without Gradio
    named = [p for p in others if re.search(r"\bgradio\b|faqbot\.(web|server)\b", Path(p).read_text(encoding="utf-8"))]
    assert named == []
    code = ("import sys, pytest; rc = pytest.main(['--co', '-q', '-p', 'no:cacheprovider', '-m', 'not slow', *sys.argv[1:]]); "
            "print('gradio loaded:', any(m.split('.')[0] == 'gradio' for m in sys.modules)); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *others], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "gradio loaded: False" in proc.stdout


# --------------------------------------------------------------------------- the service's checks and limits


class Recorder:
    """A feedback store that keeps what it is given (in memory)."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.path = "memory"

    def record(self, question, vote, **kw):
        self.rows.append((question, vote, kw))
        return True


@pytest.fixture()
def service(fake_retriever):
    return FaqService(fake_retriever, Settings(), Recorder())


def test_a_huge_question_is_cut_before_any_other_work_and_stored_shortened(service):
    question = "mail me at someone@example.com " * 40_000  # 1.24 M characters
    answer = service.answer(question)
    assert answer.result.match == "none" and f"{len(question):,}" in answer.result.message
    (stored, _, kw), = service.store.rows
    assert len(stored) <= 2000 and kw["in_scope"] is False  # the store masks what it gets: at most 2,000 characters


def test_history_turns_and_their_number_are_cut_at_the_door(service):
    query = service.validate("那 GPU 版本呢？", [f"question {i} " + "x" * 50_000 for i in range(5_000)])
    turns = query.conversation.turns
    assert len(turns) == Settings().max_history_turns
    assert turns[-1].question.startswith("question 4999") and all(len(t.question) <= 2000 for t in turns)


@pytest.mark.parametrize(("kwargs", "field"), [({"k": 0}, "k"), ({"k": "abc"}, "k"), ({"version": "v9"}, "version"),
                                                ({"component": "tensorflow"}, "component"), ({"component": 3}, "component")])
def test_bad_requests_get_one_input_error_naming_the_input(service, kwargs, field):
    with pytest.raises(InputError) as err:
        service.answer("How do I install MindSpore?", **kwargs)
    assert err.value.field == field and field in err.value.message and err.value.status == 400


def test_a_history_that_is_not_a_list_of_strings_is_an_input_error(service):
    for history in ("one question", [1, 2], {"q": 1}):
        with pytest.raises(InputError, match="history"):
            service.answer("How do I install MindSpore?", history)


def test_vote_fields_are_checked_and_cut(service, fake_retriever):
    item = fake_retriever.items[0].id
    turn = service.check_vote("a b " * 30_000, item, "like", "en", "s-1")
    assert len(turn.question) <= 2000 and turn.item_id == item
    for args, needle in [(("q", "nope", "like"), "unknown item_id"), (("q", item, "meh"), "vote must be"),
                         (("q", item, "like", "fr"), "lang must be"), (("q", item, "like", None, "s" * 200), "session"),
                         (("\ud800", item, "like"), "lone surrogate")]:
        with pytest.raises(InputError, match=needle):
            service.check_vote(*args)


def test_json_depth_is_counted_without_parsing():
    assert json_depth(b'{"q": "[[[[[[", "history": ["a", "b"]}') == 2
    assert json_depth(b"[" * 100_000 + b"]" * 100_000) == 100_000
    assert json_depth(b'"just a string with { and ["') == 0


def test_a_click_and_a_rephrase_are_evidence_only_after_an_unresolved_reply(service):
    unresolved = Conversation().then(service.answer("pip 安装 mindspore 报错").turn, message=1)
    before = unresolved.last()
    assert before.level == "none" and before.unresolved
    after = replace(before, question="How to uninstall MindSpore?", item_id="x/y/z/1", level="answer", message=3)
    service.store.rows.clear()
    service.click(before, after, "s")
    service.click(after, after, "s")  # the same turn: nothing
    assert [(q, kw["kind"], kw["item_id"]) for q, _, kw in service.store.rows] == [(before.question, "click", "x/y/z/1")]


# --------------------------------------------------------------------------- the served app (fast tier)


@pytest.fixture(scope="module")
def app(fake_retriever, tmp_path_factory):
    from faqbot.server import build_app, launch

    db = tmp_path_factory.mktemp("front") / "feedback.sqlite3"
    store = FeedbackStore(db)
    demo = build_app(fake_retriever, Settings(feedback_db=db), store=store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, "127.0.0.1", port, quiet=True)
    yield SimpleNamespace(port=port, db=db, store=store)
    demo.close()
    store.close()


def _http(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _gradio(port: int, api: str, data: list) -> tuple[str, object]:
    """A plain-HTTP Gradio API call, as a client without gradio_client makes it: ("complete"|"error", data)."""
    status, raw = _http(port, "POST", f"/gradio_api/call/{api}", json.dumps({"data": data}, ensure_ascii=False).encode())
    assert status == 200, raw
    status, stream = _http(port, "GET", f"/gradio_api/call/{api}/{json.loads(raw)['event_id']}")
    text = stream.decode("utf-8")
    event = re.findall(r"^event: (\w+)", text, re.M)[-1]
    payload = json.loads(re.findall(r"^data: (.*)$", text, re.M)[-1])
    return event, payload


def test_off_topic_questions_from_gradio_search_and_rest_reach_the_gap_report(app, fake_embedder, monkeypatch, capsys):
    from faqbot import embed
    from faqbot.cli import main

    event, out = _gradio(app.port, "search", ["How do I bake sourdough bread?", 3, "latest", "", []])
    assert event == "complete" and out[0]["match"] == "none"
    status, raw = _http(app.port, "POST", "/api/search", json.dumps({"q": "红烧肉怎么做才好吃？"}).encode())
    assert status == 200 and json.loads(raw)["match"] == "none"
    assert app.store.flush(10)
    monkeypatch.setattr(embed, "load_embedder", lambda name: fake_embedder)
    capsys.readouterr()
    assert main(["feedback", "--db", str(app.db), "gaps"]) == 0
    report = capsys.readouterr().out
    assert "How do I bake sourdough bread?" in report and "红烧肉怎么做才好吃？" in report


def test_old_gradio_calls_without_history_still_work_and_bad_ones_carry_a_message(app):
    """The exact JSON bodies a client written before `history` existed sends (3 inputs to /ask, 4 to /search)."""
    event, out = _gradio(app.port, "ask", ["How do I install MindSpore?", "latest", ""])
    assert event == "complete" and isinstance(out[0], str) and out[0].strip()
    event, out = _gradio(app.port, "search", ["How do I install MindSpore?", 3, "latest", ""])
    assert event == "complete" and SERVICE_KEYS <= set(out[0])
    event, out = _gradio(app.port, "ask", [42, "latest", ""])
    assert event == "error" and "question must be a string" in out["error"]
    event, out = _gradio(app.port, "search", ["install", 0, "latest", "", None])
    assert event == "error" and "k must be a whole number" in out["error"]
    for api, data in (("ask", []), ("search", ["install", 3, "latest", "", None, "extra"])):
        # too few or too many inputs: refused at the door with the inputs to send (Gradio logged a traceback)
        status, raw = _http(app.port, "POST", f"/gradio_api/call/{api}", json.dumps({"data": data}).encode())
        assert status == 422 and f"/{api} takes" in json.loads(raw)["error"]


@pytest.mark.parametrize("path", ["/api/search", "/api/feedback", "/gradio_api/call/ask", "/gradio_api/call/search"])
def test_deeply_nested_json_gets_a_json_422_on_every_door(app, path):
    status, raw = _http(app.port, "POST", path, b"[" * 5000 + b"]" * 5000)
    assert status == 422 and "deeper than" in json.loads(raw)["error"]


@pytest.mark.parametrize(("path", "size"), [("/api/search", 70_000), ("/api/feedback", 70_000),
                                            ("/gradio_api/call/ask", 1_100_000)])
def test_a_body_over_the_limit_gets_a_json_413(app, path, size):
    body = json.dumps({"q": "x" * size, "data": ["x" * size]}).encode()
    status, raw = _http(app.port, "POST", path, body)
    assert status == 413 and "KB" in json.loads(raw)["error"]


def test_uploads_are_refused(app):
    status, raw = _http(app.port, "POST", "/gradio_api/upload", b"--x--\r\n", {"Content-Type": "multipart/form-data; boundary=x"})
    assert status == 413 and "no file uploads" in json.loads(raw)["error"]


def test_a_long_question_under_the_body_limit_is_answered_on_the_gradio_api(app):
    event, out = _gradio(app.port, "search", ["中" * 200_000, 3, "latest", "", None])  # 600 KB of UTF-8
    assert event == "complete" and "200,000" in out[0]["message"]


def test_jsonl_error_lines_carry_the_usual_keys(fake_retriever):
    from test_cli_fast import run_cli

    lines = ['{"query": "x", "history": ' + "[" * 5000 + "]" * 5000 + "}", '{"query": 5}', '{"query": "install", "history": "not a list"}',
             '{"query": "install", "version": "v9"}', "How do I install MindSpore?"]
    code, out = run_cli(fake_retriever, ["ask", "--jsonl"], ("\n".join(lines) + "\n").encode())
    objs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(objs) == len(lines)
    assert all(SERVICE_KEYS <= set(o) for o in objs)
    assert all(o.get("error") for o in objs[:4]) and "error" not in objs[4]
    assert "RecursionError" not in out


# --------------------------------------------------------------------------- every surface agrees (slow)

FIRST, FOLLOW, GOLD = "MindSpore Lite 怎么设置日志级别？", "一共有几种？", "master/lite/lite/b2817349"


@pytest.mark.slow
def test_every_surface_gives_the_same_entry_level_and_confidence(retriever, tmp_path):
    import pexpect

    from faqbot.server import build_app, launch
    from faqbot.web import FaqChat

    settings = Settings(feedback_db=tmp_path / "f.sqlite3")
    expected = FaqService(retriever, settings).answer(FOLLOW, [FIRST])
    want = (expected.top.item.id, expected.level, expected.result.confidence)
    assert want[0] == GOLD and want[1] == "related"  # the follow-up is understood from its history
    title = expected.top.entry.question
    shown = f"({want[2]:.2f})"

    chat = FaqChat(retriever, settings)
    _, history, conversation = chat.respond(FIRST, [], "latest", "", None)
    _, history, conversation = chat.respond(FOLLOW, history, "latest", "", conversation)
    turn = conversation.at_message(len(history) - 1)
    assert (turn.item_id, turn.level, turn.confidence) == want, "chat handler"

    demo = build_app(retriever, settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, "127.0.0.1", port, quiet=True)
    try:
        event, out = _gradio(port, "search", [FOLLOW, 5, "latest", "", [FIRST]])
        assert event == "complete"
        assert (out[0]["answers"][0]["id"], out[0]["match"], out[0]["confidence"]) == want, "Gradio /search"
        event, out = _gradio(port, "ask", [FOLLOW, "latest", "", [FIRST]])
        assert event == "complete" and title in out[0] and shown in out[0] and "May be related" in out[0], "Gradio /ask"
        status, raw = _http(port, "POST", "/api/search", json.dumps({"q": FOLLOW, "history": [FIRST]}).encode())
        got = json.loads(raw)
        assert status == 200 and (got["answers"][0]["id"], got["match"], got["confidence"]) == want, "/api/search"
    finally:
        demo.close()

    line = json.dumps({"query": FOLLOW, "history": [FIRST]}, ensure_ascii=False) + "\n"
    proc = subprocess.run([sys.executable, "-m", "faqbot.cli", "ask", "--jsonl"], input=line, capture_output=True,
                          text=True, timeout=600)
    got = json.loads(proc.stdout)
    assert (got["answers"][0]["id"], got["match"], got["confidence"]) == want, "ask --jsonl"

    child = pexpect.spawn(sys.executable, ["-m", "faqbot.cli", "chat"], timeout=300, dimensions=(50, 200),
                          env={**os.environ, "TERM": "xterm"})
    try:
        child.expect_exact(b"> ")
        child.sendline(FIRST.encode())
        child.expect_exact(b"\r\n> ")
        child.sendline(FOLLOW.encode())
        child.expect_exact(b"\r\n> ")
        printed = child.before.decode("utf-8", "replace")
        assert title in printed and shown in printed and "May be related" in printed, "REPL"
        child.sendline(b"/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


@pytest.mark.slow
def test_the_repl_survives_an_invalid_byte_on_its_input():
    """Piped input with a byte that is not UTF-8 (it used to end the chat with UnicodeEncodeError)."""
    proc = subprocess.run([sys.executable, "-m", "faqbot.cli", "chat"], input=b"pip \xff install MindSpore\n/quit\n",
                          capture_output=True, timeout=600)
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0 and "unexpected error" not in err and "Traceback" not in err, err
    assert "pip" in out.split("> ", 1)[1]  # an answer was printed after the prompt
