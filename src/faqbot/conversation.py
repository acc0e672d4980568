"""Follow-up questions: each question is answered with the conversation so far.

A follow-up such as "一共有几种？" or "how do I change its log level?" names its topic only in an earlier turn, and
joining the earlier question to it ranks worse than the follow-up alone (the earlier question dominates the
embedding). But follow-ups stay on topic: in tests/data/dialogues.jsonl every in-scope follow-up's entry is the
previous turn's entry or on the same FAQ page. So the follow-up is ranked alone, and the conversation is only a
*topic prior*: the follow-up's own candidates on the topic's page get a bonus, the topic's entry a larger one.
The topic costs one extra model call, none when the question is clearly answered alone. This is the one decision
the browser, `/ask`, `/search`, `/api/search`, `faqbot ask --jsonl` and `faqbot chat` all use, and its constants
were chosen on the tuning split of tests/data/dialogues.jsonl (scripts/eval_dialogues.py --tune; figures on the
held-out rest in docs/retrieval.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .schema import Hit, SearchResult
from .lexical import query_words
from .search import clean_query
from .text import scrub_text, to_simplified

MAX_HISTORY = 50  # earlier questions accepted by default (Settings.max_history_turns); only the last `ContextRule.window` are read


@dataclass(frozen=True)
class ContextRule:
    """How the conversation's topic re-ranks a follow-up.

    - `topic`: where the topic comes from, the first entry of one extra ranking: "previous" (the previous question
      alone) or "joined" (the last `window` earlier questions joined with the follow-up).
    - `keep_alone`: a follow-up the FAQ answers alone (level "answer") at least this confident stands on its own
      (a topic switch) and costs no extra model call.
    - `max_oov`: a follow-up whose own words are this unknown to the FAQ (IDF-weighted share) stays off-topic...
    - `short_words`: ...unless it has at most this many words: "总共有几档可以选？" says nothing the FAQ knows because
      its subject is in an earlier turn.
    - `keep_other_page`: a follow-up whose own first entry is on another page than the topic's and at least this
      confident keeps its own answer (a topic switch the FAQ answers only at the "related" level).
    - `page_bonus`: added to the follow-up's own score of every entry on the topic's FAQ page (component/category).
    - `item_bonus`: added on top of that for the topic's entry itself.
    - `assert_from_context`: whether an answer the follow-up alone did not assert may be asserted thanks to the
      conversation; otherwise it is offered at the "related" level ("may help").
    """

    # chosen by `python scripts/eval_dialogues.py --tune` on the tuning split (docs/retrieval.md)
    topic: str = "joined"
    window: int = 2
    keep_alone: float = 0.85
    max_oov: float = 0.7
    short_words: int = 2
    keep_other_page: float = 0.4
    page_bonus: float = 0.06
    item_bonus: float = 0.02
    assert_from_context: bool = False


DEFAULT_RULE = ContextRule()


class HistoryError(ValueError):
    """The history is not a list of earlier questions (strings)."""


def clean_history(history: Any) -> list[str]:
    """Earlier user questions, oldest first, as a list of non-empty strings; raises HistoryError with what to send."""
    return Conversation.of(history).questions


@dataclass(frozen=True)
class Turn:
    """One earlier question of a conversation and what the bot showed for it. A history sent by an API client
    has only the question (`level` ""); the chat also knows the entry shown, its level and the answer bubble's
    message number (`message`), which is what a 👍/👎 points at."""

    question: str  # cleaned once (clean_query): whitespace normalised, cut as the ranking reads it
    item_id: str | None = None
    level: str = ""  # "answer" | "related" | "none"; "" when not known (a history of questions only)
    lang: str | None = None
    confidence: float | None = None
    message: int | None = None

    @property
    def in_scope(self) -> bool:
        return self.level != "none"

    @property
    def unresolved(self) -> bool:
        """A reply that did not settle the question: "not covered", or related entries only."""
        return bool(self.question.strip()) and self.level in ("none", "related")


@dataclass(frozen=True)
class Conversation:
    """The conversation so far, oldest turn first: the one shape of history every front end builds at its edge
    (`Conversation.of`), cleaned once there, and hands down to the service and the ranking."""

    turns: tuple[Turn, ...] = ()

    @classmethod
    def of(cls, history: Any, max_turns: int = MAX_HISTORY, max_chars: int | None = None) -> "Conversation":
        """From a client's history: None, a Conversation, or a list of earlier questions (strings, oldest first).
        Each text is cut to `max_chars` and cleaned once; only the last `max_turns` are kept. HistoryError says
        what to send instead."""
        if isinstance(history, Conversation):
            return cls(history.turns[-max_turns:]) if len(history.turns) > max_turns else history
        if history is None:
            return cls()
        if isinstance(history, (str, bytes)) or not isinstance(history, (list, tuple)):
            raise HistoryError(f"history must be a list of earlier questions (strings, oldest first), not {type(history).__name__}")
        kept = history[-max_turns:]
        bad = [i for i, h in enumerate(kept) if not isinstance(h, str)]
        if bad:
            i = len(history) - len(kept) + bad[0]
            raise HistoryError(f"history[{i}] is {type(history[i]).__name__}: every earlier question must be a string")
        cleaned = (clean_query(scrub_text(h if max_chars is None else h[:max_chars]))[0] for h in kept)
        return cls(tuple(Turn(q) for q in cleaned if q))

    @property
    def questions(self) -> list[str]:
        return [t.question for t in self.turns if t.question]

    def then(self, turn: Turn, message: int | None = None) -> "Conversation":
        """This conversation with one more turn (`message`: the chat bubble that shows its answer)."""
        return Conversation((*self.turns, turn if message is None else replace(turn, message=message)))

    def last(self, before_message: int | None = None) -> Turn | None:
        """The latest turn (before chat message `before_message`, when given)."""
        for turn in reversed(self.turns):
            if before_message is None or (turn.message is not None and turn.message < before_message):
                return turn
        return None

    def at_message(self, message: int) -> Turn | None:
        """The turn whose answer is chat message number `message`."""
        return next((t for t in self.turns if t.message == message), None)


def joined_query(history: list[str], query: str, window: int) -> str:
    """The last `window` earlier questions, then the follow-up."""
    return " ".join([*history[-window:], query]) if window > 0 else query


def topic_query(history: list[str], query: str, rule: ContextRule = DEFAULT_RULE) -> str:
    """The text whose first entry is the conversation's topic (the one extra model call)."""
    return history[-1] if rule.topic == "previous" else joined_query(history, query, rule.window)


