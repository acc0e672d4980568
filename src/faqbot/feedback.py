"""What users thought of the answers: thumbs up/down, off-topic questions, and the evidence that a wording means
an entry, in SQLite (a file) or PostgreSQL (a `postgresql://` URL shared by several app replicas).

Answers never wait on the store: `record()` only puts a row on a bounded queue, and one background thread writes
it. A write that fails (a locked, deleted or unreachable database) is retried; if it still fails it is dropped,
counted in `stats()` and logged, but never raised into an answer. Stored text is masked for obvious personal data
first, and can be switched off (`log_questions=False`); old rows and rows past the cap are deleted.
One schema with numbered migrations (the `schema_version` table) serves both backends.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from collections import defaultdict
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

LIKE, DISLIKE, OFF_TOPIC = 1, -1, 0
# What a row records: a thumbs up/down ("vote"), a question the FAQ did not cover ("off_topic"), a suggestion
# clicked right after a related / not-covered reply ("click": the earlier wording -> the clicked entry), and a
# question rephrased in the same session that then got a liked answer ("rephrase": the first wording -> that entry).
KINDS = ("vote", "off_topic", "click", "rephrase")

_MAX_QUESTION = 2000  # a long paste is stored shortened; spacing is normalised so the report groups alike text
_BATCH = 200  # rows written in one transaction
# `suggest` proposes wordings of at most this many characters: longer is a pasted report (every issue-style dev
# question is longer than 200 characters, every paraphrase shorter)
MAX_PROPOSAL_CHARS = 200
_PG_MIGRATION_LOCK = 7_202_611  # pg_advisory_xact_lock key: two replicas starting at once migrate one after the other


def is_postgres_url(target: Any) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")


# ---------------------------------------------------------------- personal data


def _ipv6(match: re.Match) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    # `a::b`-like identifiers are valid addresses too; a real one has a digit or several groups
    return "<ip>" if any(ch.isdigit() for ch in text) or text.count(":") >= 4 else text


_SECRET = "<secret>"
_MASKS: list[tuple[re.Pattern, Any]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), _SECRET),
    (re.compile(r"\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{16,}"), _SECRET),  # GitHub tokens
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), _SECRET),  # OpenAI-style keys
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), _SECRET),  # AWS access key ids
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), _SECRET),  # Slack tokens
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), _SECRET),  # Google API keys
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), _SECRET),  # JWTs
    (re.compile(r"(?i)\b(bearer|token|password|passwd|pwd|secret|api[_-]?key)([\s:=]+)\S{6,}"), rf"\1\2{_SECRET}"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}"), "<email>"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])"), _SECRET),  # long hex secrets
    # long base64/url-safe runs with upper, lower and digits (identifiers like ERR_UNSAFE_PORT have no digits)
    (re.compile(r"(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])"
                r"[A-Za-z0-9+/_-]{32,}={0,2}"), _SECRET),
    (re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])"), "<ip>"),
    (re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"), _ipv6),
    (re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])"), "<id>"),  # Chinese resident id numbers
    (re.compile(r"(?<![\w+])\+\d{1,3}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}(?!\d)"), "<phone>"),  # +86 138 0013 8000
    (re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)"), "<phone>"),  # Chinese mobile numbers
    (re.compile(r"(?<![\w.])\(?\d{3,4}\)?[\s-]\d{3,4}[\s-]\d{4}(?![\w.])"), "<phone>"),  # 010-1234-5678, (555) 123 4567
]


def mask_personal(text: str) -> str:
    """Obvious personal data and secrets replaced by placeholders (<email>, <phone>, <ip>, <secret>, <id>)."""
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


# ---------------------------------------------------------------- schema

# (version, what it does, statements for sqlite, statements for postgresql); applied in order, each exactly once.
_MIGRATIONS: list[tuple[int, str, list[str], list[str]]] = [
    (
        1,
        "feedback table",
        [
            """CREATE TABLE IF NOT EXISTS feedback (
                id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, question TEXT NOT NULL, item_id TEXT,
                score REAL, lang TEXT, vote INTEGER NOT NULL, in_scope INTEGER NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS feedback_vote ON feedback (vote, in_scope)",
        ],
        [
            """CREATE TABLE IF NOT EXISTS feedback (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, time TEXT NOT NULL, question TEXT NOT NULL,
                item_id TEXT, score DOUBLE PRECISION, lang TEXT, vote INTEGER NOT NULL, in_scope INTEGER NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS feedback_vote ON feedback (vote, in_scope)",
        ],
    ),
    (
        2,
        "event kind and session id; off-topic rows marked as such",
        [
            "ALTER TABLE feedback ADD COLUMN kind TEXT NOT NULL DEFAULT 'vote'",
            "ALTER TABLE feedback ADD COLUMN session TEXT",
            "UPDATE feedback SET kind = 'off_topic' WHERE vote = 0",
            "CREATE INDEX IF NOT EXISTS feedback_time ON feedback (time)",
            "CREATE INDEX IF NOT EXISTS feedback_kind ON feedback (kind, item_id)",
        ],
        [
            "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'vote'",
            "ALTER TABLE feedback ADD COLUMN IF NOT EXISTS session TEXT",
            "UPDATE feedback SET kind = 'off_topic' WHERE vote = 0",
            "CREATE INDEX IF NOT EXISTS feedback_time ON feedback (time)",
            "CREATE INDEX IF NOT EXISTS feedback_kind ON feedback (kind, item_id)",
        ],
    ),
    (
        3,
        "proposed alternate questions and the editor's decisions",
        [
            """CREATE TABLE IF NOT EXISTS proposals (
                id INTEGER PRIMARY KEY AUTOINCREMENT, wording TEXT NOT NULL, wording_key TEXT NOT NULL,
                item_id TEXT NOT NULL, lang TEXT, status TEXT NOT NULL DEFAULT 'open', created TEXT NOT NULL,
                decided TEXT, UNIQUE (wording_key, item_id))""",
        ],
        [
            """CREATE TABLE IF NOT EXISTS proposals (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, wording TEXT NOT NULL,
                wording_key TEXT NOT NULL, item_id TEXT NOT NULL, lang TEXT, status TEXT NOT NULL DEFAULT 'open',
                created TEXT NOT NULL, decided TEXT, UNIQUE (wording_key, item_id))""",
        ],
    ),
]
SCHEMA_VERSION = _MIGRATIONS[-1][0]

_INSERT = (
    "INSERT INTO feedback (time, question, item_id, score, lang, vote, in_scope, kind, session) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class StoreError(Exception):
    """The database cannot be read as a faqbot feedback store (message says what to do)."""


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class FeedbackStore:
    """The feedback database at `target` (a SQLite path, or a postgresql:// URL) with its background writer.

    SQLite files and their parent folders are created on the first write; reads never create anything.
    """

    def __init__(
        self,
        target: Path | str,
        *,
        log_questions: bool = True,
        retention_days: float = 90,
        max_rows: int = 100_000,
        queue_size: int = 2000,
        busy_timeout: float = 0.2,
        retry_seconds: float = 30.0,
    ):
        self.postgres = is_postgres_url(target)
        if self.postgres:
            self.url = str(target)
            self.path = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", self.url)  # shown in messages, no password
        else:
            self.url = None
            self.path = Path(target).expanduser()
        self.log_questions = log_questions
        self.retention_days = retention_days
        self.max_rows = max_rows
        self.busy_timeout = busy_timeout
        self.retry_seconds = retry_seconds
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._conn: Any = None
        self._file_id: tuple[int, int] | None = None
        self._closed = False
        self._stats = {"accepted": 0, "written": 0, "retried": 0, "dropped": 0}
        self._stats_lock = threading.Lock()
        self._last_error: str | None = None
        self._warned: set[str] = set()
        self._last_drop_log = 0.0
        self._since_limits = 0

    @classmethod
    def from_settings(cls, settings: Any, **kwargs) -> "FeedbackStore":
        return cls(
            settings.feedback_db,
            log_questions=getattr(settings, "log_questions", True),
            retention_days=getattr(settings, "feedback_retention_days", 90),
            max_rows=getattr(settings, "feedback_max_rows", 100_000),
            **kwargs,
        )

    # --- connections -----------------------------------------------------------------------------------------

    def _connect(self, readonly: bool = False) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(self.url, autocommit=True, connect_timeout=3)
        if readonly:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _execute(self, conn: Any, sql: str, params: tuple = ()) -> Any:
        return conn.execute(self._sql(sql), params)

    @contextmanager
    def _transaction(self, conn: Any) -> Iterator[None]:
        if self.postgres:
            with conn.transaction():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _version(self, conn: Any) -> int:
        if self.postgres:
            found = conn.execute("SELECT to_regclass('schema_version')").fetchone()[0]
        else:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        if not found:
            return 0
        return self._execute(conn, "SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def migrate(self, conn: Any | None = None) -> list[int]:
        """Bring the schema up to date; the versions applied now (none when it already was). Idempotent."""
        if conn is None:
            with closing(self._connect()) as own:
                return self.migrate(own)
        if not self.postgres and self._version(conn) >= SCHEMA_VERSION:
            return []
        applied = []
        with self._transaction(conn):
            if self.postgres:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_MIGRATION_LOCK,))
            self._execute(
                conn,
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL, "
                "description TEXT NOT NULL)",
            )
            current = self._version(conn)
            for version, description, sqlite_sql, pg_sql in _MIGRATIONS:
                if version <= current:
                    continue
                for statement in pg_sql if self.postgres else sqlite_sql:
                    conn.execute(statement)
                self._execute(conn, "INSERT INTO schema_version (version, applied, description) VALUES (?, ?, ?)",
                              (version, _now(), description))
                applied.append(version)
        return applied

    def _reader(self) -> Any | None:
        """A connection for reports: None when a SQLite file does not exist (a report never creates one); a file
        without a feedback table is refused (it might be some other program's database)."""
        if not self.postgres and not self.path.exists():
            return None
        try:
            conn = self._connect(readonly=True)
            if self.postgres:
                has = conn.execute("SELECT to_regclass('feedback')").fetchone()[0]
            else:
                has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone()
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path} is not a faqbot feedback database ({e}); pass the right one with --db") from None
        except Exception as e:  # psycopg errors: unreachable server, bad credentials
            raise StoreError(f"cannot reach the feedback database {self.path} ({_one_line(e)})") from None
        if not has:
            conn.close()
            if self.postgres:
                return None
            raise StoreError(f"{self.path} is not a faqbot feedback database (it has no feedback table); pass the right file with --db")
        if self._version(conn) < SCHEMA_VERSION:  # an older faqbot's file: upgrade it in place, then read
            conn.close()
            try:
                with closing(self._connect()) as rw:
                    self.migrate(rw)
            except sqlite3.Error as e:
                raise StoreError(f"cannot upgrade the feedback database {self.path}: {e}") from None
            conn = self._connect(readonly=True)
        return conn

    @contextmanager
    def _editor(self) -> Iterator[Any]:
        """A read-write connection for the `faqbot feedback` commands, with the schema up to date."""
        if not self.postgres:
            if not self.path.exists():
                raise StoreError(f"no feedback database at {self.path}; check the path (the app creates it on first use)")
            self._reader().close()  # refuses a file that is not a faqbot feedback database, upgrades an old one
        try:
            conn = self._connect()
            self.migrate(conn)
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path} is not a faqbot feedback database ({e}); pass the right one with --db") from None
        except Exception as e:
            raise StoreError(f"cannot reach the feedback database {self.path} ({_one_line(e)})") from None
        with closing(conn):
            yield conn

    # --- writing -----------------------------------------------------------------------------------------------

    def check(self) -> str | None:
        """Why feedback cannot be saved at this SQLite path, or None. Creates nothing."""
        if self.postgres:
            return None
        path = self.path
        if path.exists():
            if path.is_dir():
                return f"{path} is a folder"
            if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
                return f"{path} is not writable"
            return None
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot create {path}: {parent} is not a writable folder"
        return None

    def start(self) -> None:
        """Start the writer (it connects and migrates at once); warn once if feedback cannot be saved."""
        problem = self.check()
        if problem:
            self._warn_once("unwritable", f"feedback will not be saved: {problem}; answers go on. "
                            "Set FAQBOT_FEEDBACK_DB to a writable file (or a postgresql:// URL).")
        self._ensure_writer(connect_now=True)
        atexit.register(self.close, 3.0)  # a vote clicked just before shutdown is still written

    def _ensure_writer(self, connect_now: bool = False) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, args=(connect_now,), name="faqbot-feedback", daemon=True)
                self._thread.start()

    def record(
        self,
        question: str,
        vote: int,
        *,
        item_id: str | None = None,
        score: float | None = None,
        lang: str | None = None,
        in_scope: bool = True,
        session: str | None = None,
        kind: str | None = None,
    ) -> bool:
        """Queue one row and return at once: True when queued, False when the queue is full (counted as dropped)."""
        if vote not in (LIKE, DISLIKE, OFF_TOPIC):
            raise ValueError(f"vote must be +1, -1 or 0, not {vote!r}")
        kind = kind or ("off_topic" if vote == OFF_TOPIC else "vote")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        text = mask_personal(" ".join(str(question or "").split()))[:_MAX_QUESTION] if self.log_questions else ""
        row = (_now(), text, item_id, None if score is None else float(score), lang, int(vote), int(bool(in_scope)),
               kind, session)
        self._ensure_writer()
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._dropped(1, "the write queue is full")
            return False
        with self._stats_lock:
            self._stats["accepted"] += 1
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped) and limits are enforced; False on timeout."""
        if self._thread is None:
            return True
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to `timeout` s) and stop the writer."""
        thread = self._thread
        if thread is not None and not self._closed:
            self.flush(timeout)
            self._closed = True
            try:
                self._queue.put(_STOP, timeout=1)
            except queue.Full:
                pass
            thread.join(timeout)
        self._closed = True
        self._close_conn()

    def stats(self) -> dict:
        """Counters since start: rows accepted, written, retried writes, dropped rows; the queue and last error."""
        with self._stats_lock:
            out = dict(self._stats)
        out["queued"] = self._queue.qsize()
        out["last_error"] = self._last_error
        return out

    def _run(self, connect_now: bool) -> None:
        if connect_now:
            try:
                self._writer_conn()
            except Exception as e:
                self._note_error(e)
                self._warn_once("unwritable", f"feedback store {self.path} is not available now ({_one_line(e)}); "
                                "answers go on, feedback is queued and retried")
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [r for r in batch if isinstance(r, tuple)]
            if rows:
                self._write(rows)
            markers = [m for m in batch if isinstance(m, _Flush)]
            if markers or self._since_limits >= max(1, self.max_rows // 100):
                self._enforce_quietly()
            for m in markers:
                m.done.set()
            if any(m is _STOP for m in batch):
                self._close_conn()
                return

    def _write(self, rows: list[tuple]) -> None:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                conn = self._writer_conn()
                with self._transaction(conn):
                    if self.postgres:
                        with conn.cursor() as cur:
                            cur.executemany(self._sql(_INSERT), rows)
                    else:
                        conn.executemany(_INSERT, rows)
                with self._stats_lock:
                    self._stats["written"] += len(rows)
                self._since_limits += len(rows)
                return
            except Exception as e:
                self._note_error(e)
                self._close_conn()
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    self._dropped(len(rows), _one_line(e))
                    return
                with self._stats_lock:
                    self._stats["retried"] += 1
                time.sleep(min(delay, left))
                delay = min(delay * 2, 2.0)

    def _writer_conn(self) -> Any:
        if self._conn is not None and not self.postgres and self._file_id != _file_id(self.path):
            log.warning("feedback database %s was deleted or replaced; recreating it", self.path)
            self._close_conn()  # closing also removes the old -wal/-shm files, so the new file starts clean
        if self._conn is None:
            conn = self._connect()
            try:
                self.migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._file_id = None if self.postgres else _file_id(self.path)
        return self._conn

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _note_error(self, e: BaseException) -> None:
        self._last_error = _one_line(e)

    def _dropped(self, n: int, why: str) -> None:
        with self._stats_lock:
            self._stats["dropped"] += n
            total = self._stats["dropped"]
        now = time.monotonic()
        if now - self._last_drop_log >= 10:  # one line per 10 s at most, with the running total
            self._last_drop_log = now
            log.warning("feedback dropped: %d row(s) not saved to %s (%s); %d dropped since start", n, self.path, why, total)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    # --- limits and purging --------------------------------------------------------------------------------------

    def _limits(self, conn: Any) -> int:
        deleted = 0
        with self._transaction(conn):
            if self.retention_days:
                cutoff = _ago(self.retention_days)
                deleted += self._execute(conn, "DELETE FROM feedback WHERE time < ?", (cutoff,)).rowcount
                self._execute(conn, "DELETE FROM proposals WHERE status = 'open' AND created < ?", (cutoff,))
            if self.max_rows:
                deleted += self._execute(
                    conn,
                    "DELETE FROM feedback WHERE id <= (SELECT id FROM feedback ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (int(self.max_rows),),
                ).rowcount
        return deleted

    def _enforce_quietly(self) -> None:
        self._since_limits = 0
        try:
            self._limits(self._writer_conn())
        except Exception as e:
            self._note_error(e)
            self._close_conn()

    def enforce_limits(self) -> int:
        """Delete rows older than the retention period and the oldest rows past the cap; how many were deleted."""
        with self._editor() as conn:
            return self._limits(conn)

    def purge(self, *, everything: bool = False, older_than_days: float | None = None) -> int:
        """Delete all stored questions and votes, or those older than `older_than_days`; how many rows went."""
        with self._editor() as conn, self._transaction(conn):
            if everything:
                n = self._execute(conn, "DELETE FROM feedback").rowcount
                self._execute(conn, "DELETE FROM proposals WHERE status = 'open'")
            else:
                cutoff = _ago(older_than_days if older_than_days is not None else self.retention_days)
                n = self._execute(conn, "DELETE FROM feedback WHERE time < ?", (cutoff,)).rowcount
                self._execute(conn, "DELETE FROM proposals WHERE status = 'open' AND created < ?", (cutoff,))
        if not self.postgres:  # give the space back, so deleted text is really gone from the file
            with closing(self._connect()) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("VACUUM")
        return n

    # --- reports ---------------------------------------------------------------------------------------------

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only query (`?` placeholders on both backends); [] without a database."""
        conn = self._reader()
        if conn is None:
            return []
        with closing(conn):
            return [tuple(r) for r in self._execute(conn, sql, params).fetchall()]

    def count(self) -> int:
        return (self.rows("SELECT count(*) FROM feedback") or [(0,)])[0][0]

    def unanswered(self, limit: int = 10) -> list[dict]:
        """Off-topic questions, most frequent first; the same text in another case or spacing counts as the same."""
        groups = self.rows(
            """SELECT lower(trim(question)), count(*) AS n, max(time) AS last, max(lang), max(id)
               FROM feedback WHERE kind = 'off_topic' AND question <> ''
               GROUP BY lower(trim(question)) ORDER BY n DESC, last DESC LIMIT ?""",
            (limit,),
        )
        out = []
        for _key, n, last, lang, last_id in groups:
            example = self.rows("SELECT question FROM feedback WHERE id = ?", (last_id,))[0][0]
            out.append({"question": example, "count": n, "last": last, "lang": lang})
        return out

    def disliked(self, limit: int = 10) -> list[dict]:
        """Answers with the most thumbs-down, with their thumbs-up and the questions that got them."""
        dislikes = "sum(CASE WHEN vote = -1 THEN 1 ELSE 0 END)"
        groups = self.rows(
            f"""SELECT item_id, {dislikes} AS dislikes, sum(CASE WHEN vote = 1 THEN 1 ELSE 0 END) AS likes,
                       max(time) AS last
                FROM feedback WHERE item_id IS NOT NULL AND kind = 'vote'
                GROUP BY item_id HAVING {dislikes} > 0
                ORDER BY dislikes DESC, likes ASC, last DESC LIMIT ?""",
            (limit,),
        )
        out = []
        for item_id, n_dis, n_like, last in groups:
            questions = self.rows(
                """SELECT question FROM feedback WHERE item_id = ? AND vote = -1 AND kind = 'vote' AND question <> ''
                   GROUP BY question ORDER BY max(id) DESC LIMIT 3""",
                (item_id,),
            )
            out.append({"item_id": item_id, "dislikes": int(n_dis), "likes": int(n_like), "last": last,
                        "questions": [q for (q,) in questions]})
        return out

    def report(self, limit: int = 10, titles: dict[str, str] | None = None) -> dict:
        """The `faqbot feedback --json` object; `titles` (item id -> FAQ question) names the disliked answers."""
        disliked = self.disliked(limit)
        for row in disliked:
            row["title"] = (titles or {}).get(row["item_id"])
        return {"db": str(self.path), "unanswered": self.unanswered(limit), "disliked": disliked}

    # --- learning from use ----------------------------------------------------------------------------------------

    def evidence(self) -> dict[tuple[str, str], dict]:
        """(wording key, item id) -> the evidence that this wording means this entry, from likes, clicks and
        rephrasings (dislikes of the same pair count against it)."""
        found: dict[tuple[str, str], dict] = {}
        for question, item_id, kind, vote, lang, when, session in self.rows(
            """SELECT question, item_id, kind, vote, lang, time, session FROM feedback
               WHERE item_id IS NOT NULL AND question <> '' AND kind IN ('vote', 'click', 'rephrase') ORDER BY id"""
        ):
            key = (wording_key(question), item_id)
            ev = found.setdefault(key, {"wording": question, "item_id": item_id, "lang": lang, "likes": 0,
                                        "dislikes": 0, "clicks": 0, "rephrases": 0, "sessions": set(),
                                        "first": when, "last": when})
            if kind == "vote":
                ev["likes" if vote == LIKE else "dislikes"] += 1
            else:
                ev["clicks" if kind == "click" else "rephrases"] += 1
            if session:
                ev["sessions"].add(session)
            ev["last"] = when
        return found

    def suggest(self, known: dict[str, set[str]] | None = None, max_chars: int | None = MAX_PROPOSAL_CHARS) -> list[dict]:
        """Open proposals (wording -> item id), numbered, with their evidence. New pairs with more positive than
        negative evidence are proposed once; a wording that already is one of the item's questions (`known`:
        item id -> wording keys) is not. Approved or rejected pairs are never proposed again.

        Wordings longer than `max_chars` (None: any length) are not proposed: a pasted issue report is not a
        question another user will type, and in the simulation (docs/retrieval.md, "Learning from use,
        simulated") approved pastes pulled other reports to their entry and made near misses asserted."""
        known = known or {}
        evidence = self.evidence()
        with self._editor() as conn:
            for (key, item_id), ev in evidence.items():
                positive = ev["likes"] + ev["clicks"] + ev["rephrases"]
                if positive <= ev["dislikes"] or key in known.get(item_id, set()):
                    continue
                if max_chars is not None and len(ev["wording"]) > max_chars:
                    continue
                self._execute(
                    conn,
                    "INSERT INTO proposals (wording, wording_key, item_id, lang, status, created) VALUES (?, ?, ?, ?, "
                    "'open', ?) ON CONFLICT (wording_key, item_id) DO NOTHING",
                    (ev["wording"], key, item_id, ev["lang"], _now()),
                )
            open_rows = self._execute(
                conn, "SELECT id, wording_key, item_id, wording, lang FROM proposals WHERE status = 'open' ORDER BY id"
            ).fetchall()
        out = []
        for number, key, item_id, wording, lang in open_rows:
            ev = evidence.get((key, item_id))
            if ev is None or key in known.get(item_id, set()) or (max_chars is not None and len(wording) > max_chars):
                continue
            out.append({"n": number, "wording": wording, "item_id": item_id, "lang": lang,
                        **{k: ev[k] for k in ("likes", "dislikes", "clicks", "rephrases", "first", "last")},
                        "sessions": len(ev["sessions"])})
        return out

    def proposals(self, numbers: list[int]) -> tuple[list[dict], list[int]]:
        """The open proposals with these numbers, and the numbers that are not open proposals."""
        with self._editor() as conn:
            rows = self._execute(conn, "SELECT id, wording, item_id, lang, status FROM proposals").fetchall()
        by_n = {r[0]: {"n": r[0], "wording": r[1], "item_id": r[2], "lang": r[3], "status": r[4]} for r in rows}
        found = [by_n[n] for n in numbers if n in by_n and by_n[n]["status"] == "open"]
        return found, [n for n in numbers if n not in by_n or by_n[n]["status"] != "open"]

    def decide(self, numbers: list[int], status: str) -> int:
        """Mark open proposals approved or rejected; how many changed."""
        if status not in ("approved", "rejected"):
            raise ValueError(status)
        changed = 0
        with self._editor() as conn, self._transaction(conn):
            for n in numbers:
                changed += self._execute(
                    conn, "UPDATE proposals SET status = ?, decided = ? WHERE id = ? AND status = 'open'",
                    (status, _now(), int(n)),
                ).rowcount
        return changed

    def gap_questions(self) -> list[dict]:
        """Questions the FAQ did not cover and questions whose answer was disliked, with language and time."""
        return [
            {"question": q, "lang": lang, "time": when, "why": "unanswered" if kind == "off_topic" else "disliked"}
            for q, lang, when, kind in self.rows(
                """SELECT question, lang, time, kind FROM feedback WHERE question <> ''
                   AND (kind = 'off_topic' OR (kind = 'vote' AND vote = -1)) ORDER BY id"""
            )
        ]


def wording_key(text: str) -> str:
    """Wordings that differ only in case, spacing or a trailing question mark count as one."""
    return " ".join(text.casefold().split()).rstrip("?？。.!！ ")


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:300]


