"""The dense index: FAQ vectors in FAISS, saved with a manifest that says what they were built from.

Every item gets, per language it has, one question-only vector ("q" row, embedded the way queries are, since
matching a question against a question is e5's symmetric task) and one vector per answer chunk, each chunk
prefixed with its question ("qa" rows, embedded as passages). An item's score is aggregated from its rows.

The manifest records the model and a fingerprint of the corpus files so a stale index is refused (or rebuilt)
instead of silently answering from old text, and the sizes/hashes of the saved files so a truncated or
garbled index is reported as such. Items are stored next to the vectors, so loading needs no corpus parse.
Saves go to a temporary directory that replaces the old one at the end: a crash never leaves half an index.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from faqbot import __version__
from faqbot.chunk import DEFAULT_CHUNK_TOKENS, chunk_answer, clean_for_embedding, cut_to_tokens
from faqbot.schema import LANGS, Corpus, FaqEntry, FaqItem

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
ROWS = "rows.npy"
ITEMS = "items.json"
DATA_FILES = (VECTORS, ROWS, ITEMS)
INDEX_FILES = (MANIFEST, *DATA_FILES)

KIND_Q, KIND_QA = 0, 1
KINDS = ("q", "qa")
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
    """sha256 over every .md under `root`: sorted relative paths and their bytes."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.md"), key=lambda p: p.relative_to(root).as_posix()):
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


def _apply_search_params(index: faiss.Index, spec: IndexSpec) -> None:
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

    def score_items(self, query_vec: np.ndarray, item_indices, agg: Aggregation = Aggregation()) -> np.ndarray:
        """Exact aggregated scores of the given items (any items, e.g. lexical candidates), same order."""
        q = np.asarray(query_vec, np.float32).reshape(-1)
        out = np.full(len(item_indices), -1.0, np.float32)
        for j, idx in enumerate(item_indices):
            sl = self.item_rows(int(idx))
            if sl.start == sl.stop:
                continue
            sims = self._vectors[sl] @ q
            kinds = self.rows["kind"][sl]
            best_q = float(sims[kinds == KIND_Q].max()) if (kinds == KIND_Q).any() else float(sims.max())
            best_qa = float(sims[kinds == KIND_QA].max()) if (kinds == KIND_QA).any() else float(sims.max())
            out[j] = agg.w_max * max(best_q, best_qa) + agg.w_q * best_q + agg.w_qa * best_qa
        return out

    def item_scores(self, query_vec: np.ndarray, agg: Aggregation = Aggregation()) -> np.ndarray:
        """Aggregated score of every item (len(items),), for fusion with other signals.

        Exact for a flat index (one matrix product). For an approximate index only the items among the
        nearest rows are scored; the rest get -1 (the cosine floor) instead of a full scan."""
        n_items = len(self.items)
        if self.spec.type != "flat":
            out = np.full(n_items, -1.0, np.float32)
            for idx, score in self.search_items(query_vec, k=n_items, agg=agg, fetch=256):
                out[idx] = score
            return out
        q = np.asarray(query_vec, np.float32).reshape(-1)
        out = np.full(n_items, -1.0, np.float32)
        if not len(self.rows):
            return out
        sims = self._vectors @ q
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
        self, query_vec: np.ndarray, k: int, agg: Aggregation = Aggregation(), fetch: int | None = None
    ) -> list[tuple[int, float]]:
        """Top-`k` (item index, score): nearest `fetch` rows (default 8*k) name the candidates, which are then
        scored exactly over all their rows."""
        if k <= 0 or not self.n_vectors:
            return []
        _, row_ids = self.search_rows(query_vec, fetch or max(8 * k, 32))
        candidates = list(dict.fromkeys(int(i) for i in self.rows["item"][row_ids]))
        scores = self.score_items(query_vec, candidates, agg)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(candidates[i], float(scores[i])) for i in order]

    def stale_reason(self, model: str | None = None, corpus_dir: str | Path | None = None) -> str | None:
        """Why this index does not match `model` / the corpus in `corpus_dir`, or None when it does."""
        if model is not None and model != self.model:
            return f"the index was built for model {self.model!r}, not {model!r}"
        if corpus_dir is not None and Path(corpus_dir).is_dir():
            if corpus_fingerprint(corpus_dir) != self.manifest.get("corpus_fingerprint"):
                return f"the corpus in {corpus_dir} changed since the index was built"
        return None


