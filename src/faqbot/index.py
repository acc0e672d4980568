"""The dense index: FAQ vectors in FAISS, saved with a manifest that says what they were built from.

Every item gets, per language it has, one question-only vector ("q" row, embedded the way queries are, since
matching a question against a question is e5's symmetric task) and one vector per answer chunk, each chunk
prefixed with its question ("qa" rows, embedded as passages). An item's score is aggregated from its rows.

Items are stored next to the vectors, so loading needs no corpus parse. `FaqIndex.save` / `FaqIndex.load` write
and read its own three files (as bm25s does for BM25); the folder as a whole (the manifest with every file's
sha256, atomic saves, crash recovery, building) belongs to faqbot.store, which imports this module and never
the other way round.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from faqbot.chunk import DEFAULT_CHUNK_TOKENS, PASSAGE_TOKENS, chunk_answer, clean_for_embedding, cut_to_tokens, entry_passage
from faqbot.schema import LANGS, Corpus, FaqEntry, FaqItem

FORMAT_VERSION = 2  # faqbot.store.FORMAT_VERSION: every file, bm25/ included, has its sha256 in the manifest
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
ROWS = "rows.npy"
ITEMS = "items.json"
DATA_FILES = (VECTORS, ROWS, ITEMS)
INDEX_FILES = (MANIFEST, *DATA_FILES, "bm25")  # top-level entries of a saved folder

KIND_Q, KIND_QA = 0, 1
ROW_DTYPE = np.dtype([("item", "<i4"), ("lang", "i1"), ("kind", "i1"), ("chunk", "<i2"), ("key", "S16")])

# Measured with benchmarks/scale.py (2 shared cores, synthetic vectors around the real ones, k=10):
#   flat: exact; p50 0.7 ms at 10k, 7 ms at 50k, ~0.1-0.5 s at 1M vectors -> fine up to ~50k.
#   HNSW (M=32, efConstruction=80, efSearch=128) at 1M: p50 0.54 ms, recall@10 0.999, 1.72 GB, build 15 min.
#   IVF-Flat (nlist=4000, nprobe=8) at 1M: p50 0.33 ms, recall@10 0.999, 1.49 GB, build 3.5 min; but on
#   harder (noisier) data it lost more recall than HNSW at equal latency, and it needs training -> HNSW.
FLAT_MAX_VECTORS = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
EMBED_BATCH = 32


class IndexLoadError(Exception):
    """The index cannot be used as it is; the message says what to run."""


class MissingIndexError(IndexLoadError):
    pass


class StaleIndexError(IndexLoadError):
    """Built for another model or another version of the corpus."""


class CorruptIndexError(IndexLoadError):
    """Files missing, truncated or not matching the manifest."""


class IndexFileError(Exception):
    """The dense files read but do not fit together (`FaqIndex.load`); faqbot.store says which folder and what to
    run."""


# ------------------------------------------------------------------ items <-> JSON


def _entry_to_json(entry: FaqEntry) -> dict:
    out = dataclasses.asdict(entry)
    out["heading_path"] = list(entry.heading_path)
    return out


def items_to_json(items: list[FaqItem]) -> list[dict]:
    return [
        {
            "id": it.id,
            "version": it.version,
            "component": it.component,
            "category": it.category,
            "entries": {lang: _entry_to_json(e) for lang, e in it.entries.items()},
        }
        for it in items
    ]


_ENTRY_FIELDS = {f.name: f for f in dataclasses.fields(FaqEntry)}


def _entry_from_json(data: dict) -> FaqEntry:
    kwargs = {}
    for name, value in data.items():
        f = _ENTRY_FIELDS.get(name)
        if f is None:
            continue  # written by a newer faqbot with an extra field: ignore
        if str(f.type).startswith("tuple") and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return FaqEntry(**kwargs)


def items_from_json(data: list[dict]) -> list[FaqItem]:
    return [
        FaqItem(
            id=d["id"],
            version=d["version"],
            component=d["component"],
            category=d["category"],
            entries={lang: _entry_from_json(e) for lang, e in d["entries"].items()},
        )
        for d in data
    ]


# ------------------------------------------------------------------ fingerprint, index types


def corpus_fingerprint(root: str | Path) -> str:
    """sha256 over every .md under `root` (sorted relative paths and their bytes), then over the other files the
    source layer reads (tables, faqbot.toml) when there are any: a markdown-only corpus keeps its old value."""
    from faqbot.corpus_config import CONFIG_FILE
    from faqbot.sources import corpus_files

    root = Path(root)
    h = hashlib.sha256()
    pages = sorted(root.rglob("*.md"), key=lambda p: p.relative_to(root).as_posix())
    others = sorted({p for p in corpus_files(root) if p.suffix.lower() != ".md"} | set(root.glob(CONFIG_FILE)),
                    key=lambda p: p.relative_to(root).as_posix())
    for path in pages + others:
        if not path.is_file():
            continue
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix().encode()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class IndexSpec:
    """Which FAISS structure holds the vectors, and its parameters (recorded in the manifest)."""

    type: str  # "flat" | "hnsw"
    params: dict = field(default_factory=dict)


def choose_index_type(n_vectors: int) -> IndexSpec:
    """Exact flat search while it is cheap; HNSW above FLAT_MAX_VECTORS (chosen by benchmarks/scale.py)."""
    if n_vectors < FLAT_MAX_VECTORS:
        return IndexSpec("flat")
    return IndexSpec("hnsw", {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH})


def make_faiss_index(spec: IndexSpec, dim: int, vectors: np.ndarray) -> faiss.Index:
    """A FAISS index of type `spec` holding `vectors` (rows L2-normalised; inner product == cosine)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if spec.type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif spec.type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(spec.params.get("M", HNSW_M)), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(spec.params.get("efConstruction", HNSW_EF_CONSTRUCTION))
        index.hnsw.efSearch = int(spec.params.get("efSearch", HNSW_EF_SEARCH))
    elif spec.type == "ivf":
        n = max(len(vectors), 1)
        nlist = int(spec.params.get("nlist", max(1, min(int(4 * np.sqrt(n)), n // 39))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if len(vectors) > 64 * nlist:  # k-means needs ~40-256 points per centroid; 64 keeps training minutes short
            sample = vectors[np.sort(np.random.default_rng(0).choice(len(vectors), 64 * nlist, replace=False))]
        index.train(sample)
        index.nprobe = int(spec.params.get("nprobe", 32))
        index.make_direct_map()
    else:
        raise ValueError(f"unknown index type {spec.type!r} (flat, hnsw, ivf)")
    if len(vectors):
        index.add(vectors)
    return index


def apply_search_params(index: faiss.Index, spec: IndexSpec) -> None:
    if spec.type == "hnsw" and "efSearch" in spec.params:
        faiss.downcast_index(index).hnsw.efSearch = int(spec.params["efSearch"])
    elif spec.type == "ivf" and "nprobe" in spec.params:
        faiss.extract_index_ivf(index).nprobe = int(spec.params["nprobe"])


def _vector_matrix(index: faiss.Index) -> np.ndarray:
    """All stored vectors as an (n, d) array: a zero-copy view for flat storage, reconstructed otherwise."""
    n, d = index.ntotal, index.d
    if n == 0:
        return np.zeros((0, d), np.float32)
    concrete = faiss.downcast_index(index)
    storage = concrete
    if isinstance(concrete, faiss.IndexHNSW):
        storage = faiss.downcast_index(concrete.storage)
    if isinstance(storage, faiss.IndexFlat):
        return faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)
    return index.reconstruct_n(0, n)


# ------------------------------------------------------------------ the index


@dataclass(frozen=True)
class Aggregation:
    """How an item's score comes from its rows: w_max*max(q, qa) + w_q*q + w_qa*qa, where q / qa are the best
    question-only / question+chunk cosines over the item's languages. Weights summing to 1 keep scores cosine-like."""

    w_max: float = 1.0
    w_q: float = 0.0
    w_qa: float = 0.0


@dataclass
class FaqIndex:
    items: list[FaqItem]
    rows: np.ndarray  # ROW_DTYPE, one per vector, grouped by item in item order
    faiss_index: Any
    manifest: dict
    path: Path | None = None
    _vectors: np.ndarray | None = dataclasses.field(default=None, repr=False)
    _item_start: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        counts = np.bincount(self.rows["item"], minlength=len(self.items)) if len(self.rows) else np.zeros(len(self.items), int)
        self._item_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._vectors = _vector_matrix(self.faiss_index)
        self._is_alt = is_alternate_row(self.rows)  # item_scores can score approved alternates lower

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def n_vectors(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def spec(self) -> IndexSpec:
        info = self.manifest["index"]
        return IndexSpec(info["type"], dict(info.get("params", {})))

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    def item_rows(self, item_idx: int) -> slice:
        return slice(int(self._item_start[item_idx]), int(self._item_start[item_idx + 1]))

    def search_rows(self, query_vec: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row ids) of the `n` nearest vectors, best first."""
        n = min(n, self.n_vectors)
        if n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.ascontiguousarray(np.asarray(query_vec, np.float32).reshape(1, -1))
        scores, ids = self.faiss_index.search(q, n)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def score_items(self, query_vec: np.ndarray, item_indices, agg: Aggregation = Aggregation(),
                    alt_discount: float = 0.0) -> np.ndarray:
        """Exact aggregated scores of the given items (any items, e.g. lexical candidates), same order."""
        q = np.asarray(query_vec, np.float32).reshape(-1)
        out = np.full(len(item_indices), -1.0, np.float32)
        for j, idx in enumerate(item_indices):
            sl = self.item_rows(int(idx))
            if sl.start == sl.stop:
                continue
            sims = self._vectors[sl] @ q - np.float32(alt_discount) * self._is_alt[sl]
            kinds = self.rows["kind"][sl]
            best_q = float(sims[kinds == KIND_Q].max()) if (kinds == KIND_Q).any() else float(sims.max())
            best_qa = float(sims[kinds == KIND_QA].max()) if (kinds == KIND_QA).any() else float(sims.max())
            out[j] = agg.w_max * max(best_q, best_qa) + agg.w_q * best_q + agg.w_qa * best_qa
        return out

    def item_scores(self, query_vec: np.ndarray, agg: Aggregation = Aggregation(), alt_discount: float = 0.0) -> np.ndarray:
        """Aggregated score of every item (len(items),), for fusion with other signals.

        `alt_discount` is taken off the cosine of approved alternate questions (a user's wording counts for a bit
        less than the FAQ's own question). Exact for a flat index (one matrix product). For an approximate index
        only the items among the nearest rows are scored; the rest get -1 (the cosine floor) instead of a full scan."""
        n_items = len(self.items)
        if self.spec.type != "flat":
            out = np.full(n_items, -1.0, np.float32)
            for idx, score in self.search_items(query_vec, k=n_items, agg=agg, fetch=256, alt_discount=alt_discount):
                out[idx] = score
            return out
        q = np.asarray(query_vec, np.float32).reshape(-1)
        out = np.full(n_items, -1.0, np.float32)
        if not len(self.rows):
            return out
        sims = self._vectors @ q
        if alt_discount and self._is_alt.any():
            sims = sims - np.float32(alt_discount) * self._is_alt
        is_q = self.rows["kind"] == KIND_Q
        starts = self._item_start[:-1]
        has_rows = self._item_start[1:] > starts
        safe_starts = np.minimum(starts, len(sims) - 1)
        best_q = np.maximum.reduceat(np.where(is_q, sims, -np.inf), safe_starts)
        best_qa = np.maximum.reduceat(np.where(is_q, -np.inf, sims), safe_starts)
        best_any = np.maximum(best_q, best_qa)
        best_q = np.where(np.isfinite(best_q), best_q, best_any)
        best_qa = np.where(np.isfinite(best_qa), best_qa, best_any)
        scores = agg.w_max * best_any + agg.w_q * best_q + agg.w_qa * best_qa
        out[has_rows] = scores[has_rows]
        return out

    def search_items(
        self, query_vec: np.ndarray, k: int, agg: Aggregation = Aggregation(), fetch: int | None = None,
        alt_discount: float = 0.0,
    ) -> list[tuple[int, float]]:
        """Top-`k` (item index, score): nearest `fetch` rows (default 8*k) name the candidates, which are then
        scored exactly over all their rows."""
        if k <= 0 or not self.n_vectors:
            return []
        _, row_ids = self.search_rows(query_vec, fetch or max(8 * k, 32))
        candidates = list(dict.fromkeys(int(i) for i in self.rows["item"][row_ids]))
        scores = self.score_items(query_vec, candidates, agg, alt_discount)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(candidates[i], float(scores[i])) for i in order]

    def save(self, directory: str | Path) -> None:
        """Write the vectors, the row table and the items into `directory` (created). Not atomic on its own:
        faqbot.store writes the whole folder into a temporary sibling, checksums every file, and swaps it in."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / VECTORS).write_bytes(faiss.serialize_index(self.faiss_index).tobytes())
        with open(directory / ROWS, "wb") as fh:
            np.save(fh, self.rows, allow_pickle=False)
        (directory / ITEMS).write_bytes((json.dumps(items_to_json(self.items), ensure_ascii=False, indent=1) + "\n").encode())

    @classmethod
    def load(cls, directory: str | Path, manifest: dict) -> "FaqIndex":
        """The index saved in `directory`, described by `manifest` (dimension, item count, index type).

        Raises IndexFileError when the files do not fit together, or the reader's own error (faiss RuntimeError,
        numpy / json ValueError ...) on an unreadable file. Use faqbot.store.open_index instead: it checks every
        file against the manifest's sha256 first."""
        directory = Path(directory)
        dim = int(manifest["dim"])
        faiss_index = faiss.read_index(str(directory / VECTORS))
        rows = np.load(directory / ROWS, allow_pickle=False)
        items = items_from_json(json.loads((directory / ITEMS).read_text(encoding="utf-8")))
        if faiss_index.d != dim:
            raise IndexFileError(f"vectors have dimension {faiss_index.d}, the manifest says {dim}")
        if rows.dtype != ROW_DTYPE or rows.ndim != 1 or len(rows) != faiss_index.ntotal:
            raise IndexFileError(f"{len(rows)} rows for {faiss_index.ntotal} vectors")
        if len(rows) and (rows["item"].min() < 0 or rows["item"].max() >= len(items) or (np.diff(rows["item"]) < 0).any()):
            raise IndexFileError("rows point outside the item list or out of order")
        if len(rows) and not np.isin(rows["kind"], (KIND_Q, KIND_QA)).all():
            raise IndexFileError("rows of an unknown kind")
        if manifest.get("counts", {}).get("items", len(items)) != len(items):
            raise IndexFileError(f"{len(items)} items, the manifest says {manifest['counts']['items']}")
        index = cls(items=items, rows=rows, faiss_index=faiss_index, manifest=manifest, path=directory)
        apply_search_params(faiss_index, index.spec)
        return index


# ------------------------------------------------------------------ building


def is_alternate_row(rows: np.ndarray) -> np.ndarray:
    """Which rows hold an approved alternate question (faqbot.store): kind q with chunk > 0; chunk 0 is the
    entry's own question."""
    return (rows["kind"] == KIND_Q) & (rows["chunk"] > 0) if len(rows) else np.zeros(0, bool)


def row_key(model: str, mode: str, text: str) -> bytes:
    """What a row's vector depends on (model, query/passage, text): equal keys let a rebuild reuse a vector."""
    return hashlib.blake2b(f"{model}\0{mode}\0{text}".encode(), digest_size=8).hexdigest().encode()


_row_key = row_key


def entry_signature(entry: FaqEntry) -> tuple[str, str]:
    """What an entry's rows are planned from: its question and answer (with the model and the token limits)."""
    return entry.question, entry.answer


def plan_rows(items: list[FaqItem], embedder, max_tokens: int = DEFAULT_CHUNK_TOKENS,
              passage_tokens: int | None = PASSAGE_TOKENS, known: dict | None = None) -> tuple[np.ndarray, list]:
    """The row table and the text of each row, before embedding. `passage_tokens`: each entry gets one passage,
    its question and the start of its answer (faqbot.chunk.PASSAGE_TOKENS); None: the whole answer in chunks of
    `max_tokens` (twice the build time for no gain on the dev set).

    `known`: entry_signature -> [(kind, chunk, key)] of an older index planned with the same model and limits
    (store.build passes it). An unchanged entry takes its rows from there, with None for texts (their vectors are
    reused by key): the token counting that cuts passages was most of a one-entry rebuild."""
    limit = min(max_tokens, embedder.max_tokens)
    rows: list[tuple] = []
    texts: list = []
    for item_idx, item in enumerate(items):
        for lang in item.langs:
            entry = item.entries[lang]
            lang_no = LANGS.index(lang)
            planned = (known or {}).get(entry_signature(entry))
            if planned:
                for kind, chunk_no, key in planned:
                    rows.append((item_idx, lang_no, kind, chunk_no, key))
                    texts.append(None)
                continue
            question = cut_to_tokens(entry.question.strip(), embedder.token_count, limit)
            rows.append((item_idx, lang_no, KIND_Q, 0, row_key(embedder.name, "query", question)))
            texts.append(question)
            if passage_tokens:
                chunks = [entry_passage(entry.question, clean_for_embedding(entry.answer), embedder.token_count,
                                        min(passage_tokens, limit), limit // 2)]
            else:
                chunks = chunk_answer(entry.question, clean_for_embedding(entry.answer), embedder.token_count, limit)
            for chunk_no, text in enumerate(chunks):
                rows.append((item_idx, lang_no, KIND_QA, chunk_no, row_key(embedder.name, "passage", text)))
                texts.append(text)
    return np.array(rows, dtype=ROW_DTYPE), texts
