"""BM25 over the items (both languages), for what embeddings blur: error codes, identifiers, rare words."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .schema import FaqItem
from .text import tokenize, to_simplified

META = "lexical.json"
QUESTION_WEIGHT = 2  # a question word is stronger evidence than an answer word


@lru_cache(maxsize=256)
def _query_words(query: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tokenize(to_simplified(query))))


def query_words(query: str) -> list[str]:
    """A query's distinct tokens, once: ranking reads them twice (BM25 evidence, then the first entry's coverage)."""
    return list(_query_words(query))


def item_text_tokens(item: FaqItem, extra_questions: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The item's words; `extra_questions` (approved alternate wordings) count as much as its own questions."""
    tokens: list[str] = []
    for entry in item.entries.values():
        tokens += tokenize(entry.question) * QUESTION_WEIGHT
        tokens += tokenize(entry.answer)
    for question in extra_questions:
        tokens += tokenize(to_simplified(question)) * QUESTION_WEIGHT
    return tokens


class LexicalIndex:
    """A bm25s index whose document i is item i of the dense index."""

    def __init__(self, bm25, fingerprint: str = ""):
        self.bm25 = bm25
        self.fingerprint = fingerprint
        self._vocab = bm25.vocab_dict
        indptr = np.asarray(bm25.scores["indptr"])
        n = self.n_docs
        df = np.diff(indptr).astype(np.float64)  # documents containing each vocabulary token
        self._idf = np.log1p((n - df + 0.5) / (df + 0.5))
        self._unknown_idf = float(np.log1p((n + 0.5) / 0.5))  # a word no FAQ entry contains

    @classmethod
    def build(
        cls, items: list[FaqItem], fingerprint: str = "", extra_questions: dict[int, list[str]] | None = None
    ) -> "LexicalIndex":
        """`extra_questions`: item index -> alternate questions indexed with that item."""
        import bm25s

        extra_questions = extra_questions or {}
        bm25 = bm25s.BM25()
        docs = [item_text_tokens(it, extra_questions.get(i, ())) or [""] for i, it in enumerate(items)]
        bm25.index(docs, show_progress=False)
        return cls(bm25, fingerprint)

    def save(self, directory: Path) -> None:
        """Write the files into `directory` (created). Not atomic on its own: faqbot.store writes the whole index
        folder into a temporary sibling, checksums every file, and swaps it in."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(directory), show_progress=False)
        (directory / META).write_text(json.dumps({"fingerprint": self.fingerprint}), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Raises FileNotFoundError / ValueError when the saved index is missing or unreadable.

        Use faqbot.store.open_index instead: it checks every file against the manifest's sha256 first."""
        import bm25s

        directory = Path(directory)
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
        bm25 = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(bm25, meta.get("fingerprint", ""))

    def check(self) -> str | None:
        """Why the loaded arrays are inconsistent (None when they are fine): a last guard behind the checksums."""
        scores = self.bm25.scores
        try:
            indptr = np.asarray(scores["indptr"])
            indices = np.asarray(scores["indices"])
            data = np.asarray(scores["data"])
        except (KeyError, TypeError):
            return "BM25 arrays missing"
        vocab = self._vocab if isinstance(self._vocab, dict) else {}
        n_lists = len(indptr) - 1
        if indptr.ndim != 1 or n_lists < 0:
            return "BM25 postings index is malformed"
        if len(indices) != len(data) or int(indptr[-1]) != len(indices):
            return "BM25 postings have inconsistent lengths"
        if n_lists and (np.diff(indptr) < 0).any():
            return "BM25 postings are out of order"
        ids = sorted(int(v) for v in vocab.values())
        if ids != list(range(len(ids))):
            return "BM25 vocabulary ids are not 0..n-1"
        # bm25s appends "" (no postings) as the last id; every real word must have a postings list
        if any(int(i) >= n_lists for w, i in vocab.items() if w != ""):
            return f"BM25 vocabulary has {len(vocab)} words for {n_lists} postings lists"
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= self.n_docs):
            return "BM25 postings point outside the documents"
        if len(data) and not np.isfinite(data).all():
            return "BM25 scores are not finite"
        return None

    def query_tokens(self, query: str) -> list[str]:
        return [t for t in tokenize(to_simplified(query)) if t in self._vocab]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every item for the query (zeros when no query word is in the corpus)."""
        return self.evidence(query)[0]

    def evidence(self, query: str) -> tuple[np.ndarray, float]:
        """(BM25 score of every item, share of the query's weight in words no FAQ entry contains).

        The second figure is IDF-weighted: a question about "LoRA" or "Excel" leans on words the FAQ never
        uses, which says more about being off-topic than any similarity score can.
        """
        words = query_words(query)
        known = [w for w in words if w in self._vocab]
        oov = self._oov(words)
        if not known:
            return np.zeros(self.n_docs, dtype=np.float32), oov
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32), oov

    def oov(self, query: str) -> float:
        """The second figure of `evidence` alone, without scoring the documents (the query's words are
        tokenized once and cached, so a follow-up that `rank` just read costs no second pass)."""
        return self._oov(query_words(query))

    def _oov(self, words: list[str]) -> float:
        weights = [self._idf[self._vocab[w]] if w in self._vocab else self._unknown_idf for w in words]
        unknown = sum(wt for w, wt in zip(words, weights) if w not in self._vocab)
        return float(unknown / sum(weights)) if words else 1.0

    def coverage(self, query: str, doc: int) -> float:
        """IDF-weighted share of the query's words that item `doc` contains.

        An entry that answers a question mentions most of what it asks about; a near miss ("gradient
        accumulation", "LoRA") lands on an entry that lacks the words that make the question specific."""
        words = query_words(query)
        if not words:
            return 0.0
        scores = self.bm25.scores
        indptr, indices = scores["indptr"], scores["indices"]
        total = found = 0.0
        for w in words:
            t = self._vocab.get(w)
            weight = self._unknown_idf if t is None else float(self._idf[t])
            total += weight
            if t is not None:
                lo, hi = int(indptr[t]), int(indptr[t + 1])
                if (indices[lo:hi] == doc).any():  # the documents containing word t
                    found += weight
        return found / total if total else 0.0

    @property
    def n_docs(self) -> int:
        return int(self.bm25.scores["num_docs"])