# ------------------------------------------------------------------ building


def _row_key(model: str, mode: str, text: str) -> bytes:
    return hashlib.blake2b(f"{model}\0{mode}\0{text}".encode(), digest_size=8).hexdigest().encode()


def plan_rows(items: list[FaqItem], embedder, max_tokens: int = DEFAULT_CHUNK_TOKENS) -> tuple[np.ndarray, list[str]]:
    """The row table and the text of each row, before embedding."""
    limit = min(max_tokens, embedder.max_tokens)
    rows: list[tuple] = []
    texts: list[str] = []
    for item_idx, item in enumerate(items):
        for lang in item.langs:
            entry = item.entries[lang]
            lang_no = LANGS.index(lang)
            question = cut_to_tokens(entry.question.strip(), embedder.token_count, limit)
            rows.append((item_idx, lang_no, KIND_Q, 0, _row_key(embedder.name, "query", question)))
            texts.append(question)
            chunks = chunk_answer(entry.question, clean_for_embedding(entry.answer), embedder.token_count, limit)
            for chunk_no, text in enumerate(chunks):
                rows.append((item_idx, lang_no, KIND_QA, chunk_no, _row_key(embedder.name, "passage", text)))
                texts.append(text)
    return np.array(rows, dtype=ROW_DTYPE), texts


