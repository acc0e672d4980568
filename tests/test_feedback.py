"""The SQLite feedback log: off the request path (a locked or deleted file never delays an answer), private by
default (masking, no text when switched off, retention, cap, purge), and the `faqbot feedback` report."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

import pytest

from faqbot.cli import main
from faqbot.config import SettingsError, settings_from_env
from faqbot.feedback import DISLIKE, LIKE, OFF_TOPIC, SCHEMA_VERSION, FeedbackStore, mask_personal

ITEM_A = "master/mindspore/installation/aaaaaaaa"
ITEM_B = "master/mindspore/installation/bbbbbbbb"


@pytest.fixture
def store(tmp_path):
    s = FeedbackStore(tmp_path / "deep" / "er" / "feedback.sqlite3")
    yield s
    s.close(timeout=2)


def _rows(path, sql="SELECT question, item_id, vote, in_scope, kind FROM feedback ORDER BY id"):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_database_and_parent_folders_are_created_on_first_write_in_wal_mode(store):
    assert not store.path.exists()
    store.record("如何安装？", DISLIKE, item_id=ITEM_A, score=0.91, lang="zh", in_scope=True)
    assert store.flush(10)
    assert store.path.exists()
    assert _rows(store.path) == [("如何安装？", ITEM_A, -1, 1, "vote")]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_report_does_not_create_a_database(tmp_path):
    store = FeedbackStore(tmp_path / "none" / "fb.sqlite3")
    assert store.report() == {"db": str(store.path), "unanswered": [], "disliked": []}
    assert not (tmp_path / "none").exists()


def test_unknown_vote_or_kind_is_refused(store):
    with pytest.raises(ValueError, match="vote"):
        store.record("q", 2)
    with pytest.raises(ValueError, match="kind"):
        store.record("q", LIKE, kind="guess")


def test_the_kind_is_said_never_guessed_from_vote_0(store):
    """Vote 0 is no longer an implicit off-topic row: it must be asked for as kind="off_topic", and an off-topic row
    cannot carry a thumb."""
    with pytest.raises(ValueError, match="vote row's vote must be"):
        store.record("q", OFF_TOPIC)
    with pytest.raises(ValueError, match="off_topic row's vote must be 0"):
        store.record("q", LIKE, kind="off_topic")
    with pytest.raises(ValueError, match="click row's vote"):
        store.record("q", OFF_TOPIC, kind="click")
    store.record("q", OFF_TOPIC, kind="off_topic", in_scope=False)
    store.record("q2", DISLIKE)
    assert store.flush(10)
    assert _rows(store.path) == [("q", None, 0, 0, "off_topic"), ("q2", None, -1, 1, "vote")]


@pytest.mark.slow
def test_a_writer_holding_the_database_locked_does_not_delay_record_and_the_vote_lands_after(store):
    """Issue 9 finding 1: a lock held for seconds used to stall every answer and drop off-topic logs."""
    store.record("warm up", LIKE, item_id=ITEM_A)
    assert store.flush(10)
    locker = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")  # stronger than the probe's reader: no other connection may write
    released = threading.Event()

    def release_later():
        time.sleep(3)
        locker.execute("COMMIT")
        locker.close()
        released.set()

    threading.Thread(target=release_later, daemon=True).start()
    accepted = [store.record(f"during lock {i}", OFF_TOPIC, kind="off_topic", lang="en", in_scope=False) for i in range(6)]
    assert accepted == [True] * 6 and not released.is_set()  # all queued while the lock was still held
    assert store.stats()["written"] == 1  # nothing could be written yet
    assert released.wait(10)
    assert store.flush(30)
    assert [q for q, *_ in _rows(store.path)][1:] == [f"during lock {i}" for i in range(6)]
    stats = store.stats()
    assert stats["retried"] >= 1 and stats["dropped"] == 0 and stats["written"] == 7


def test_an_open_read_transaction_does_not_block_writes(store):
    """WAL: a report reading for a long time does not hold the writer up at all."""
    store.record("first", LIKE, item_id=ITEM_A)
    assert store.flush(10)
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM feedback").fetchone() == (1,)
    store.record("second", LIKE, item_id=ITEM_A)
    assert store.flush(10)
    assert store.stats()["retried"] == 0
    reader.execute("COMMIT")
    reader.close()
    assert len(_rows(store.path)) == 2


def test_deleting_the_database_while_running_the_next_vote_recreates_it(store):
    """Issue 9 finding 7: a deleted file used to leave every later write failing with "no such table"."""
    store.record("before", LIKE, item_id=ITEM_A)
    assert store.flush(10)
    for suffix in ("", "-wal", "-shm"):
        store.path.with_name(store.path.name + suffix).unlink(missing_ok=True)
    store.record("after", DISLIKE, item_id=ITEM_B)
    assert store.flush(10)
    assert _rows(store.path) == [("after", ITEM_B, -1, 1, "vote")]
    assert store.stats()["dropped"] == 0


def test_a_database_replaced_by_an_empty_file_gets_its_schema_back(store):
    store.record("before", LIKE, item_id=ITEM_A)
    assert store.flush(10)
    store.path.unlink()
    store.path.write_bytes(b"")
    store.record("after", LIKE, item_id=ITEM_B)
    assert store.flush(10)
    assert [q for q, *_ in _rows(store.path)] == ["after"]
    assert _rows(store.path, "SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_unwritable_path_warns_once_at_start_and_record_still_returns(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = FeedbackStore(blocker / "fb.sqlite3", retry_seconds=0.2)
    with caplog.at_level(logging.WARNING, logger="faqbot.feedback"):
        store.start()
        assert store.record("q1", LIKE, item_id=ITEM_A) and store.record("q2", LIKE, item_id=ITEM_A)
        assert store.flush(10)
    warnings = [r.getMessage() for r in caplog.records if "will not be saved" in r.getMessage()]
    assert len(warnings) == 1 and "FAQBOT_FEEDBACK_DB" in warnings[0]
    assert store.stats()["dropped"] == 2
    store.close()


def test_an_old_database_without_schema_version_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the table as the first faqbot release wrote it
        conn.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, "
                     "question TEXT NOT NULL, item_id TEXT, score REAL, lang TEXT, vote INTEGER NOT NULL, "
                     "in_scope INTEGER NOT NULL)")
        conn.execute("INSERT INTO feedback (time, question, vote, in_scope) VALUES ('2026-11-01T00:00:00+00:00', 'old q', 0, 0)")
    store = FeedbackStore(path)
    assert [u["question"] for u in store.unanswered()] == ["old q"]  # read as an off-topic question after upgrade
    assert _rows(path, "SELECT kind FROM feedback") == [("off_topic",)]


# ---------------------------------------------------------------- privacy


@pytest.mark.parametrize(
    "text, expected",
    [
        ("contact me at zhang.san+ms@huawei.com please", "contact me at <email> please"),
        ("我的手机是 13812345678，装不上", "我的手机是 <phone>，装不上"),
        ("call +86 138 1234 5678 now", "call <phone> now"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 fails", "token <secret> fails"),
        ("OPENAI sk-proj-abcdefghijklmnop1234567890 leaked", "OPENAI <secret> leaked"),
        ("hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 here", "hash <secret> here"),
        ("secret dGhpcyBpcyBhIHNlY3JldCBrZXkgMTIzNDU2Nzg5MA== end", "secret <secret> end"),
        ("server 192.168.1.20 refused", "server <ip> refused"),
        ("bind to fe80::1ff:fe23:4567:890a failed", "bind to <ip> failed"),
        ("password: hunter2hunter2", "password: <secret>"),
    ],
)
def test_obvious_personal_data_is_masked(text, expected):
    assert mask_personal(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "pip 安装 mindspore 1.2.0 报 not a supported wheel 怎么办",
        "ERR_UNSAFE_PORT when opening MindInsight on port 8080",
        "parse_error.101 in mindspore.dataset.GeneratorDataset",
        "std::vector out of range in ms::Tensor",
        "CUDA 10.1 with cuDNN 7.6.5 on Ubuntu 18.04",
    ],
)
def test_ordinary_faq_questions_are_left_alone(text):
    assert mask_personal(text) == text


def test_masked_text_is_what_gets_stored(store):
    store.record("my key is ghp_abcdefghijklmnopqrstuvwxyz0123456789, mail a@b.cn", OFF_TOPIC, kind="off_topic", lang="en", in_scope=False)
    assert store.flush(10)
    assert _rows(store.path, "SELECT question FROM feedback") == [("my key is <secret>, mail <email>",)]


def test_log_questions_off_stores_votes_without_text(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3", log_questions=False)
    store.record("量子计算机怎么买？", OFF_TOPIC, kind="off_topic", lang="zh", in_scope=False)
    store.record("How do I install?", LIKE, item_id=ITEM_A, lang="en")
    assert store.flush(10)
    assert _rows(store.path, "SELECT question, vote, item_id FROM feedback ORDER BY id") == [("", 0, None), ("", 1, ITEM_A)]
    assert store.unanswered() == []  # nothing to show without text
    store.close()


def test_privacy_settings_come_from_the_environment_and_bad_values_get_one_line():
    s = settings_from_env({"FAQBOT_LOG_QUESTIONS": "off", "FAQBOT_FEEDBACK_RETENTION_DAYS": "30",
                           "FAQBOT_FEEDBACK_MAX_ROWS": "500", "FAQBOT_FEEDBACK_DB": "postgresql://u@db:5432/faq"})
    assert (s.log_questions, s.feedback_retention_days, s.feedback_max_rows) == (False, 30, 500)
    assert s.feedback_db == "postgresql://u@db:5432/faq"
    store = FeedbackStore.from_settings(s)
    assert store.postgres and not store.log_questions and store.max_rows == 500
    defaults = settings_from_env({})
    assert (defaults.log_questions, defaults.feedback_retention_days, defaults.feedback_max_rows) == (True, 90, 100_000)
    for env, name in (({"FAQBOT_LOG_QUESTIONS": "maybe"}, "FAQBOT_LOG_QUESTIONS"),
                      ({"FAQBOT_FEEDBACK_RETENTION_DAYS": "0"}, "FAQBOT_FEEDBACK_RETENTION_DAYS"),
                      ({"FAQBOT_FEEDBACK_MAX_ROWS": "1e3.5"}, "FAQBOT_FEEDBACK_MAX_ROWS")):
        with pytest.raises(SettingsError, match=name) as info:
            settings_from_env(env)
        assert "\n" not in str(info.value)


def test_row_cap_keeps_the_newest_rows(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3", max_rows=3)
    for i in range(10):
        store.record(f"q{i}", LIKE, item_id=ITEM_A)
    assert store.flush(10)
    assert [q for q, *_ in _rows(store.path)] == ["q7", "q8", "q9"]
    store.close()


def test_purge_all_removes_the_text_from_the_file(store, capsys):
    store.record("secret-ish wording nobody should keep", OFF_TOPIC, kind="off_topic", lang="en", in_scope=False)
    assert store.flush(10)
    store.close()
    assert main(["feedback", "purge", "--all", "--db", str(store.path)]) == 0
    assert "Deleted all 1 stored row(s)" in capsys.readouterr().out
    assert _rows(store.path) == []
    assert b"nobody should keep" not in store.path.read_bytes()


def test_purge_without_a_database_says_so(tmp_path, capsys):
    assert main(["feedback", "--db", str(tmp_path / "missing.sqlite3"), "purge", "--all"]) == 1
    err = capsys.readouterr().err
    assert "no feedback database" in err and "Traceback" not in err


# ---------------------------------------------------------------- the report command


def test_feedback_command_prints_both_lists(tmp_path, capsys, corpus):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    item = corpus.items[0]
    store.record("量子计算机怎么买？", OFF_TOPIC, kind="off_topic", lang="zh", in_scope=False)
    store.record(item.entry("en").question, DISLIKE, item_id=item.id, score=0.85, lang="en")
    assert store.flush(10)
    assert main(["feedback", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    unanswered, disliked = out.split("Most disliked answers:")
    assert "量子计算机怎么买？" in unanswered
    assert item.id in disliked and item.entry("en").question.split()[0] in disliked
    store.close()


def test_feedback_command_json(tmp_path, capsys):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    store.record("what is love", OFF_TOPIC, kind="off_topic", lang="en", in_scope=False)
    assert store.flush(10)
    assert main(["feedback", "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unanswered"][0]["question"] == "what is love"
    assert report["disliked"] == []
    store.close()


def test_feedback_command_explains_a_wrong_path(tmp_path, capsys):
    assert main(["feedback", "--db", str(tmp_path / "missing.sqlite3")]) == 1
    err = capsys.readouterr().err
    assert "no feedback database" in err and "Traceback" not in err
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database")
    assert main(["feedback", "--db", str(junk)]) == 1
    assert "--db" in capsys.readouterr().err
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    assert main(["feedback", "--db", str(other), "purge", "--all"]) == 1
    assert "not a faqbot feedback database" in capsys.readouterr().err
    assert _rows(other, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("notes",)]  # left untouched
