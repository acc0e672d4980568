"""What users thought of the answers, in SQLite: thumbs up/down per answer, and every off-topic question.

The report tells maintainers which questions the FAQ is missing and which answers miss the point.
One short-lived connection per call keeps it safe from the web server's worker threads.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

LIKE, DISLIKE, OFF_TOPIC = 1, -1, 0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time     TEXT    NOT NULL,  -- ISO 8601, UTC
    question TEXT    NOT NULL,
    item_id  TEXT,              -- the answer shown (or the nearest entry for an off-topic question)
    score    REAL,              -- how sure the bot was (SearchResult.confidence; answers start at min_confidence)
    lang     TEXT,
    vote     INTEGER NOT NULL,  -- +1 like, -1 dislike, 0 off-topic question logged
    in_scope INTEGER NOT NULL   -- 1 when the bot answered, 0 when it said "not covered"
);
CREATE INDEX IF NOT EXISTS feedback_vote ON feedback (vote, in_scope);
"""

_MAX_QUESTION = 2000  # a long paste is stored shortened; spacing is normalised so the report groups alike text


class FeedbackStore:
    """The feedback database at `path`, created with its parent folders on first write."""

    def __init__(self, path: Path | str):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        if not self._ready:
            with conn:
                conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def record(
        self,
        question: str,
        vote: int,
        *,
        item_id: str | None = None,
        score: float | None = None,
        lang: str | None = None,
        in_scope: bool = True,
    ) -> None:
        if vote not in (LIKE, DISLIKE, OFF_TOPIC):
            raise ValueError(f"vote must be +1, -1 or 0, not {vote!r}")
        row = (
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
            " ".join(question.split())[:_MAX_QUESTION],
            item_id,
            None if score is None else float(score),
            lang,
            int(vote),
            int(bool(in_scope)),
        )
        with self._lock, closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT INTO feedback (time, question, item_id, score, lang, vote, in_scope) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def _read(self) -> sqlite3.Connection:
        """Read-only: a report never creates or alters a file (it might be the wrong one)."""
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone()
        if not found:
            conn.close()
            raise sqlite3.DatabaseError("it has no feedback table")
        return conn

    def unanswered(self, limit: int = 10) -> list[dict]:
        """Off-topic questions, most frequent first; the same text in another case or spacing counts as the same."""
        if not self.path.exists():
            return []
        with closing(self._read()) as conn:
            cur = conn.execute(
                """
                SELECT lower(trim(question)) AS key, count(*) AS n, max(time) AS last, lang,
                       (SELECT question FROM feedback f2 WHERE lower(trim(f2.question)) = lower(trim(f.question))
                        ORDER BY id DESC LIMIT 1) AS example
                FROM feedback f WHERE in_scope = 0 AND vote = 0
                GROUP BY key ORDER BY n DESC, last DESC LIMIT ?
                """,
                (limit,),
            )
            return [{"question": ex, "count": n, "last": last, "lang": lg} for _k, n, last, lg, ex in cur.fetchall()]

    def disliked(self, limit: int = 10) -> list[dict]:
        """Answers with the most thumbs-down, with their thumbs-up and the questions that got them."""
        if not self.path.exists():
            return []
        with closing(self._read()) as conn:
            cur = conn.execute(
                """
                SELECT item_id,
                       sum(vote = -1) AS dislikes, sum(vote = 1) AS likes, max(time) AS last
                FROM feedback WHERE item_id IS NOT NULL AND vote != 0
                GROUP BY item_id HAVING dislikes > 0
                ORDER BY dislikes DESC, likes ASC, last DESC LIMIT ?
                """,
                (limit,),
            )
            out = []
            for item_id, dislikes, likes, last in cur.fetchall():
                questions = [
                    q
                    for (q,) in conn.execute(
                        "SELECT DISTINCT question FROM feedback WHERE item_id = ? AND vote = -1 ORDER BY id DESC LIMIT 3",
                        (item_id,),
                    )
                ]
                out.append({"item_id": item_id, "dislikes": dislikes, "likes": likes, "last": last, "questions": questions})
            return out

    def report(self, limit: int = 10, titles: dict[str, str] | None = None) -> dict:
        """The `faqbot feedback --json` object; `titles` (item id -> FAQ question) names the disliked answers."""
        disliked = self.disliked(limit)
        for row in disliked:
            row["title"] = (titles or {}).get(row["item_id"])
        return {"db": str(self.path), "unanswered": self.unanswered(limit), "disliked": disliked}


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