# ---------------------------------------------------------------- gap report


def cluster_gaps(questions: list[dict], vectors: Any, threshold: float = 0.17) -> list[dict]:
    """Group similar questions (average-linkage clustering on cosine distance, cut at `threshold`); the biggest
    groups first, each with its count, up to 3 examples per language and its date range.

    0.17 suits the default model (multilingual-e5-small), whose distances are compressed: a zh/en paraphrase
    pair measured 0.16-0.17, unrelated questions 0.20-0.25."""
    import numpy as np

    if not questions:
        return []
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(questions) == 1:
        labels = np.array([1])
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        labels = fcluster(linkage(vectors, method="average", metric="cosine"), t=threshold, criterion="distance")
    groups: dict[int, list[dict]] = defaultdict(list)
    for label, q in zip(labels, questions):
        groups[int(label)].append(q)
    clusters = []
    for members in groups.values():
        examples: dict[str, list[str]] = {"zh": [], "en": []}
        seen: set[str] = set()
        for q in sorted(members, key=lambda q: q["time"], reverse=True):
            key = wording_key(q["question"])
            lang = "zh" if q.get("lang") == "zh" else "en"
            if key not in seen and len(examples[lang]) < 3:
                seen.add(key)
                examples[lang].append(q["question"])
        times = sorted(q["time"] for q in members)
        clusters.append({
            "count": len(members),
            "unanswered": sum(q["why"] == "unanswered" for q in members),
            "disliked": sum(q["why"] == "disliked" for q in members),
            "examples": examples,
            "first": times[0][:10],
            "last": times[-1][:10],
        })
    clusters.sort(key=lambda c: (-c["count"], c["last"]), reverse=False)
    return clusters


