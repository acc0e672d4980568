"""Learning from use: the evidence that a user's wording means an entry (likes, clicks, rephrasings), turned into
numbered proposals that a maintainer approves or rejects (`faqbot feedback suggest / approve / reject`); an
approved wording becomes an alternate question of the entry (faqbot.alternates, faqbot.store).

Each function takes the store (faqbot.feedback.FeedbackStore: `rows()` and its connection helpers); this module
imports no database code, and FeedbackStore's methods of the same names call it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from faqbot.guard import printable

LIKE = 1  # faqbot.feedback.LIKE: a thumbs-up vote
# `suggest` proposes wordings of at most this many characters: longer is a pasted report (every issue-style dev
# question is longer than 200 characters, every paraphrase shorter)
MAX_PROPOSAL_CHARS = 200
DECISIONS = ("approved", "rejected")


@dataclass(frozen=True)
class Proposal:
    """An open proposal, numbered: `wording` (a user's) means entry `item_id`, with the evidence for it."""

    n: int
    wording: str
    item_id: str
    lang: str | None
    likes: int = 0
    dislikes: int = 0
    clicks: int = 0
    rephrases: int = 0
    first: str | None = None
    last: str | None = None
    sessions: int = 0  # distinct sessions the evidence came from

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def evidence(store: Any) -> dict[tuple[str, str], dict]:
    """(wording key, item id) -> the evidence that this wording means this entry, from likes, clicks and
    rephrasings (dislikes of the same pair count against it)."""
    found: dict[tuple[str, str], dict] = {}
    for question, item_id, kind, vote, lang, when, session in store.rows(
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


def suggest(store: Any, known: dict[str, set[str]] | None = None,
            max_chars: int | None = MAX_PROPOSAL_CHARS) -> list[Proposal]:
    """Open proposals (wording -> item id), numbered, with their evidence. New pairs with more positive than
    negative evidence are proposed once; a wording that already is one of the item's questions (`known`:
    item id -> wording keys) is not. Approved or rejected pairs are never proposed again.

    Wordings longer than `max_chars` (None: any length) are not proposed: a pasted issue report is not a
    question another user will type, and in the simulation (docs/retrieval.md, "Learning from use,
    simulated") approved pastes pulled other reports to their entry and made near misses asserted."""
    known = known or {}
    found = evidence(store)
    with store._editor() as conn:
        for (key, item_id), ev in found.items():
            positive = ev["likes"] + ev["clicks"] + ev["rephrases"]
            if positive <= ev["dislikes"] or key in known.get(item_id, set()):
                continue
            if max_chars is not None and len(ev["wording"]) > max_chars:
                continue
            store._execute(
                conn,
                "INSERT INTO proposals (wording, wording_key, item_id, lang, status, created) VALUES (?, ?, ?, ?, "
                "'open', ?) ON CONFLICT (wording_key, item_id) DO NOTHING",
                (ev["wording"], key, item_id, ev["lang"], _now()),
            )
        open_rows = store._execute(
            conn, "SELECT id, wording_key, item_id, wording, lang FROM proposals WHERE status = 'open' ORDER BY id"
        ).fetchall()
    out = []
    for number, key, item_id, wording, lang in open_rows:
        ev = found.get((key, item_id))
        if ev is None or key in known.get(item_id, set()) or (max_chars is not None and len(wording) > max_chars):
            continue
        out.append(Proposal(number, printable(wording), printable(item_id), lang and printable(lang),
                            **{k: ev[k] for k in ("likes", "dislikes", "clicks", "rephrases", "first", "last")},
                            sessions=len(ev["sessions"])))
    return out


def proposals(store: Any, numbers: list[int]) -> tuple[list[dict], list[int]]:
    """The open proposals with these numbers, and the numbers that are not open proposals."""
    with store._editor() as conn:
        rows = store._execute(conn, "SELECT id, wording, item_id, lang, status FROM proposals").fetchall()
    by_n = {r[0]: {"n": r[0], "wording": printable(r[1]), "item_id": r[2], "lang": r[3], "status": r[4]} for r in rows}
    found = [by_n[n] for n in numbers if n in by_n and by_n[n]["status"] == "open"]
    return found, [n for n in numbers if n not in by_n or by_n[n]["status"] != "open"]


def decide(store: Any, numbers: list[int], status: str) -> int:
    """Mark open proposals approved or rejected; how many changed."""
    if status not in DECISIONS:
        raise ValueError(status)
    changed = 0
    with store._editor() as conn, store._transaction(conn):
        for n in numbers:
            changed += store._execute(
                conn, "UPDATE proposals SET status = ?, decided = ? WHERE id = ? AND status = 'open'",
                (status, _now(), int(n)),
            ).rowcount
    return changed


def approve(store: Any, numbers: list[int]) -> int:
    """Mark open proposals approved; how many changed (adding them to the index is faqbot.store's job)."""
    return decide(store, numbers, "approved")


def reject(store: Any, numbers: list[int]) -> int:
    """Mark open proposals rejected: they are never proposed again; how many changed."""
    return decide(store, numbers, "rejected")


def wording_key(text: str) -> str:
    """Wordings that differ only in case, spacing or a trailing question mark count as one."""
    return " ".join(text.casefold().split()).rstrip("?？。.!！ ")
