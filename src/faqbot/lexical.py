"""BM25 over the items (both languages), for what embeddings blur: error codes, identifiers, rare words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .schema import FaqItem
from .text import tokenize, to_simplified

META = "lexical.json"
QUESTION_WEIGHT = 2  # a question word is stronger evidence than an answer word


def item_text_tokens(item: FaqItem) -> list[str]:
    tokens: list[str] = []
    for entry in item.entries.values():
        tokens += tokenize(entry.question) * QUESTION_WEIGHT
        tokens += tokenize(entry.answer)
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
    def build(cls, items: list[FaqItem], fingerprint: str = "") -> "LexicalIndex":
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([item_text_tokens(it) or [""] for it in items], show_progress=False)
        return cls(bm25, fingerprint)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.bm25.save(str(tmp), show_progress=False)
        (tmp / META).write_text(json.dumps({"fingerprint": self.fingerprint}), encoding="utf-8")
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Raises FileNotFoundError / ValueError when the saved index is missing or unreadable."""
        import bm25s

        directory = Path(directory)
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
        bm25 = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(bm25, meta.get("fingerprint", ""))

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
        words = list(dict.fromkeys(tokenize(to_simplified(query))))
        known = [w for w in words if w in self._vocab]
        weights = [self._idf[self._vocab[w]] if w in self._vocab else self._unknown_idf for w in words]
        unknown = sum(wt for w, wt in zip(words, weights) if w not in self._vocab)
        oov = float(unknown / sum(weights)) if words else 1.0
        if not known:
            return np.zeros(self.n_docs, dtype=np.float32), oov
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32), oov

    @property
    def n_docs(self) -> int:
        return int(self.bm25.scores["num_docs"])
