"""Dev-set evaluation: R@1, R@3, MRR@10, off-topic rejection and wrong rejection, per language and channel."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .devset import DevQuestion, load_devset  # noqa: F401 - re-exported for the CLI
from .search import RankingParams, Retriever, clean_query
from .text import to_simplified

CHANNELS = ("final", "dense", "bm25")


@dataclass
class Metrics:
    n: int = 0
    r1: float = 0.0
    r3: float = 0.0
    mrr10: float = 0.0
    n_offtopic: int = 0
    offtopic_rejected: float = 0.0
    wrongly_rejected: float = 0.0
    misses: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "misses"}


def channel_params(base: RankingParams, channel: str) -> RankingParams:
    if channel == "dense":
        return replace(base, use_lexical=False)
    if channel == "bm25":
        return replace(base, use_dense=False)
    return base


def evaluate(retriever: Retriever, questions: list[DevQuestion], channel: str = "final",
             params: RankingParams | None = None, version: str = "latest") -> dict[str, Metrics]:
    """Metrics keyed by 'all', 'zh', 'en'. Ranking is judged on in-scope questions whatever the decision."""
    p = channel_params(params or retriever.params, channel)
    mask = retriever.filter_mask(version)
    buckets = {key: {"ranks": [], "rej_in": [], "rej_off": [], "misses": []} for key in ("all", "zh", "en")}
    for dq in questions:
        cleaned, _ = clean_query(dq.q)
        if cleaned:
            final, _, lex, oov = retriever.score_items(to_simplified(cleaned), p)
            final = np.where(mask, final, -np.inf)
            order = np.argsort(-final, kind="stable")
            top = float(final[order[0]])
            gap = top - float(final[order[1]])
            in_scope = retriever.decide_in_scope(retriever.confidence(top, lex, oov, p), gap, p)
        else:
            order, in_scope, top = np.array([], dtype=int), False, 0.0
        ids = [retriever.items[i].id for i in order[:10]]
        for key in ("all", dq.lang):
            b = buckets.setdefault(key, {"ranks": [], "rej_in": [], "rej_off": [], "misses": []})
            if dq.offtopic:
                b["rej_off"].append(not in_scope)
            else:
                rank = next((r for r, i in enumerate(ids, 1) if i in dq.gold_ids), None)
                b["ranks"].append(rank)
                b["rej_in"].append(not in_scope)
                if key == "all" and (rank != 1 or not in_scope):
                    b["misses"].append({"q": dq.q, "rank": rank, "in_scope": in_scope, "top": ids[:1], "score": round(top, 4), "gold": list(dq.gold_ids)})
            if key == "all" and dq.offtopic and in_scope:
                b["misses"].append({"q": dq.q, "offtopic_accepted": True, "top": ids[:1], "score": round(top, 4)})
    out = {}
    for key, b in buckets.items():
        ranks = b["ranks"]
        m = Metrics(n=len(ranks), n_offtopic=len(b["rej_off"]), misses=b["misses"])
        if ranks:
            m.r1 = sum(r == 1 for r in ranks) / len(ranks)
            m.r3 = sum(r is not None and r <= 3 for r in ranks) / len(ranks)
            m.mrr10 = sum(1 / r for r in ranks if r) / len(ranks)
            m.wrongly_rejected = sum(b["rej_in"]) / len(ranks)
        if b["rej_off"]:
            m.offtopic_rejected = sum(b["rej_off"]) / len(b["rej_off"])
        out[key] = m
    return out


def format_table(results: dict[str, dict[str, Metrics]]) -> str:
    head = f"{'channel':<8} {'lang':<4} {'n':>4} {'R@1':>6} {'R@3':>6} {'MRR@10':>7} {'off-topic rej.':>15} {'wrong rej.':>11}"
    lines = [head, "-" * len(head)]
    for channel, per_lang in results.items():
        for lang in ("all", "zh", "en"):
            m = per_lang.get(lang)
            if m is None:
                continue
            rej = "n/a" if channel == "bm25" else f"{m.offtopic_rejected:.3f} ({m.n_offtopic})"
            wrong = "n/a" if channel == "bm25" else f"{m.wrongly_rejected:.3f}"
            lines.append(f"{channel:<8} {lang:<4} {m.n:>4} {m.r1:>6.3f} {m.r3:>6.3f} {m.mrr10:>7.3f} {rej:>15} {wrong:>11}")
    return "\n".join(lines)
