"""One poison vote never costs a good one: values are sanitised at the door of the store, and a batch the database
still refuses is written row by row, so the bad row is dropped alone and at once (issue 23: a lone surrogate on
SQLite and a NUL byte on PostgreSQL stalled the writer for 30 s and dropped the good votes batched with them).
Run on both backends, like test_feedback_backends.py."""

from __future__ import annotations

import sqlite3

import pytest
from test_feedback_backends import make_store, pg_cluster, target  # noqa: F401 - fixtures

from faqbot.feedback import LIKE, OFF_TOPIC, FeedbackStore, _is_outage

ITEM = "master/mindspore/installation/aaaaaaaa"
GOOD = 30
POISONS = {
    "lone surrogate session": {"session": "\ud800"},
    "lone surrogate question": {"question": "装不上\udfff了"},
    "NUL byte question": {"question": "how do I install\x00 it"},
    "NUL byte item id": {"item_id": ITEM + "\x00"},
    "escape and bidi characters": {"question": "\x1b[2J\u202eevil", "session": "\x1b]0;title\x07s"},
}


def _record_around(store: FeedbackStore, poison: dict) -> None:
    for i in range(GOOD):
        if i == GOOD // 2:
            row = {"question": "poison", "item_id": ITEM, "session": "p", **poison}
            assert store.record(row["question"], LIKE, item_id=row["item_id"], lang="en", session=row["session"])
        assert store.record(f"good question {i}", LIKE, item_id=ITEM, lang="en", session=f"s{i}")


@pytest.mark.parametrize("poison", POISONS.values(), ids=list(POISONS))
def test_a_poison_vote_is_cleaned_at_the_door_and_every_good_vote_lands(make_store, poison):
    store = make_store(retry_seconds=600)  # a stall would outlast the flush below
    _record_around(store, poison)
    assert store.flush(60)
    questions = [q for (q,) in store.rows("SELECT question FROM feedback WHERE question LIKE ?", ("good question %",))]
    assert len(questions) == GOOD
    stats = store.stats()
    assert stats["dropped"] == 0 and stats["written"] == GOOD + 1
    stored = store.rows("SELECT question, item_id, session FROM feedback WHERE question NOT LIKE ?", ("good question %",))
    assert len(stored) == 1
    for value in stored[0]:
        assert "\x00" not in value and "\x1b" not in value and "\u202e" not in value
        value.encode("utf-8")  # no lone surrogate left


def test_a_million_character_question_is_stored_cut_and_masked(make_store):
    store = make_store()
    assert store.record("mail zhang@huawei.com " + "中" * 1_000_000, OFF_TOPIC, kind="off_topic", in_scope=False)
    assert store.flush(60)
    [(question,)] = store.rows("SELECT question FROM feedback")
    assert question.startswith("mail <email> 中") and len(question) <= 2000


def _raw_row(question: str, session: str | None = None, item_id: str | None = ITEM) -> tuple:
    """A row as the writer queue holds it, not sanitised: what a future bug at the door would let through."""
    return ("2026-12-07T00:00:00+00:00", question, item_id, None, "en", LIKE, 1, "vote", session)


@pytest.mark.parametrize("poison", [_raw_row("x", session="\ud800"), _raw_row("a\x00b"), _raw_row("\udc80")],
                         ids=["surrogate session", "NUL question", "surrogate question"])
def test_a_row_the_database_refuses_is_dropped_alone_without_stalling_the_writer(make_store, poison):
    store = make_store(retry_seconds=600)  # were the batch retried until it gives up, the flush would time out
    store._ensure_writer()
    rows = [_raw_row(f"good question {i}", session=f"s{i}") for i in range(GOOD)]
    for row in rows[: GOOD // 2] + [poison] + rows[GOOD // 2:]:  # one queue burst: written as one batch
        store._queue.put(row)
    assert store.flush(60)
    assert len(store.rows("SELECT id FROM feedback WHERE question LIKE ?", ("good question %",))) == GOOD
    stats = store.stats()
    assert stats["written"] + stats["dropped"] == GOOD + 1 and stats["written"] >= GOOD
    assert stats["retried"] == 0


def test_a_locked_database_is_an_outage_to_wait_for_and_bad_text_is_not():
    assert _is_outage(sqlite3.OperationalError("database is locked"))
    assert _is_outage(OSError("disk full"))
    assert not _is_outage(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not _is_outage(ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))
    assert not _is_outage(sqlite3.InterfaceError("Error binding parameter 1"))


def test_over_http_a_poison_vote_between_good_ones_costs_none_of_them(fake_retriever, tmp_path):
    """The probe's case: `"session": "\\ud800"` (and a NUL in the question) sent as JSON escapes to POST
    /api/feedback, then ordinary votes: every one is acknowledged 202 and stored."""
    import json

    from test_vote_guard import JSON, _post, _serve

    store = FeedbackStore(tmp_path / "fb.sqlite3", retry_seconds=600)
    demo, port = _serve(fake_retriever, store, vote_rate=0)
    item = fake_retriever.items[0].id
    try:
        poison = '{"question": "q\\u0000x", "item_id": "%s", "vote": "like", "session": "\\ud800"}' % item
        status, answer, _ = _post(port, poison.encode(), JSON)
        assert status == 202, answer
        for i in range(GOOD):
            vote = {"question": f"good question {i}", "item_id": item, "vote": "dislike", "session": f"s{i}"}
            status, answer, _ = _post(port, json.dumps(vote).encode(), JSON)
            assert status == 202, answer
        assert len(store.rows("SELECT id FROM feedback WHERE question LIKE ?", ("good question %",))) == GOOD
        assert store.stats()["dropped"] == 0
    finally:
        demo.close()
        store.close()