def format_gaps_markdown(clusters: list[dict], db: str) -> str:
    lines = ["# What the FAQ should add next", "",
             f"Unanswered and disliked questions from `{db}`, grouped by meaning; the biggest groups first.", ""]
    if not clusters:
        lines.append("No unanswered or disliked questions are stored yet.")
    for i, c in enumerate(clusters, 1):
        span = c["first"] if c["first"] == c["last"] else f"{c['first']} – {c['last']}"
        lines += [f"## {i}. {c['count']} question(s), {span}",
                  f"{c['unanswered']} unanswered, {c['disliked']} with a disliked answer.", ""]
        for lang, label in (("zh", "中文"), ("en", "English")):
            for q in c["examples"][lang]:
                lines.append(f"- {label}: {' '.join(q.split())[:200]}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def format_gaps_csv(clusters: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["cluster", "count", "unanswered", "disliked", "first", "last", "examples_zh", "examples_en"])
    for i, c in enumerate(clusters, 1):
        writer.writerow([i, c["count"], c["unanswered"], c["disliked"], c["first"], c["last"],
                         " | ".join(c["examples"]["zh"]), " | ".join(c["examples"]["en"])])
    return buf.getvalue()


# ---------------------------------------------------------------- text report


def format_report(report: dict) -> str:
    """The `faqbot feedback` text: what the FAQ lacks, then what it answers badly."""
    lines = [f"Feedback database: {report['db']}", "", "Most frequent unanswered questions:"]
    if report["unanswered"]:
        for row in report["unanswered"]:
            question = " ".join(row["question"].split())
            if len(question) > 100:
                question = question[:99] + "…"
            lines.append(f"  {row['count']:>4}×  {question}")
    else:
        lines.append("  (none yet)")
    lines += ["", "Most disliked answers:"]
    if report["disliked"]:
        for row in report["disliked"]:
            lines.append(f"  {row['dislikes']:>4}👎 {row['likes']:>3}👍  {row['item_id']}")
            if row.get("title"):
                lines.append(f"           answer:   {' '.join(row['title'].split())[:100]}")
            for q in row["questions"]:
                lines.append(f"           asked as: {' '.join(q.split())[:100]}")
    else:
        lines.append("  (none yet)")
    return "\n".join(lines)
