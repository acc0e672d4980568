"""The feedback store contract, run on both backends: SQLite (a file) and a real PostgreSQL (a throw-away cluster
started here from Debian's `postgresql` binaries). Also: migrations on a fresh and an existing database, and a
PostgreSQL outage during votes."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import missing

from faqbot.cli import main
from faqbot.feedback import DISLIKE, LIKE, OFF_TOPIC, SCHEMA_VERSION, FeedbackStore

ITEM_A = "master/mindspore/installation/aaaaaaaa"
ITEM_B = "master/mindspore/installation/bbbbbbbb"


def _pg_bin() -> Path | None:
    """The folder with initdb/pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None


class PgCluster:
    """A throw-away PostgreSQL cluster in a temporary folder, on 127.0.0.1 and a free port, trust auth."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="faqbot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.user = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.user = "postgres"
            uid, gid = pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid
            os.chown(self.root, uid, gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        self.start()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_cluster():
    bindir = _pg_bin()
    if bindir is None:
        missing("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install -y postgresql")
    cluster = PgCluster(bindir)
    yield cluster
    cluster.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def target(request, tmp_path):
    """Where a fresh feedback database lives: a SQLite path, or a new database on the throw-away cluster."""
    if request.param == "sqlite":
        return tmp_path / "fb.sqlite3"
    return request.getfixturevalue("pg_cluster").new_database()


@pytest.fixture
def make_store(target):
    stores = []

    def make(**kwargs) -> FeedbackStore:
        store = FeedbackStore(target, **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close(timeout=2)


def _all(store: FeedbackStore, sql: str, params: tuple = ()) -> list[tuple]:
    return store.rows(sql, params)


# ---------------------------------------------------------------- the contract, on both backends


def test_a_vote_lands_with_everything_it_was_recorded_with(make_store):
    store = make_store()
    assert store.record("如何安装？", DISLIKE, item_id=ITEM_A, score=0.91, lang="zh", in_scope=True, session="s1")
    assert store.flush(10)
    rows = _all(store, "SELECT question, item_id, score, lang, vote, in_scope, kind, session, time FROM feedback")
    assert len(rows) == 1
    question, item_id, score, lang, vote, in_scope, kind, session, when = rows[0]
    assert (question, item_id, lang, vote, in_scope, kind, session) == ("如何安装？", ITEM_A, "zh", -1, 1, "vote", "s1")
    assert score == pytest.approx(0.91) and when.startswith("20") and "T" in when
    assert store.stats()["written"] == 1 and store.stats()["dropped"] == 0


def test_report_lists_frequent_unanswered_and_most_disliked(make_store):
    store = make_store()
    for q in ["How do I bake bread?", "how do I bake  bread? ", "HOW DO I BAKE BREAD?", "Who won the match?"]:
        store.record(q, OFF_TOPIC, kind="off_topic", item_id=ITEM_A, score=0.5, lang="en", in_scope=False)
    store.record("q1", DISLIKE, item_id=ITEM_B, lang="en")
    store.record("q2", DISLIKE, item_id=ITEM_B, lang="en")
    store.record("q3", DISLIKE, item_id=ITEM_A, lang="zh")
    store.record("q4", LIKE, item_id=ITEM_A, lang="zh")
    store.record("q5", LIKE, item_id="liked/only", lang="zh")
    assert store.flush(10)
    report = store.report(titles={ITEM_B: "How to install?"})
    assert [(u["count"], u["question"]) for u in report["unanswered"]] == [(3, "HOW DO I BAKE BREAD?"), (1, "Who won the match?")]
    assert [(d["item_id"], d["dislikes"], d["likes"]) for d in report["disliked"]] == [(ITEM_B, 2, 0), (ITEM_A, 1, 1)]
    assert set(report["disliked"][0]["questions"]) == {"q1", "q2"} and report["disliked"][0]["title"] == "How to install?"


def test_questions_are_masked_and_log_questions_off_stores_no_text(make_store):
    store = make_store()
    store.record("my mail is li.lei@example.com, key sk-abcdefghijklmnopqrstuvwx", DISLIKE, item_id=ITEM_A, lang="en")
    private = make_store(log_questions=False)
    private.record("装不上，我的手机 13812345678", LIKE, item_id=ITEM_B, lang="zh")
    assert store.flush(10) and private.flush(10)
    texts = {item: q for item, q in _all(store, "SELECT item_id, question FROM feedback")}
    assert texts[ITEM_A] == "my mail is <email>, key <secret>"
    assert texts[ITEM_B] == ""  # the vote is there, its text is not


def test_retention_and_row_cap_are_enforced(make_store):
    store = make_store(retention_days=30, max_rows=5)
    for i in range(8):
        store.record(f"question {i}", LIKE, item_id=ITEM_A, lang="en")
    assert store.flush(10)
    assert [q for (q,) in _all(store, "SELECT question FROM feedback ORDER BY id")] == [f"question {i}" for i in range(3, 8)]
    conn = store._connect()  # age two rows past the retention period, as if written 40 days ago
    old = "2000-01-01T00:00:00+00:00"
    store._execute(conn, "UPDATE feedback SET time = ? WHERE question IN ('question 3', 'question 4')", (old,))
    conn.close()
    assert store.enforce_limits() == 2
    assert store.count() == 3


def test_purge_older_than_and_all(make_store, capsys):
    store = make_store()
    for i in range(4):
        store.record(f"q{i}", OFF_TOPIC, kind="off_topic", lang="en", in_scope=False)
    assert store.flush(10)
    conn = store._connect()
    store._execute(conn, "UPDATE feedback SET time = ? WHERE question IN ('q0', 'q1')", ("2000-01-01T00:00:00+00:00",))
    conn.close()
    db = str(store.path) if not store.postgres else store.url
    assert main(["feedback", "--db", db, "purge", "--older-than", "10"]) == 0
    assert "Deleted 2 row(s)" in capsys.readouterr().out
    assert sorted(q for (q,) in _all(store, "SELECT question FROM feedback")) == ["q2", "q3"]
    assert main(["feedback", "purge", "--all", "--db", db]) == 0
    assert store.count() == 0


def test_feedback_report_command_works_on_either_backend(make_store, capsys):
    store = make_store()
    store.record("量子计算机怎么买？", OFF_TOPIC, kind="off_topic", lang="zh", in_scope=False)
    assert store.flush(10)
    db = str(store.path) if not store.postgres else store.url
    assert main(["feedback", "--db", db, "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["unanswered"][0]["question"] == "量子计算机怎么买？"


def test_fresh_database_gets_the_schema_and_a_second_start_changes_nothing(make_store):
    store = make_store()
    assert store.migrate() == list(range(1, SCHEMA_VERSION + 1))
    versions = _all(store, "SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
    again = make_store()
    assert again.migrate() == []
    assert _all(again, "SELECT version FROM schema_version ORDER BY version") == versions
    again.record("still works", LIKE, item_id=ITEM_A)
    assert again.flush(10) and again.count() == 1


def test_a_full_queue_drops_and_counts_instead_of_blocking(make_store):
    store = make_store(queue_size=2)
    store._ensure_writer = lambda *a, **k: None  # no writer: nothing leaves the queue
    results = [store.record(f"q{i}", LIKE, item_id=ITEM_A) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert store.stats()["dropped"] == 3


# ---------------------------------------------------------------- PostgreSQL only


@pytest.mark.slow
def test_postgres_outage_during_votes_the_votes_land_after_restart(pg_cluster):
    url = pg_cluster.new_database()
    store = FeedbackStore(url, retry_seconds=60)
    store.start()
    store.record("before", LIKE, item_id=ITEM_A)
    assert store.flush(10)
    pg_cluster.stop()
    try:
        accepted = [store.record(f"during outage {i}", LIKE if i % 2 else DISLIKE, item_id=ITEM_B) for i in range(5)]
        assert accepted == [True] * 5  # queued at once, the answer does not wait
        deadline = time.monotonic() + 20
        while store.stats()["retried"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.stats()["retried"] >= 1 and store.stats()["written"] == 1
    finally:
        pg_cluster.start()
    assert store.flush(60)
    assert store.count() == 6
    assert store.stats()["dropped"] == 0
    store.close()


@pytest.mark.slow
def test_unreachable_postgres_drops_are_counted_and_logged(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    store = FeedbackStore(f"postgresql://postgres@127.0.0.1:{port}/none", retry_seconds=0.5)
    with caplog.at_level("WARNING", logger="faqbot.feedback"):
        store.start()
        assert store.record("lost", LIKE, item_id=ITEM_A)
        assert store.flush(30)
    assert store.stats()["dropped"] == 1
    assert any("not available now" in r.getMessage() for r in caplog.records)
    assert any("feedback dropped" in r.getMessage() for r in caplog.records)
    store.close()
