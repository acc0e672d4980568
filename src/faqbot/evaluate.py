"""Dev-data evaluation through `Retriever.rank` (exactly what `faqbot ask` does): ranking and answer levels.

Figures are reported per split (tune: where constants are chosen; heldout: where they are judged) and language:
- R@1, R@3, MRR@10 over covered questions, whatever the level;
- precision of asserted answers (`match == "answer"` with the right entry first), over every question asserted;
- the share of covered questions answered `none`;
- the share of uncovered questions asserted: off-topic ones and hard negatives (near misses) apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .devset import (DevQuestion, RealQuestionsError, load_dev_data, load_devset, load_real_questions,  # noqa: F401
                     split_devset, split_real)  # re-exported for the CLI
from .search import Ranking, RankingParams, Retriever

CHANNELS = ("final", "dense", "bm25")


@dataclass
class Judged:
    """One dev question and what the ranking did with it."""

    question: DevQuestion
    ranking: Ranking
    ids: list[str]  # the first ten item ids

    @property
    def rank(self) -> int | None:
        return next((r for r, i in enumerate(self.ids, 1) if i in self.question.gold_ids), None)

    @property
    def right(self) -> bool:
        return self.rank == 1


@dataclass
class Metrics:
    n: int = 0  # covered questions
    r1: float = 0.0
    r3: float = 0.0
    mrr10: float = 0.0
    asserted: int = 0  # questions answered with match == "answer"
    answer_precision: float = float("nan")
    covered_none: float = float("nan")
    covered_related: float = float("nan")
    n_offtopic: int = 0
    offtopic_asserted: float = float("nan")
    n_hard: int = 0
    hard_asserted: float = float("nan")
    misses: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "misses"}


def channel_params(base: RankingParams, channel: str) -> RankingParams:
    if channel == "dense":
        return replace(base, use_lexical=False)
    if channel == "bm25":
        return replace(base, use_dense=False)
    return base


def judge(retriever: Retriever, questions: list[DevQuestion], params: RankingParams | None = None,
          version: str = "latest") -> list[Judged]:
    out = []
    for dq in questions:
        ranking = retriever.rank(dq.q, version=version, params=params)
        out.append(Judged(dq, ranking, [retriever.items[i].id for i in ranking.order[:10]]))
    return out


def metrics(judged: list[Judged]) -> Metrics:
    covered = [j for j in judged if j.question.gold_ids]
    offtopic = [j for j in judged if j.question.offtopic and not j.question.hard_negative]
    hard = [j for j in judged if j.question.hard_negative]
    asserted = [j for j in judged if j.ranking.match == "answer"]
    m = Metrics(n=len(covered), asserted=len(asserted), n_offtopic=len(offtopic), n_hard=len(hard))
    if covered:
        ranks = [j.rank for j in covered]
        m.r1 = sum(r == 1 for r in ranks) / len(ranks)
        m.r3 = sum(r is not None and r <= 3 for r in ranks) / len(ranks)
        m.mrr10 = sum(1 / r for r in ranks if r) / len(ranks)
        m.covered_none = sum(j.ranking.match == "none" for j in covered) / len(covered)
        m.covered_related = sum(j.ranking.match == "related" for j in covered) / len(covered)
    if asserted:
        m.answer_precision = sum(j.right for j in asserted) / len(asserted)
    if offtopic:
        m.offtopic_asserted = sum(j.ranking.match == "answer" for j in offtopic) / len(offtopic)
    if hard:
        m.hard_asserted = sum(j.ranking.match == "answer" for j in hard) / len(hard)
    for j in judged:
        wrong_answer = j.ranking.match == "answer" and not j.right
        refused = bool(j.question.gold_ids) and j.ranking.match == "none"
        missed = bool(j.question.gold_ids) and not j.right
        if wrong_answer or refused or missed:
            m.misses.append({"q": j.question.q[:300], "kind": j.question.kind, "rank": j.rank, "match": j.ranking.match,
                             "confidence": round(j.ranking.confidence, 3), "top": j.ids[:1],
                             "gold": list(j.question.gold_ids), "near": j.question.near})
    return m


def evaluate(retriever: Retriever, questions: list[DevQuestion], channel: str = "final",
             params: RankingParams | None = None, version: str = "latest") -> dict[str, Metrics]:
    """Metrics keyed by 'all', 'zh', 'en' (levels are meaningful only for the 'final' channel)."""
    judged = judge(retriever, questions, channel_params(params or retriever.params, channel), version)
    return by_language(judged)


def by_language(judged: list[Judged]) -> dict[str, Metrics]:
    return {lang: metrics([j for j in judged if lang == "all" or j.question.lang == lang]) for lang in ("all", "zh", "en")}


def evaluate_splits(retriever: Retriever, questions: list[DevQuestion], channel: str = "final",
                    params: RankingParams | None = None) -> dict[str, dict[str, Metrics]]:
    """{"tune": {...}, "heldout": {...}}: the same metrics on each side of the page split."""
    p = channel_params(params or retriever.params, channel)
    return {side: by_language(judge(retriever, qs, p)) for side, qs in split_devset(questions).items()}


def _pct(x: float) -> str:
    return "   n/a" if x != x else f"{x:6.3f}"


def format_levels_table(results: dict[str, dict[str, Metrics]]) -> str:
    """One line per split and language: ranking, then what the levels did."""
    head = (f"{'split':<8} {'lang':<4} {'n':>4} {'R@1':>6} {'R@3':>6} {'MRR':>6} | {'asserted':>8} {'ans.prec':>8} "
            f"{'cov.none':>8} {'cov.rel':>7} | {'off':>4} {'off.ans':>7} {'hard':>5} {'hard.ans':>8}")
    lines = [head, "-" * len(head)]
    for split, per_lang in results.items():
        for lang in ("all", "zh", "en"):
            m = per_lang[lang]
            lines.append(f"{split:<8} {lang:<4} {m.n:>4} {m.r1:>6.3f} {m.r3:>6.3f} {m.mrr10:>6.3f} | {m.asserted:>8} "
                         f"{_pct(m.answer_precision):>8} {_pct(m.covered_none):>8} {_pct(m.covered_related):>7} | "
                         f"{m.n_offtopic:>4} {_pct(m.offtopic_asserted):>7} {m.n_hard:>5} {_pct(m.hard_asserted):>8}")
    return "\n".join(lines)


def format_table(results: dict[str, dict[str, Metrics]]) -> str:
    """Ranking only, per channel (the dense and BM25 channels have no calibrated levels)."""
    head = f"{'channel':<8} {'lang':<4} {'n':>4} {'R@1':>6} {'R@3':>6} {'MRR@10':>7}"
    lines = [head, "-" * len(head)]
    for channel, per_lang in results.items():
        for lang in ("all", "zh", "en"):
            m = per_lang.get(lang)
            if m is not None:
                lines.append(f"{channel:<8} {lang:<4} {m.n:>4} {m.r1:>6.3f} {m.r3:>6.3f} {m.mrr10:>7.3f}")
    return "\n".join(lines)


@dataclass
class Reliability:
    """Predicted confidence against how often the first entry was right, in equal-width bins."""

    bins: list[tuple[float, float, int, float, float]]  # (low, high, n, mean confidence, share right)
    ece: float  # expected calibration error: |confidence - right| averaged over questions, per bin

    def as_dict(self) -> dict:
        return {"ece": round(self.ece, 4), "bins": [{"low": lo, "high": hi, "n": n, "confidence": round(c, 3),
                                                      "right": round(r, 3)} for lo, hi, n, c, r in self.bins]}


def reliability(judged: list[Judged], n_bins: int = 5) -> Reliability:
    """Every question counts (an uncovered one is never right), as the user sees the confidence."""
    rows, total, ece = [], len(judged), 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = [j for j in judged if lo <= j.ranking.confidence < hi or (b == n_bins - 1 and j.ranking.confidence >= hi)]
        if not inside:
            continue
        conf = sum(j.ranking.confidence for j in inside) / len(inside)
        right = sum(j.right for j in inside) / len(inside)
        rows.append((lo, hi, len(inside), conf, right))
        ece += len(inside) / total * abs(conf - right)
    return Reliability(rows, ece)


def format_real_table(judged: dict[str, list[Judged]]) -> str:
    """Real users' questions, per side of the repository split: levels, then the reliability of `confidence`."""
    head = (f"{'split':<13} {'n':>3} {'cov':>4} {'R@1':>6} {'R@3':>6} | {'answer':>6} {'related':>7} {'none':>5} | "
            f"{'asserted right':>14} {'uncov.asserted':>14} {'cov.none':>8} | {'ECE':>5}")
    lines = [head, "-" * len(head)]
    for side, js in judged.items():
        m = metrics(js)
        levels = {lv: sum(j.ranking.match == lv for j in js) for lv in ("answer", "related", "none")}
        right = sum(j.right for j in js if j.ranking.match == "answer")
        uncovered = [j for j in js if not j.question.gold_ids]
        unc_ans = sum(j.ranking.match == "answer" for j in uncovered)
        cov_none = sum(j.ranking.match == "none" for j in js if j.question.gold_ids)
        asserted = f"{right}/{levels['answer']}"
        unc = f"{unc_ans}/{len(uncovered)}"
        lines.append(f"{'real-' + side:<13} {len(js):>3} {m.n:>4} {m.r1:>6.3f} {m.r3:>6.3f} | {levels['answer']:>6} "
                     f"{levels['related']:>7} {levels['none']:>5} | {asserted:>14} "
                     f"{unc:>14} {cov_none:>8} | {reliability(js).ece:>5.3f}")
    lines.append("reliability (confidence bin: n, mean confidence -> share whose first entry is right):")
    for side, js in judged.items():
        cells = [f"{lo:.1f}-{hi:.1f}: {n}, {c:.2f}->{r:.2f}" for lo, hi, n, c, r in reliability(js).bins]
        lines.append(f"  real-{side:<8} " + "; ".join(cells))
    return "\n".join(lines)