def own_words(query: str) -> int:
    """How many distinct words the follow-up has (the BM25 tokens: stop words left out; no model call)."""
    cleaned, _ = clean_query(query)
    return len(query_words(to_simplified(cleaned))) if cleaned else 0


def own_oov(retriever: Any, query: str) -> float:
    """Share of the follow-up's own word weight on words the FAQ never uses (BM25 vocabulary only: no model
    call, and no second BM25 scoring of what `rank` already scored)."""
    cleaned, _ = clean_query(query)
    if not cleaned:
        return 1.0
    return retriever.lexical.oov(to_simplified(cleaned))


def level(result: Any) -> str:
    """'answer' | 'related' | 'none' (results without answer levels: from in_scope)."""
    return getattr(result, "match", "") or ("answer" if result.in_scope and result.hits else "none")


def rule_confidence(alone: Any) -> float:
    """The follow-up's own confidence on the scale the rule's gates were tuned on (Calibration.follow_up_prob):
    refitting the shown confidence on real questions must not move which follow-ups the topic may re-rank."""
    c = getattr(alone, "follow_up_confidence", None)
    return alone.confidence if c is None else c


def needs_context(alone: Any, oov: float, rule: ContextRule = DEFAULT_RULE, words: int | None = None) -> bool:
    """Whether the conversation may change this answer at all (if not, no extra model call is made).
    `alone` is the follow-up's own Ranking (or SearchResult); `words` its word count (`own_words`)."""
    ranked = alone.order if hasattr(alone, "order") else alone.hits
    if not alone.query.strip() or not len(ranked):
        return False  # empty question, or nothing matches the filters
    if oov > rule.max_oov and (words is None or words > rule.short_words):
        return False  # talks about things the FAQ never mentions: stays off-topic
    return not (level(alone) == "answer" and rule_confidence(alone) >= rule.keep_alone)


