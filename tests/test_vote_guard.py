"""POST /api/feedback is protected (issue 23): JSON only, so no cross-site form can vote; same origin or an allowed
one; at most the configured rate per client; a flood from one session cannot push other sessions' rows out under
the row cap; and stored text reaches a reviewer's terminal without escape sequences or bidi overrides."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3

import pytest

from faqbot.cli import main
from faqbot.config import Settings, SettingsError, settings_from_env
from faqbot.feedback import LIKE, FeedbackStore, format_report
from faqbot.guard import RateLimiter, VoteGuard, is_json, origin_allowed, printable


def _serve(retriever, store: FeedbackStore, settings: Settings | None = None, **changes):
    """The app (chat, Gradio API, REST) on a free local port; (demo, port). Also used by other test modules."""
    from faqbot.server import build_app, launch

    settings = (settings or Settings(feedback_db=store.path)).with_(**changes)
    demo = build_app(retriever, settings, store=store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, "127.0.0.1", port, quiet=True)
    return demo, port


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/feedback", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}"), resp.headers
    finally:
        conn.close()


@pytest.fixture(scope="module")
def app(fake_retriever, tmp_path_factory):
    db = tmp_path_factory.mktemp("votes") / "feedback.sqlite3"
    store = FeedbackStore(db)
    demo, port = _serve(fake_retriever, store, vote_rate=2.0, allowed_origins=("https://docs.example.org",))
    vote = {"question": "如何安装 MindSpore？", "item_id": fake_retriever.items[0].id, "vote": "like"}
    yield port, db, vote
    demo.close()
    store.close()


def _count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM feedback").fetchone()[0]


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("content_type, body", [
    ("text/plain", lambda v: json.dumps(v).encode()),  # what a cross-site fetch without a preflight may send
    ("application/x-www-form-urlencoded", lambda v: b"question=q&item_id=x&vote=like"),
    ("multipart/form-data; boundary=x", lambda v: b"--x\r\nContent-Disposition: form-data; name=\"vote\"\r\n\r\nlike\r\n--x--"),
    (None, lambda v: json.dumps(v).encode()),
])
def test_a_vote_that_is_not_declared_json_gets_415_and_stores_nothing(app, content_type, body):
    port, db, vote = app
    before = _count(db)
    status, answer, _ = _post(port, body(vote), {"Content-Type": content_type} if content_type else {})
    assert status == 415 and "application/json" in answer["error"]
    assert _count(db) == before


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example.com"},
                                     {"Referer": "https://evil.example.com/page.html"},
                                     {"Origin": "null"}])
def test_a_vote_from_another_site_gets_403_and_stores_nothing(app, headers):
    port, db, vote = app
    before = _count(db)
    status, answer, _ = _post(port, json.dumps(vote).encode(), {**JSON, **headers})
    assert status == 403 and "FAQBOT_ALLOWED_ORIGINS" in answer["error"]
    assert _count(db) == before


def test_votes_from_the_apps_own_pages_an_allowed_origin_and_programs_are_taken(app):
    port, db, vote = app
    for headers in ({"Origin": f"http://127.0.0.1:{port}"}, {"Referer": f"http://127.0.0.1:{port}/?lang=zh"},
                    {"Origin": "https://docs.example.org"}, {}):
        status, answer, _ = _post(port, json.dumps({**vote, "session": f"ok-{len(headers)}"}).encode(),
                                  {**JSON, **headers})
        assert status == 202, answer


def test_one_client_flooding_votes_gets_429_past_its_rate(app):
    port, db, vote = app
    statuses = []
    for i in range(30):
        status, answer, headers = _post(port, json.dumps({**vote, "session": f"flood-{i}"}).encode(), JSON)
        statuses.append(status)
        if status == 429:
            assert "too many votes" in answer["error"] and int(headers["Retry-After"]) >= 1
    assert set(statuses) <= {202, 429} and 429 in statuses
    assert statuses.count(202) < 30


def test_the_rate_limiter_never_lets_a_client_past_its_rate():
    limiter = RateLimiter(rate=5, burst=20)
    clock = [0.0]
    allowed = 0
    for _ in range(10_000):  # 1,000 requests a second for 10 simulated seconds
        clock[0] += 0.001
        allowed += limiter.allow("10.0.0.1", now=clock[0])
    assert allowed <= 20 + 5 * 10
    assert limiter.allow("10.0.0.2", now=clock[0])  # another client is not affected


def test_the_rate_limiter_forgets_the_least_recent_clients_past_its_bound():
    limiter = RateLimiter(rate=1, burst=1, max_clients=100)
    for i in range(1000):
        limiter.allow(f"client-{i}", now=0.0)
    assert len(limiter._buckets) == 100


def test_behind_the_local_proxy_the_client_is_the_forwarded_address_and_elsewhere_the_peer():
    headers = {"x-forwarded-for": "203.0.113.7, 198.51.100.2"}
    assert VoteGuard.client(headers, "127.0.0.1") == "198.51.100.2"  # what nginx appended last
    assert VoteGuard.client(headers, "172.18.0.5") == "198.51.100.2"  # nginx on compose's private network
    assert VoteGuard.client(headers, "93.184.216.34") == "93.184.216.34"  # a public peer cannot claim another address
    guard = VoteGuard()
    assert guard.session_of("203.0.113.9") == guard.session_of("203.0.113.9") != guard.session_of("203.0.113.8")
    assert "203.0.113" not in guard.session_of("203.0.113.9")


def test_content_types_and_origins():
    assert is_json("application/json") and is_json("application/json; charset=utf-8") and is_json("application/vnd.api+json")
    assert not is_json("text/plain") and not is_json(None) and not is_json("application/x-www-form-urlencoded")
    assert origin_allowed({"host": "faq.example.org", "origin": "https://faq.example.org"})
    assert not origin_allowed({"host": "faq.example.org", "origin": "https://faq.example.org.evil.com"})
    assert origin_allowed({"host": "a", "origin": "https://b.org"}, ("https://b.org/",))
    assert origin_allowed({"host": "a", "origin": "https://b.org"}, ("*",))


def test_vote_settings_come_from_the_environment_and_bad_ones_get_one_line():
    s = settings_from_env({"FAQBOT_VOTE_RATE": "0.5", "FAQBOT_ALLOWED_ORIGINS": "https://a.org/, https://b.org",
                           "FAQBOT_FEEDBACK_SESSION_ROWS": "50"})
    assert (s.vote_rate, s.allowed_origins, s.feedback_session_rows) == (0.5, ("https://a.org", "https://b.org"), 50)
    for name, value in (("FAQBOT_VOTE_RATE", "-1"), ("FAQBOT_VOTE_RATE", "fast"), ("FAQBOT_FEEDBACK_SESSION_ROWS", "0")):
        with pytest.raises(SettingsError, match=name):
            settings_from_env({name: value})


# ---------------------------------------------------------------- the row cap


def test_a_flood_from_one_session_does_not_evict_other_sessions_rows(tmp_path):
    # the probe: with a cap of 300 rows, 400 spam votes removed all 20 legitimate ones
    store = FeedbackStore(tmp_path / "fb.sqlite3", max_rows=300, session_max_rows=50)
    for i in range(20):
        store.record(f"legitimate question {i}", LIKE, item_id="a/b/c", lang="en", session=f"user-{i}")
    assert store.flush(30)
    for i in range(400):
        store.record(f"spam {i}", LIKE, item_id="a/b/c", lang="en", session="spammer")
    assert store.flush(30)
    assert store.rows("SELECT count(*) FROM feedback WHERE session LIKE 'user-%'") == [(20,)]
    assert store.rows("SELECT count(*), min(question) FROM feedback WHERE session = 'spammer'")[0][0] == 50
    kept = [q for (q,) in store.rows("SELECT question FROM feedback WHERE session = 'spammer' ORDER BY id")]
    assert kept[-1] == "spam 399"  # the newest of the session are kept
    store.close()


def test_rest_votes_without_a_session_are_capped_per_client(fake_retriever, tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3", session_max_rows=5)
    demo, port = _serve(fake_retriever, store, vote_rate=0)
    try:
        vote = {"question": "q", "item_id": fake_retriever.items[0].id, "vote": "dislike"}
        for i in range(12):
            status, answer, _ = _post(port, json.dumps({**vote, "question": f"q{i}"}).encode(), JSON)
            assert status == 202, answer
        sessions = store.rows("SELECT session, count(*) FROM feedback GROUP BY session")
        assert len(sessions) == 1 and sessions[0][1] == 5 and sessions[0][0].startswith("client-")
    finally:
        demo.close()
        store.close()


# ---------------------------------------------------------------- what reaches a terminal

HOSTILE = "\x1b[2J\x1b]0;pwned\x07ok\u202eevil\u2066x\x9b31m"


def _plant(db, rows: list[tuple]) -> None:
    """Rows as an older faqbot (before the store cleaned values) could have stored them."""
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO feedback (time, question, item_id, score, lang, vote, in_scope, kind, session) "
                         "VALUES ('2026-12-01T00:00:00+00:00', ?, ?, NULL, 'en', ?, ?, ?, ?)", rows)


def _clean(text: str) -> bool:
    return not any(ch in text for ch in "\x1b\x07\u202e\u2066\x9b")


def test_reports_and_suggestions_print_no_escape_or_bidi_characters(tmp_path, capsys, fake_corpus, monkeypatch):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    store.migrate()
    item = fake_corpus.items[0].id
    _plant(db, [(HOSTILE, None, 0, 0, "off_topic", "s1"), (HOSTILE + " install", item, -1, 1, "vote", "s1"),
                ("how to install " + HOSTILE, item, 1, 1, "vote", "s2")])
    report = store.report()
    assert _clean(format_report(report)) and _clean(json.dumps(report, ensure_ascii=False))
    assert HOSTILE not in json.dumps(store.suggest(), ensure_ascii=False)
    assert all(_clean(p["wording"]) for p in store.suggest())
    assert all(_clean(q["question"]) for q in store.gap_questions())
    (tmp_path / "empty-corpus").mkdir()
    monkeypatch.setenv("FAQBOT_CORPUS", str(tmp_path / "empty-corpus"))
    for argv in (["feedback", "--db", str(db)], ["feedback", "--db", str(db), "--json"],
                 ["feedback", "suggest", "--db", str(db)], ["feedback", "suggest", "--db", str(db), "--json"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert _clean(out) and "ok" in out


def test_printable_keeps_ordinary_text():
    assert printable("如何安装 MindSpore 2.2.0？ path C:\\x\\y") == "如何安装 MindSpore 2.2.0？ path C:\\x\\y"
    assert printable("a\nb\tc") == "a b c"
