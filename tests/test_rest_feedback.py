"""POST /api/feedback over real HTTP (the REST routes without Gradio, on the fixture index): a vote is acknowledged with 202 only
once its row is in the database, a vote the database cannot take gets a 503 that says so, bad input gets a 4xx
with a one-line JSON error, and /healthz says whether the feedback database is reachable or queueing."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
from typing import Any

import pytest

import faqbot.rest as rest
from faqbot.feedback import FeedbackStore


def _serve(retriever, store: FeedbackStore, index_dir):
    """The REST routes alone (no Gradio), behind the request limits, over one FaqService; /healthz checks
    `index_dir`, the same fixture pages saved by the same model."""
    from types import SimpleNamespace

    from conftest import serve_asgi
    from faqbot.config import Settings
    from faqbot.service import FaqService

    settings = Settings(feedback_db=store.path, index_dir=index_dir.parents[1], model=retriever.embedder.name)
    assert settings.model_index_dir == index_dir
    store.start()
    api = rest.RestApi(FaqService(retriever, settings, store), workers=1)
    port, stop = serve_asgi(api.app())
    return SimpleNamespace(close=lambda: (stop(), api.close())), port


def _call(port: int, method: str, path: str, payload=None, raw: bytes | None = None) -> tuple[int, dict, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}"), resp.headers  # case-insensitive
    finally:
        conn.close()


@pytest.fixture(scope="module")
def app(fake_retriever, fake_index_dir, tmp_path_factory):
    db = tmp_path_factory.mktemp("votes") / "feedback.sqlite3"
    store = FeedbackStore(db)
    demo, port = _serve(fake_retriever, store, fake_index_dir)
    yield port, db, fake_retriever.items[0].id
    demo.close()
    store.close()


def _votes(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT question, item_id, vote, lang, session, kind FROM feedback WHERE kind = 'vote'").fetchall()


def test_an_acknowledged_vote_is_already_in_the_database(app):
    port, db, item = app
    status, body, headers = _call(port, "POST", "/api/feedback", {"question": "如何安装 MindSpore？", "item_id": item,
                                                                  "vote": "dislike", "lang": "zh", "session": "s-1"})
    assert (status, body) == (202, {"status": "saved"})
    assert ("如何安装 MindSpore？", item, -1, "zh", "s-1", "vote") in _votes(db)  # no flush needed: it is committed
    assert headers.get("X-Faqbot-Replica") == rest.REPLICA


@pytest.mark.parametrize("payload, fragment", [
    ({"question": "q", "item_id": "ITEM", "vote": "meh"}, 'vote must be "like" or "dislike"'),
    ({"question": "q", "item_id": "no/such/item", "vote": "like"}, "unknown item_id"),
    ({"question": "", "item_id": "ITEM", "vote": "like"}, "question must be a non-empty string"),
    ({"item_id": "ITEM", "vote": "like"}, "question must be a non-empty string"),
    ({"question": "q", "vote": "like"}, "item_id must be a non-empty string"),
    ({"question": "q", "item_id": "ITEM", "vote": 1}, "vote must be a non-empty string"),
    ({"question": "q", "item_id": "ITEM", "vote": "like", "lang": "fr"}, 'lang must be "zh" or "en"'),
    ({"question": "q", "item_id": "ITEM", "vote": "like", "score": 1}, "unknown field 'score'"),
    ({"question": "q", "item_id": "ITEM", "vote": "like", "session": "x" * 200}, "session must be a string"),
    (["like"], "must be a JSON object"),
])
def test_bad_votes_get_400_with_what_to_send_and_store_nothing(app, payload, fragment):
    port, db, item = app
    if isinstance(payload, dict) and payload.get("item_id") == "ITEM":
        payload = {**payload, "item_id": item}
    before = len(_votes(db))
    status, body, _ = _call(port, "POST", "/api/feedback", payload)
    assert status == 400 and fragment in body["error"] and "\n" not in body["error"]
    assert len(_votes(db)) == before


def test_a_body_that_is_not_json_gets_400_and_get_is_not_allowed(app):
    port, _, _ = app
    status, body, _ = _call(port, "POST", "/api/feedback", raw=b"vote=like")
    assert status == 400 and "not JSON" in body["error"]
    assert _call(port, "GET", "/api/feedback")[0] == 405


def test_healthz_reports_the_feedback_database_reachable(app):
    port, _, _ = app
    status, body, _ = _call(port, "GET", "/healthz")
    assert status == 200
    assert body["feedback"]["backend"] == "sqlite" and body["feedback"]["database"] == "reachable"
    assert body["feedback"]["written"] >= 0 and body["feedback"]["dropped"] == 0


@pytest.mark.slow  # starts its own app
def test_a_vote_the_database_cannot_take_is_not_acknowledged(fake_retriever, fake_index_dir, tmp_path, monkeypatch):
    """The feedback "file" is a folder: every write fails. The vote is refused with 503, never a false 202, and
    /healthz says the database is not reachable while votes queue."""
    monkeypatch.setattr(rest, "FEEDBACK_ACK_SECONDS", 1.0)
    folder = tmp_path / "feedback.sqlite3"
    folder.mkdir()
    store = FeedbackStore(folder, retry_seconds=30)
    demo, port = _serve(fake_retriever, store, fake_index_dir)
    try:
        item = fake_retriever.items[0].id
        status, body, _ = _call(port, "POST", "/api/feedback", {"question": "q", "item_id": item, "vote": "like"})
        assert status == 503 and body["status"] == "queued" and "did not confirm" in body["error"]
        status, health, _ = _call(port, "GET", "/healthz")
        assert status == 200 and health["feedback"]["database"] == "queueing"
        assert "folder" in health["feedback"]["error"]
    finally:
        demo.close()
        store.close(timeout=0.5)


@pytest.mark.slow  # starts its own app
def test_a_vote_dropped_by_the_store_is_not_acknowledged(fake_retriever, fake_index_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(rest, "FEEDBACK_ACK_SECONDS", 5.0)
    folder = tmp_path / "feedback.sqlite3"
    folder.mkdir()
    store = FeedbackStore(folder, retry_seconds=0.2)  # gives up on a row after 0.2 s of failed writes
    demo, port = _serve(fake_retriever, store, fake_index_dir)
    try:
        item = fake_retriever.items[0].id
        status, body, _ = _call(port, "POST", "/api/feedback", {"question": "q", "item_id": item, "vote": "like"})
        assert status == 503 and body["status"] == "dropped"
        assert store.stats()["dropped"] >= 1
    finally:
        demo.close()
        store.close(timeout=0.5)
