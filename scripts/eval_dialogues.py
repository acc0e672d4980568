"""Follow-up questions measured on tests/data/dialogues.jsonl, held out from the constants' tuning.

    python scripts/eval_dialogues.py            # the table on the held-out split (docs/retrieval.md)
    python scripts/eval_dialogues.py --tune     # also sweep ContextRule on the tuning split and print the best
    python scripts/eval_dialogues.py --first 77 # only the first 77 dialogues (the set of the 2026-11-28 figures)
    python scripts/eval_dialogues.py --since d139  # only d139 on (written after the rule's form was chosen)

Dialogues are split by a hash of their id (`split_of`): about 40% tune the rule, the rest are held out. Every
follow-up turn (2nd and 3rd) is asked with the earlier questions of its dialogue as history, through
`faqbot.conversation.search_in_context`, the one decision the app and the CLI use, and also alone.

- In-scope follow-ups (elliptic and three-turn dialogues): right = the first answer is a gold entry and the
  question is not refused.
- Topic switches: the new, standalone question, right with the history and right alone (should be equal).
- Off-topic follow-ups (no gold entry): "asserted" = answered as if the FAQ covered it (match "answer").
- Extra rankings: how many rankings `search_in_context` asked for beyond the follow-up's own (each is one model
  call, or two for a long paste), counted by wrapping `Retriever.rank`.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from faqbot.config import Settings
from faqbot.conversation import (
    DEFAULT_RULE, ContextRule, answer_threshold, as_result, decide, level, needs_context, own_oov, own_words, page_of,
    rule_confidence,
    search_in_context, topic_query,
)
from faqbot.schema import SearchResult
from faqbot.search import Ranking, Retriever

DIALOGUES = Path(__file__).resolve().parents[1] / "tests" / "data" / "dialogues.jsonl"
TUNE_SHARE = 40  # percent of dialogues (by id hash) that tune the rule
KINDS = ("elliptic", "switch", "offtopic", "three_turn")
SOURCES = (("previous", 1), ("joined", 1), ("joined", 2))  # (topic, window) of the one extra ranking
SHOWN = 3  # a "related" reply in the chat shows its first entry expanded and the next ones as suggestions
SAFE_PRECISION = 0.97  # an answer made by the conversation may be asserted only if this precise (lower bound)


def split_of(dialogue_id: str) -> str:
    """'tune' or 'heldout', fixed by the id alone (adding dialogues never moves the others)."""
    bucket = int(hashlib.sha256(dialogue_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "tune" if bucket < TUNE_SHARE else "heldout"


def id_number(dialogue_id: str) -> int:
    """d139 -> 139 (ids are numbered in the order dialogues were written)."""
    digits = "".join(ch for ch in dialogue_id if ch.isdigit())
    return int(digits) if digits else -1


def load_dialogues(path: Path = DIALOGUES) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def category(dialogue: dict, turn: dict) -> str:
    """'offtopic' (no gold), 'switch' (a standalone question after another topic) or 'follow' (needs the context)."""
    if not turn["gold_ids"]:
        return "offtopic"
    return "switch" if dialogue["kind"] == "switch" else "follow"


def asserted(result: SearchResult) -> bool:
    """Answered as if the FAQ covered it (level 'answer')."""
    return level(result) == "answer"


def among_first(result: SearchResult, gold: list[str], n: int = SHOWN) -> bool:
    """A gold entry is among the first `n` entries and the reply is not "not covered". For a "related" reply (what
    the conversation makes) the chat shows exactly these: the first expanded, the next ones as suggestions."""
    return bool(level(result) != "none" and any(h.item.id in gold for h in result.hits[:n]))


def right(result: SearchResult, gold: list[str]) -> bool:
    """The first entry is a gold one and the reply is not "not covered" ('answer' or 'related')."""
    return bool(level(result) != "none" and result.hits and result.hits[0].item.id in gold)


@dataclass
class Turn:
    dialogue: dict
    n: int  # 1 = second turn
    history: list[str]
    q: str
    gold: list[str]
    alone: Ranking
    oov: float
    topics: dict[tuple[str, int], Ranking]  # (topic, window) -> the topic's ranking
    items: list
    answer_at: float | None = None
    words: int = 0

    @property
    def category(self) -> str:
        return category(self.dialogue, self.dialogue["turns"][self.n])


def follow_up_turns(dialogues: list[dict]):
    for d in dialogues:
        for n in range(1, len(d["turns"])):
            yield d, n, [t["q"] for t in d["turns"][:n]], d["turns"][n]


def collect(retriever: Retriever, dialogues: list[dict]) -> list[Turn]:
    """Every follow-up ranked alone and every candidate topic ranked, once, so the rule is swept without a model call."""
    turns = []
    for d, n, history, t in follow_up_turns(dialogues):
        topics = {(topic, w): retriever.rank(topic_query(history, t["q"], ContextRule(topic=topic, window=w)))
                  for topic, w in SOURCES}
        turns.append(Turn(d, n, history, t["q"], t["gold_ids"], retriever.rank(t["q"]), own_oov(retriever, t["q"]),
                          topics, retriever.items, answer_threshold(retriever), own_words(t["q"])))
    return turns


def made(turn: Turn, rule: ContextRule):
    """What the conversation changed for this turn under `rule` (None: answered as alone)."""
    if not needs_context(turn.alone, turn.oov, rule, turn.words):
        return None
    return decide(turn.items, turn.alone, turn.topics[(rule.topic, rule.window)], rule, turn.answer_at)


def decided(turn: Turn, rule: ContextRule) -> SearchResult:
    """What search_in_context answers under `rule` (same functions, from the precomputed rankings)."""
    return as_result(turn.items, turn.alone, 5, made(turn, rule))


GRID = {
    "source": SOURCES,
    "keep_alone": (0.0, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, float("inf")),  # at or below answer_at: all alike
    "max_oov": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01),
    "page_bonus": (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2),
    "item_bonus": (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1),
    "short_words": (0, 1, 2, 3, 4, 5, 6),
    "keep_other_page": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, float("inf")),
}
SCORING = ("source", "page_bonus", "item_bonus")  # how the topic re-ranks; the other levers only gate it


def rule_of(values: dict) -> ContextRule:
    (topic, window), rest = values["source"], {k: v for k, v in values.items() if k != "source"}
    return ContextRule(topic=topic, window=window, **rest)


def context_precision(turns: list[Turn], rule: ContextRule) -> tuple[int, int]:
    """(right, n) over the turns whose answer the conversation made: would asserting them be safe?"""
    good = n = 0
    for t in turns:
        if made(t, rule) is not None:
            n += 1
            good += t.category != "offtopic" and right(decided(t, rule), t.gold)
    return good, n


def wilson_lower(good: int, n: int, z: float = 1.96) -> float:
    """Lower end of the 95% Wilson interval of a share: what `good` of `n` shows at least."""
    if not n:
        return 0.0
    p = good / n
    return (p + z * z / (2 * n) - z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5) / (1 + z * z / n)


def _outcomes(turns: list[Turn], result) -> np.ndarray:
    """Per turn: [right, asserted, not refused] of a SearchResult-giving function (rows: turns)."""
    out = []
    for t in turns:
        r = result(t)
        out.append((t.category != "offtopic" and right(r, t.gold), asserted(r), level(r) != "none"))
    return np.array(out, dtype=int).reshape(len(turns), 3)


def tune(turns: list[Turn]) -> ContextRule:
    """The best rule on these turns. Many rules tie (a plateau); of those, each constant is set to the median of
    its tied values, the centre of the plateau, so the choice does not sit on the edge of what the few tuning
    dialogues happen to allow (if that mix is not itself among the best, the first best rule is kept). Answers the
    conversation made are asserted only if the tuning split shows them precise: the lower end of the 95%
    interval of their precision at least SAFE_PRECISION.

    The sweep is exhaustive but split in two: the scoring levers (SCORING) decide what the topic would make of a
    turn, the other levers only decide whether a turn is re-ranked at all, so each scoring mix is computed once."""
    cats = np.array([t.category for t in turns])
    follow, switch, off = cats == "follow", cats == "switch", cats == "offtopic"
    alone = _outcomes(turns, lambda t: as_result(t.items, t.alone, 5))
    gates = [n for n in GRID if n not in SCORING]
    gate_values = list(itertools.product(*(GRID[n] for n in gates)))
    # which turns each gate combination lets the topic re-rank (needs_context and keep_other_page)
    open_ = np.zeros((len(gate_values), len(turns)), dtype=bool)
    for g, values in enumerate(gate_values):
        rule = ContextRule(**dict(zip(gates, values)))
        open_[g] = [needs_context(t.alone, t.oov, rule, t.words) for t in turns]
    conf = np.array([rule_confidence(t.alone) for t in turns])
    best_key, tied = None, []
    for values in itertools.product(*(GRID[n] for n in SCORING)):
        named = dict(zip(SCORING, values))
        # ungated: what the topic makes of each turn
        base = rule_of({**named, "keep_alone": float("inf"), "max_oov": 2.0, "keep_other_page": float("inf")})
        other_page = np.array([bool(len(t.alone.order)) and bool(len(t.topics[(base.topic, base.window)].order))
                               and page_of(t.items[int(t.alone.order[0])])
                               != page_of(t.items[int(t.topics[(base.topic, base.window)].order[0])]) for t in turns])
        ctx = _outcomes(turns, lambda t: decided(t, base))
        for g, gv in enumerate(gate_values):
            kop = dict(zip(gates, gv))["keep_other_page"]
            use = open_[g] & ~(other_page & (conf >= kop))
            res = np.where(use[:, None], ctx, alone)
            key = (-max(0, int(res[off, 1].sum()) - int(alone[off, 1].sum())),
                   -max(0, int(alone[switch, 0].sum()) - int(res[switch, 0].sum())),
                   int(res[follow, 0].sum()),
                   -max(0, int(res[off, 2].sum()) - int(alone[off, 2].sum())))
            if best_key is None or key > best_key:
                best_key, tied = key, [{**named, **dict(zip(gates, gv))}]
            elif key == best_key:
                tied.append({**named, **dict(zip(gates, gv))})
    centre = {name: sorted((v[name] for v in tied), key=str if name == "source" else None)[(len(tied) - 1) // 2]
              for name in GRID}
    rule = rule_of(centre if centre in tied else tied[0])
    good, n = context_precision(turns, rule)
    return replace(rule, assert_from_context=wilson_lower(good, n) >= SAFE_PRECISION)


def table(retriever: Retriever, dialogues: list[dict], rule: ContextRule) -> str:
    """Per kind and language, through search_in_context itself (exactly what the app does)."""
    rows = defaultdict(lambda: {"follow": [0, 0, 0], "switch": [0, 0, 0], "offtopic": [0, 0, 0]})
    related = extra_calls = follow_ups = most_calls = 0
    shown = {"ctx": 0, "alone": 0, "n": 0}  # in-scope follow-ups with a gold entry among the first SHOWN entries
    rank, calls = retriever.rank, []

    def counted(*args, **kwargs):  # every ranking search_in_context asks for (a model call, or two for a paste)
        calls.append(args[0] if args else kwargs.get("query"))
        return rank(*args, **kwargs)

    for d, n, history, t in follow_up_turns(dialogues):
        calls.clear()
        retriever.rank = counted
        try:
            ctx = search_in_context(retriever, t["q"], history, rule=rule)
        finally:
            del retriever.rank
        extra = len(calls) - 1
        alone = retriever.search(t["q"])
        c = category(d, t)
        follow_ups += 1
        extra_calls += extra
        most_calls = max(most_calls, extra)
        related += c != "offtopic" and right(ctx, t["gold_ids"]) and level(ctx) == "related"
        if c == "follow":
            shown["n"] += 1
            shown["ctx"] += among_first(ctx, t["gold_ids"])
            shown["alone"] += among_first(alone, t["gold_ids"])
        for key in ((d["kind"], d["lang"]), (d["kind"], "all"), ("all", d["lang"]), ("all", "all")):
            cell = rows[key][c]
            if c == "offtopic":
                cell[0] += asserted(ctx)
                cell[1] += asserted(alone)
            else:
                cell[0] += right(ctx, t["gold_ids"])
                cell[1] += right(alone, t["gold_ids"])
            cell[2] += 1

    def fmt(cell, share=True):
        good, base, n = cell
        if not n:
            return f"{'':>19}"
        if share:
            return f"{good / n:6.3f} {base / n:6.3f} {n:>4}"[:19].rjust(19)
        return f"{good:>6} {base:>6} {n:>4}".rjust(19)

    head = (f"{'kind':<11}{'lang':<5}  {'follow-ups right':>19}  {'switches right':>19}  {'off-topic asserted':>19}\n"
            f"{'':<16}  {'ctx  alone    n':>19}  {'ctx  alone    n':>19}  {'ctx  alone    n':>19}")
    lines = [head, "-" * len(head.splitlines()[0])]
    for kind in (*KINDS, "all"):
        for lang in ("zh", "en", "all"):
            r = rows.get((kind, lang))
            if r is None:
                continue
            lines.append(f"{kind:<11}{lang:<5}  {fmt(r['follow'])}  {fmt(r['switch'])}  {fmt(r['offtopic'], share=False)}")
    if shown["n"]:
        lines.append(f"follow-ups with a gold entry among the first {SHOWN} (not refused): "
                     f"{shown['ctx'] / shown['n']:.3f} with history, {shown['alone'] / shown['n']:.3f} alone "
                     f"({shown['ctx']} and {shown['alone']} of {shown['n']})")
    lines.append(f"right with history at the 'related' level (\"may help\"): {related}; extra rankings (model calls) "
                 f"per follow-up: {extra_calls} over {follow_ups} follow-ups, at most {most_calls} for one")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogues", type=Path, default=DIALOGUES)
    ap.add_argument("--tune", action="store_true", help="sweep the rule on the tuning split and print the best one")
    ap.add_argument("--first", type=int, default=0, metavar="N",
                    help="only the first N dialogues of the file (77: the set of the 2026-11-28 figures)")
    ap.add_argument("--since", default="", metavar="ID",
                    help="only dialogues from this id on (d139: the set written after the rule's form was chosen)")
    args = ap.parse_args(argv)
    retriever = Retriever.from_settings(Settings(), rebuild=False)
    dialogues = load_dialogues(args.dialogues)
    if args.first > 0:
        dialogues = dialogues[:args.first]
    if args.since:
        dialogues = [d for d in dialogues if id_number(d["id"]) >= id_number(args.since)]
    splits = {s: [d for d in dialogues if split_of(d["id"]) == s] for s in ("tune", "heldout")}
    rule = DEFAULT_RULE
    if args.tune:
        turns = collect(retriever, splits["tune"])
        rule = tune(turns)
        print(f"tuned on {len(splits['tune'])} dialogues ({len(turns)} follow-ups): {rule}")
        good, n = context_precision(turns, rule)
        print(f"answers the conversation made on the tuning split: {good} of {n} right (95% lower bound "
              f"{wilson_lower(good, n):.3f}; asserted only if >= {SAFE_PRECISION})")
        if rule != DEFAULT_RULE:
            print(f"(differs from DEFAULT_RULE {DEFAULT_RULE}; held-out table below uses the tuned rule)")
    print(f"dialogues: {args.dialogues.name}, {len(dialogues)} ({len(splits['tune'])} tune / "
          f"{len(splits['heldout'])} held out), model: {retriever.embedder.name}, rule: {rule}")
    for name in ("heldout",) + (("tune",) if args.tune else ()):
        print(f"\n## {name} split: share of follow-up turns (ctx = with history, alone = without); off-topic: counts")
        print(table(retriever, splits[name], rule))
    return 0


if __name__ == "__main__":
    sys.exit(main())
