"""Follow-up questions: each question is answered with the conversation so far.

A follow-up such as "一共有几种？" or "how do I change its log level?" names its topic only in an earlier turn. So a
question with history is ranked twice: alone, and joined with the last earlier question(s) (one extra model call,
none when the question is clearly answered alone). `prefers_context` then picks which ranking answers. It is the
one decision the browser, `/ask`, `/search`, `/api/search`, `faqbot ask --jsonl` and `faqbot chat` all use, and
its constants were chosen on the tuning split of tests/data/dialogues.jsonl (scripts/eval_dialogues.py;
figures on the held-out rest in docs/retrieval.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .schema import Hit, SearchResult
from .search import clean_query
from .text import to_simplified

MAX_HISTORY = 50  # earlier questions accepted; only the last `ContextRule.window` are read
ALONE_DEPTH = 50  # hits of the stand-alone ranking kept to see how the follow-up itself scores the joined answer


@dataclass(frozen=True)
class ContextRule:
    """When the joined ranking (follow-up + earlier questions) answers instead of the follow-up alone.

    - `window`: how many earlier questions are joined to the follow-up.
    - `keep_alone`: a follow-up the FAQ answers alone (level "answer") at least this confident stands on its own
      (a topic switch) and costs no extra model call.
    - `max_oov`: a follow-up whose own words are this unknown to the FAQ (IDF-weighted share) stays off-topic.
    - `min_own`: the joined answer must be one of the follow-up's own candidates: scored for the follow-up alone,
      at most this far below its best item (so an old topic cannot answer a new question).
    - `assert_from_context`: whether an answer the follow-up alone did not assert may be asserted thanks to the
      conversation; otherwise it is offered at the "related" level ("may help").
    """

    # chosen by `python scripts/eval_dialogues.py --tune` (docs/retrieval.md); keep_alone is below the calibrated
    # answer threshold, so in effect any follow-up the FAQ answers alone keeps that answer
    window: int = 2
    keep_alone: float = 0.5196
    max_oov: float = 0.7
    min_own: float = 0.0
    assert_from_context: bool = False


DEFAULT_RULE = ContextRule()


class HistoryError(ValueError):
    """The history is not a list of earlier questions (strings)."""


def clean_history(history: Any) -> list[str]:
    """Earlier user questions, oldest first, as a list of non-empty strings; raises HistoryError with what to send."""
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, (list, tuple)):
        raise HistoryError(f"history must be a list of earlier questions (strings, oldest first), not {type(history).__name__}")
    bad = [i for i, h in enumerate(history) if not isinstance(h, str)]
    if bad:
        raise HistoryError(f"history[{bad[0]}] is {type(history[bad[0]]).__name__}: every earlier question must be a string")
    return [h for h in (clean_query(h)[0] for h in history[-MAX_HISTORY:]) if h]


def joined_query(history: list[str], query: str, window: int) -> str:
    """The text the follow-up is ranked with in context: the last `window` earlier questions, then the follow-up."""
    return " ".join([*history[-window:], query]) if window > 0 else query


def own_oov(retriever: Any, query: str) -> float:
    """Share of the follow-up's own word weight on words the FAQ never uses (BM25 only: no model call)."""
    cleaned, _ = clean_query(query)
    if not cleaned:
        return 1.0
    return float(retriever.lexical.evidence(to_simplified(cleaned))[1])


def own_score_gap(alone: SearchResult, item_id: str) -> float:
    """How far below the follow-up's own best item the given item ranks for the follow-up alone (inf if absent)."""
    if not alone.hits:
        return float("inf")
    best = alone.hits[0].score
    for hit in alone.hits:
        if hit.item.id == item_id:
            return best - hit.score
    return float("inf")


def level(result: SearchResult) -> str:
    """'answer' | 'related' | 'none' (results without answer levels: from in_scope)."""
    return getattr(result, "match", "") or ("answer" if result.in_scope and result.hits else "none")


def needs_context(alone: SearchResult, oov: float, rule: ContextRule = DEFAULT_RULE) -> bool:
    """Whether the conversation may change this answer at all (if not, no extra model call is made)."""
    if not alone.query.strip() or not alone.hits:
        return False  # empty question, or nothing matches the filters
    if oov > rule.max_oov:
        return False  # talks about things the FAQ never mentions: stays off-topic
    return not (level(alone) == "answer" and alone.confidence >= rule.keep_alone)


def prefers_context(alone: SearchResult, joined: SearchResult, oov: float, rule: ContextRule = DEFAULT_RULE) -> bool:
    """The decision: does the joined ranking answer this follow-up instead of the follow-up alone?"""
    if not needs_context(alone, oov, rule) or not joined.hits or level(joined) == "none":
        return False
    return own_score_gap(alone, joined.hits[0].item.id) <= rule.min_own


def as_answer_to(joined: SearchResult, alone: SearchResult, k: int, rule: ContextRule = DEFAULT_RULE,
                 answer_at: float | None = None) -> SearchResult:
    """The joined ranking reported as the answer to the follow-up as asked (its text, its language). An answer
    the follow-up alone did not assert is "related" unless the rule asserts it (confidence kept below
    `answer_at`, so the figure and the level agree)."""
    lang = alone.lang
    hits = [Hit(item=h.item, score=h.score, lang=lang) for h in joined.hits[:k]]
    out = replace(joined, query=alone.query, lang=lang, hits=hits, message=alone.message)
    if level(alone) != "answer" and level(joined) == "answer" and not rule.assert_from_context and hasattr(out, "match"):
        confidence = out.confidence if answer_at is None else min(out.confidence, round(answer_at - 1e-4, 4))
        out = replace(out, match="related", confidence=confidence)
    return out


def answer_threshold(retriever: Any) -> float | None:
    """The confidence at which the retriever asserts an answer (None when it has no answer levels)."""
    override = getattr(getattr(retriever, "params", None), "answer_at", None)
    if override is not None:
        return float(override)
    calibration = getattr(retriever, "calibration", None)
    return getattr(calibration, "answer_at", None)


def search_in_context(
    retriever: Any,
    query: str,
    history: list[str] | None = None,
    k: int = 5,
    version: str = "latest",
    component: str | None = None,
    rule: ContextRule = DEFAULT_RULE,
) -> SearchResult:
    """Answer `query` given the earlier user questions of this conversation (oldest first)."""
    history = clean_history(history)
    k = max(1, int(k))
    if not history:
        return retriever.search(query, k=k, version=version, component=component)
    alone = retriever.search(query, k=max(k, ALONE_DEPTH), version=version, component=component)
    oov = own_oov(retriever, query)
    if not needs_context(alone, oov, rule):
        return _first(alone, k)
    joined = retriever.search(joined_query(history, clean_query(query)[0], rule.window), k=k, version=version,
                              component=component)
    if prefers_context(alone, joined, oov, rule):
        return as_answer_to(joined, alone, k, rule, answer_threshold(retriever))
    return _first(alone, k)


def _first(result: SearchResult, k: int) -> SearchResult:
    return replace(result, hits=result.hits[:k]) if len(result.hits) > k else result