def page_of(item: Any) -> tuple[str, str]:
    """The FAQ page of an item, across versions: (component, category) of `<version>/<component>/<category>/<hash>`."""
    return item.component, item.category


def on_topic_scores(items: list, alone: Any, topic: int, rule: ContextRule = DEFAULT_RULE) -> np.ndarray:
    """The follow-up's own scores of every item (`Ranking.scores`), plus the topic prior: `page_bonus` on the
    topic item's page, `item_bonus` more on the topic item. Items the filters exclude stay at -inf."""
    page = page_of(items[topic])
    on_page = np.fromiter((page_of(it) == page for it in items), dtype=bool, count=len(items))
    scores = alone.scores + rule.page_bonus * on_page
    scores[topic] += rule.item_bonus
    return scores


def decide(items: list, alone: Any, topic: Any, rule: ContextRule = DEFAULT_RULE,
           answer_at: float | None = None) -> tuple[np.ndarray, np.ndarray, float, str] | None:
    """The follow-up re-ranked with the topic of `topic` (a Ranking): (order, scores, confidence, level), or None
    when the conversation changes nothing (the topic's page does not win, or it only confirms an answer the
    follow-up has alone). An entry that only the conversation made likely is "related", its confidence kept
    below `answer_at` so the figure and the level agree, unless the rule asserts it."""
    if not len(alone.order) or not len(topic.order):
        return None
    scores = on_topic_scores(items, alone, int(topic.order[0]), rule)
    order = np.argsort(-scores, kind="stable")[:len(alone.order)]
    order = order[np.isfinite(scores[order])]
    first, own_first = int(order[0]), int(alone.order[0])
    topic_page = page_of(items[int(topic.order[0])])
    if page_of(items[own_first]) != topic_page and rule_confidence(alone) >= rule.keep_other_page:
        return None  # confident enough on its own page: a topic switch
    if page_of(items[first]) != topic_page:
        return None  # the follow-up's own evidence outweighs the topic: asked as if alone
    if first == own_first and alone.match != "none":
        return None  # the topic agrees with the follow-up's own first entry and level
    if rule.assert_from_context or answer_at is None:
        return order, scores, alone.confidence, "answer" if rule.assert_from_context else "related"
    return order, scores, min(alone.confidence, round(answer_at - 1e-4, 4)), "related"


def answer_threshold(retriever: Any) -> float | None:
    """The confidence at which the retriever asserts an answer (None when it has no answer levels)."""
    override = getattr(getattr(retriever, "params", None), "answer_at", None)
    if override is not None:
        return float(override)
    calibration = getattr(retriever, "calibration", None)
    return getattr(calibration, "answer_at", None)


def as_result(items: list, ranking: Any, k: int, decided: tuple | None = None) -> SearchResult:
    """A Ranking (re-ranked by `decided`, if given) as the SearchResult `Retriever.search` would give."""
    order, scores, confidence, match = decided or (ranking.order, ranking.scores, ranking.confidence, ranking.match)
    hits = [Hit(item=items[i], score=float(scores[i]), lang=ranking.lang) for i in order[:max(1, int(k))]]
    return SearchResult(query=ranking.query, lang=ranking.lang, in_scope=match != "none", hits=hits,
                        message=ranking.message, confidence=round(float(confidence), 4), match=match)


def search_in_context(
    retriever: Any,
    query: str,
    history: "Conversation | list[str] | None" = None,
    k: int = 5,
    version: str = "latest",
    component: str | None = None,
    rule: ContextRule = DEFAULT_RULE,
) -> SearchResult:
    """Answer `query` given the conversation so far (a Conversation, already cleaned, or a list of earlier user
    questions, oldest first, cleaned here)."""
    history = Conversation.of(history).questions
    k = max(1, int(k))
    if not history:
        return retriever.search(query, k=k, version=version, component=component)
    alone = retriever.rank(query, version=version, component=component)
    if not needs_context(alone, own_oov(retriever, query), rule, own_words(query)):
        return as_result(retriever.items, alone, k)
    topic = retriever.rank(topic_query(history, clean_query(query)[0], rule), version=version, component=component)
    return as_result(retriever.items, alone, k, decide(retriever.items, alone, topic, rule, answer_threshold(retriever)))