def build_index(
    corpus: Corpus,
    embedder,
    out_dir: str | Path | None = None,
    progress: bool = True,
    reuse: FaqIndex | bool = True,
    spec: IndexSpec | None = None,
    max_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> FaqIndex:
    """Embed every item of `corpus` and (when `out_dir` is given) save atomically.

    `reuse`: an older index (True: the one already in `out_dir`, if readable); rows whose exact text it embedded
    with the same model are copied from it, so a rebuild after editing one page embeds only what changed."""
    started = time.perf_counter()
    if reuse is True:
        reuse = None
        if out_dir is not None:
            try:
                reuse = read_index(out_dir)
            except IndexLoadError:
                pass
    elif reuse is False:
        reuse = None
    root = Path(corpus.root) if corpus.root else None
    fingerprint = corpus_fingerprint(root) if root is not None and root.is_dir() else None
    items = list(corpus.items)
    rows, texts = plan_rows(items, embedder, max_tokens)
    vectors = np.zeros((len(rows), embedder.dim), np.float32)
    todo = np.ones(len(rows), bool)
    if reuse is not None and reuse.model == embedder.name and reuse.dim == embedder.dim and len(reuse.rows):
        known = {key: i for i, key in enumerate(reuse.rows["key"])}
        for i, key in enumerate(rows["key"]):
            j = known.get(key)
            if j is not None:
                vectors[i] = reuse.vectors[j]
                todo[i] = False
    todo_ids = np.flatnonzero(todo)
    with tqdm(total=len(todo_ids), unit="vec", desc="embedding", disable=not progress) as bar:
        for kind, embed in ((KIND_Q, embedder.embed_symmetric), (KIND_QA, embedder.embed_passages)):
            ids = todo_ids[rows["kind"][todo_ids] == kind]
            for start in range(0, len(ids), EMBED_BATCH):
                batch = ids[start : start + EMBED_BATCH]
                vectors[batch] = embed([texts[i] for i in batch])
                bar.update(len(batch))
    spec = spec or choose_index_type(len(rows))
    faiss_index = make_faiss_index(spec, embedder.dim, vectors)
    seconds = time.perf_counter() - started
    manifest = {
        "format_version": FORMAT_VERSION,
        "faqbot_version": __version__,
        "model": embedder.name,
        "dim": int(embedder.dim),
        "corpus_fingerprint": fingerprint,
        "counts": {
            "items": len(items),
            "entries": sum(len(it.entries) for it in items),
            "vectors": int(len(rows)),
            "q_vectors": int((rows["kind"] == KIND_Q).sum()) if len(rows) else 0,
            "qa_vectors": int((rows["kind"] == KIND_QA).sum()) if len(rows) else 0,
            "embedded": int(len(todo_ids)),
            "reused": int(len(rows) - len(todo_ids)),
        },
        "index": {"type": spec.type, "params": dict(spec.params), "metric": "inner_product"},
        "rows": {"q": "question alone, embedded as a query", "qa": "question + answer chunk, as a passage"},
        "chunk_max_tokens": min(max_tokens, embedder.max_tokens),
        "build_seconds": round(seconds, 2),
        "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    index = FaqIndex(items=items, rows=rows, faiss_index=faiss_index, manifest=manifest)
    if out_dir is not None:
        save_index(index, out_dir)
    return index


# ------------------------------------------------------------------ saving / loading


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_files(index: FaqIndex, directory: Path) -> dict:
    faiss.write_index(index.faiss_index, str(directory / VECTORS))
    with open(directory / ROWS, "wb") as fh:
        np.save(fh, index.rows, allow_pickle=False)
    with open(directory / ITEMS, "w", encoding="utf-8") as fh:
        json.dump(items_to_json(index.items), fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    manifest = dict(index.manifest)
    manifest["files"] = {
        name: {"bytes": (directory / name).stat().st_size, "sha256": _sha256(directory / name)} for name in DATA_FILES
    }
    with open(directory / MANIFEST, "w", encoding="utf-8") as fh:  # written last: marks the set complete
        json.dump(manifest, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
    return manifest


def save_index(index: FaqIndex, out_dir: str | Path) -> Path:
    """Write into a fresh sibling directory, then swap it in; other files already in `out_dir` are kept."""
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise IndexLoadError(f"cannot write the index to {out_dir} ({exc}); set FAQBOT_INDEX to a writable directory") from None
    try:
        os.chmod(tmp, 0o755)
        manifest = _write_files(index, tmp)
        if out_dir.exists():
            for extra in out_dir.iterdir():
                if extra.name not in INDEX_FILES and not (tmp / extra.name).exists():
                    (shutil.copytree if extra.is_dir() else shutil.copy2)(extra, tmp / extra.name)
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rmdir(old)
            try:
                os.rename(out_dir, old)
            except OSError:  # out_dir busy (mount point, cwd elsewhere): replace file by file, manifest last
                for name in (*DATA_FILES, MANIFEST):
                    os.replace(tmp / name, out_dir / name)
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.rename(tmp, out_dir)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise IndexLoadError(f"cannot write the index to {out_dir} ({exc}); set FAQBOT_INDEX to a writable directory") from None
        raise
    index.manifest = manifest
    index.path = out_dir
    return out_dir


def read_index(index_dir: str | Path) -> FaqIndex:
    """Open a saved index, checking every file against the manifest; no staleness check here."""
    index_dir = Path(index_dir)
    rebuild_hint = "run `faqbot index` to rebuild it"
    if not (index_dir / MANIFEST).exists():
        if index_dir.is_dir() and any((index_dir / name).exists() for name in DATA_FILES):
            raise CorruptIndexError(f"the index in {index_dir} is incomplete (no {MANIFEST}); {rebuild_hint}")
        raise MissingIndexError(f"no index in {index_dir}; run `faqbot index` to build it")

    def corrupt(why: str) -> CorruptIndexError:
        return CorruptIndexError(f"the index in {index_dir} is damaged ({why}); {rebuild_hint}")

    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        dim = int(manifest["dim"])
        files = manifest["files"]
        manifest["model"], manifest["index"]["type"]  # noqa: B018 - required keys
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise corrupt(f"unreadable {MANIFEST}: {type(exc).__name__}: {exc}") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StaleIndexError(
            f"the index in {index_dir} has format {manifest.get('format_version')!r}, this faqbot reads "
            f"{FORMAT_VERSION}; {rebuild_hint}"
        )
    for name in DATA_FILES:
        path = index_dir / name
        if not path.is_file():
            raise corrupt(f"{name} is missing")
        expected = files.get(name, {})
        if path.stat().st_size != expected.get("bytes"):
            raise corrupt(f"{name} has {path.stat().st_size} bytes, the manifest says {expected.get('bytes')}")
        if _sha256(path) != expected.get("sha256"):
            raise corrupt(f"{name} does not match its checksum")
    try:
        faiss_index = faiss.read_index(str(index_dir / VECTORS))
        rows = np.load(index_dir / ROWS, allow_pickle=False)
        items = items_from_json(json.loads((index_dir / ITEMS).read_text(encoding="utf-8")))
    except Exception as exc:  # faiss raises RuntimeError, numpy ValueError, json ValueError, ...
        raise corrupt(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if faiss_index.d != dim:
        raise corrupt(f"vectors have dimension {faiss_index.d}, the manifest says {dim}")
    if rows.dtype != ROW_DTYPE or len(rows) != faiss_index.ntotal:
        raise corrupt(f"{len(rows)} rows for {faiss_index.ntotal} vectors")
    if len(rows) and (rows["item"].min() < 0 or rows["item"].max() >= len(items) or (np.diff(rows["item"]) < 0).any()):
        raise corrupt("rows point outside the item list or out of order")
    index = FaqIndex(items=items, rows=rows, faiss_index=faiss_index, manifest=manifest, path=index_dir)
    _apply_search_params(faiss_index, index.spec)
    return index


def load_index(
    index_dir: str | Path,
    embedder=None,
    corpus_dir: str | Path | None = None,
    rebuild: bool | None = None,
    progress: bool = False,
) -> FaqIndex:
    """The index in `index_dir`, checked against the model and the corpus in `corpus_dir`.

    `embedder`: an Embedder or a model id (None: accept whatever model the index was built with).
    rebuild=None or True: build a missing index and rebuild a stale or damaged one; False: never build, raise
    MissingIndexError / StaleIndexError / CorruptIndexError, whose message says what to run. A rebuild reuses
    the vectors of unchanged text from the old index, so editing one page costs seconds, not minutes."""
    index_dir = Path(index_dir)
    model = embedder if isinstance(embedder, str) or embedder is None else embedder.name
    allowed = rebuild is not False
    old: FaqIndex | None = None
    try:
        index = read_index(index_dir)
    except IndexLoadError:
        if not allowed:
            raise
    else:
        reason = index.stale_reason(model=model, corpus_dir=corpus_dir)
        if reason is None:
            return index
        if not allowed:
            raise StaleIndexError(f"{reason}; run `faqbot index` to rebuild the index in {index_dir}")
        old = index

    if corpus_dir is None or not Path(corpus_dir).is_dir():
        raise MissingIndexError(f"cannot build the index in {index_dir}: no corpus folder at {corpus_dir}; set FAQBOT_CORPUS")
    from faqbot.corpus import load_corpus
    from faqbot.embed import DEFAULT_MODEL, load_embedder

    if embedder is None or isinstance(embedder, str):
        embedder = load_embedder(model or (old.model if old is not None else DEFAULT_MODEL))
    corpus = load_corpus(corpus_dir)
    return build_index(corpus, embedder, index_dir, progress=progress, reuse=old)


def index_status(index_dir: str | Path, model: str | None = None, corpus_dir: str | Path | None = None) -> tuple[bool, str]:
    """(up to date?, one line saying so or what is wrong) -- for `faqbot index --check`."""
    try:
        index = read_index(index_dir)
    except IndexLoadError as exc:
        return False, str(exc)
    reason = index.stale_reason(model=model, corpus_dir=corpus_dir)
    if reason is not None:
        return False, f"{reason}; run `faqbot index` to rebuild the index in {index_dir}"
    c = index.manifest["counts"]
    return True, (
        f"index in {index_dir} is up to date: {c['items']} items, {c['vectors']} vectors, model {index.model}, "
        f"{index.spec.type} index, built {index.manifest.get('built_at', '?')}"
    )
