"""Dense index: chunking, the shipped index, save/load, stale and damaged indexes, search and scale."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from faqbot.chunk import (
    DEFAULT_CHUNK_TOKENS, PASSAGE_TOKENS, chunk_answer, clean_for_embedding, code_line_ranges, cut_to_tokens, entry_passage,
)
from faqbot.alternates import alternates_path, read_alternates_bytes
from faqbot.config import DEFAULT_MODEL
from faqbot.index import (
    INDEX_FILES,
    KIND_Q,
    KIND_QA,
    Aggregation,
    CorruptIndexError,
    IndexSpec,
    MissingIndexError,
    StaleIndexError,
    choose_index_type,
    corpus_fingerprint,
    items_from_json,
    items_to_json,
    make_faiss_index,
)
from faqbot.store import build_index, index_status, load_index, read_index
from faqbot.schema import LANGS

REPO_ROOT = Path(__file__).resolve().parents[1]
FENCE_LINE = re.compile(r"^\s*(`{3,}|~{3,})")
# a few small page pairs: big enough to have bilingual items, small enough to embed in seconds
SMALL_PAGES = [
    "mindspore-r1.1/docs/faq/source_en/programming_language_extensions.md",
    "mindspore-r1.1/docs/faq/source_zh_cn/programming_language_extensions.md",
    "mindspore-r1.1/docs/faq/source_en/mindspore_lite.md",
    "mindspore-r1.1/docs/faq/source_zh_cn/mindspore_lite.md",
]


def _fence_lines(text: str) -> int:
    return sum(1 for line in text.split("\n") if FENCE_LINE.match(line))


# ------------------------------------------------------------------ chunking


@pytest.fixture(scope="module")
def corpus_chunks(corpus, embedder):
    return [
        (entry, clean_for_embedding(entry.answer), chunk_answer(entry.question, clean_for_embedding(entry.answer), embedder.token_count))
        for entry in corpus.entries
    ]


def test_every_chunk_fits_the_window_and_starts_with_its_question(corpus_chunks, embedder):
    assert any(len(chunks) > 1 for _, _, chunks in corpus_chunks)  # the corpus has answers that need cutting
    for entry, _, chunks in corpus_chunks:
        for chunk in chunks:
            assert embedder.token_count(chunk) <= DEFAULT_CHUNK_TOKENS, entry.id
            assert chunk.startswith(entry.question.strip()), entry.id


def test_chunks_keep_code_blocks_whole(corpus_chunks, embedder):
    checked = 0
    for entry, answer, chunks in corpus_chunks:
        lines = answer.strip("\n").split("\n")
        for start, end in code_line_ranges(answer.strip("\n")):
            block = "\n".join(lines[start:end])
            if embedder.token_count(entry.question + "\n\n" + block) <= DEFAULT_CHUNK_TOKENS:
                assert any(block in chunk for chunk in chunks), (entry.id, block[:80])
                checked += 1
        for chunk in chunks:
            assert _fence_lines(chunk) % 2 == 0, (entry.id, chunk[:200])  # no piece opens a fence it doesn't close
    assert checked > 100


def test_chunks_lose_no_answer_line(corpus_chunks):
    for entry, answer, chunks in corpus_chunks:
        joined = "\n".join(chunks)
        for line in answer.split("\n"):
            if line.strip() and not FENCE_LINE.match(line):
                assert line in joined, (entry.id, line)


def test_code_block_longer_than_the_window_is_split_into_closed_fences(embedder):
    code = "\n".join(f"    x_{i} = ops.matmul(weight_{i}, inputs) + bias_{i}  # layer {i}" for i in range(300))
    answer = f"Run the following script:\n\n```python\n{code}\n```\n\nThen check the log."
    chunks = chunk_answer("Why is my network slow?", answer, embedder.token_count)
    assert len(chunks) > 3
    for chunk in chunks:
        assert embedder.token_count(chunk) <= DEFAULT_CHUNK_TOKENS
        assert _fence_lines(chunk) % 2 == 0
    body = "\n".join(chunks)
    assert all(f"x_{i} = " in body for i in range(300))


def test_empty_answer_gives_the_question_alone(embedder):
    assert chunk_answer("What is MindSpore?", "", embedder.token_count) == ["What is MindSpore?"]


def test_cut_to_tokens_keeps_the_longest_prefix_that_fits():
    """The guessing search must land on the same cut as counting every prefix."""
    words = lambda text: len(text.split())  # noqa: E731 - a monotone stand-in counter
    text = "alpha beta  gamma delta epsilon zeta eta theta iota kappa " * 30
    for limit in (0, 1, 2, 7, 50, 299, 300, 301):
        cut = cut_to_tokens(text, words, limit)
        longest = max((text[:i] for i in range(min(len(text), limit * 8) + 1) if words(text[:i]) <= limit), key=len)
        assert cut == longest, limit


def test_entry_passage_is_the_question_and_the_start_of_its_answer(corpus, embedder):
    long = [e for e in corpus.entries if embedder.token_count(e.question + "\n\n" + clean_for_embedding(e.answer)) > 300]
    assert len(long) > 20
    for entry in long[:20]:
        answer = clean_for_embedding(entry.answer)
        passage = entry_passage(entry.question, answer, embedder.token_count)
        question, _, start = passage.partition("\n\n")
        assert question == entry.question.strip() and answer.strip("\n").startswith(start)
        assert PASSAGE_TOKENS - 8 <= embedder.token_count(passage) <= PASSAGE_TOKENS  # cut near the limit
    assert entry_passage("What is MindSpore?", "", embedder.token_count) == "What is MindSpore?"


def test_whole_answers_can_still_be_indexed_in_chunks(corpus, embedder):
    from faqbot.index import plan_rows

    long = next(i for i, it in enumerate(corpus.items) if any(
        len(chunk_answer(e.question, clean_for_embedding(e.answer), embedder.token_count)) > 1 for e in it.entries.values()))
    item = corpus.items[long]
    rows, texts = plan_rows([item], embedder, passage_tokens=None)
    expected = [t for lang in item.langs for t in chunk_answer(
        item.entries[lang].question, clean_for_embedding(item.entries[lang].answer), embedder.token_count)]
    assert [t for r, t in zip(rows, texts) if r["kind"] == KIND_QA] == expected and len(expected) > len(item.langs)


# ------------------------------------------------------------------ the shipped index


def test_index_matches_the_corpus_it_was_built_from(shipped_index, corpus, corpus_dir, real_index_dir):
    assert shipped_index.manifest["corpus_fingerprint"] == corpus_fingerprint(corpus_dir)
    assert shipped_index.items == corpus.items
    assert shipped_index.model == DEFAULT_MODEL
    assert index_status(real_index_dir, DEFAULT_MODEL, corpus_dir)[0]


def test_shipped_manifest_describes_the_index(shipped_index, corpus, corpus_dir):
    m = shipped_index.manifest
    assert m["dim"] == 384 == shipped_index.faiss_index.d
    assert m["counts"]["items"] == len(corpus.items)
    assert m["counts"]["entries"] == len(corpus.entries)
    assert m["counts"]["vectors"] == shipped_index.n_vectors == len(shipped_index.rows)
    assert m["index"]["type"] == choose_index_type(shipped_index.n_vectors).type == "flat"
    assert m["build_seconds"] >= 0 and m["built_at"]
    assert m["passage_max_tokens"] == PASSAGE_TOKENS and m["chunk_max_tokens"] == DEFAULT_CHUNK_TOKENS
    assert m["faqbot_version"] and m["format_version"] == 2
    alternates = read_alternates_bytes(alternates_path(corpus_dir))  # none: b""
    assert m["alternates"]["sha256"] == hashlib.sha256(alternates).hexdigest()
    np.testing.assert_allclose(np.linalg.norm(shipped_index.vectors, axis=1), 1.0, atol=1e-4)


def test_every_item_has_a_question_row_and_one_passage_per_language(shipped_index):
    rows = shipped_index.rows
    for idx, item in enumerate(shipped_index.items):
        mine = rows[shipped_index.item_rows(idx)]
        assert (mine["item"] == idx).all()
        for lang in item.langs:
            of_lang = mine[mine["lang"] == LANGS.index(lang)]
            assert ((of_lang["kind"] == KIND_Q) & (of_lang["chunk"] == 0)).sum() == 1  # chunk > 0: alternates
            assert list(of_lang["chunk"][of_lang["kind"] == KIND_QA]) == [0]  # one passage: question + answer start


def _question_vector(index, idx, lang):
    """The item's question-only row: the question embedded exactly as a query would be."""
    sl = index.item_rows(idx)
    mine = index.rows[sl]
    row = np.flatnonzero((mine["lang"] == LANGS.index(lang)) & (mine["kind"] == KIND_Q))[0]
    return index.vectors[sl.start + row]


def test_question_rows_are_the_questions_embedded_as_queries(shipped_index, embedder):
    for idx in range(0, len(shipped_index.items), 60):
        for lang, entry in shipped_index.items[idx].entries.items():
            np.testing.assert_allclose(_question_vector(shipped_index, idx, lang), embedder.embed_query(entry.question), atol=2e-3)


def test_each_item_is_found_first_by_its_own_question(shipped_index):
    """Checks the row -> item mapping and the aggregation over every item and language."""
    for idx, item in enumerate(shipped_index.items):
        for lang in item.langs:
            top3 = dict(shipped_index.search_items(_question_vector(shipped_index, idx, lang), k=3))
            assert top3.get(idx, 0) > 0.99  # a near-identical question elsewhere may tie, hence top 3
            assert top3[idx] == pytest.approx(max(top3.values()), abs=5e-3)


def test_zh_question_finds_its_twin_among_english_rows(shipped_index):
    """Cross-language: scoring only English rows, a Chinese question ranks its twin first for most items."""
    bilingual = [i for i, it in enumerate(shipped_index.items) if it.bilingual]
    en_rows = shipped_index.rows["lang"] == LANGS.index("en")
    hits = 0
    for idx in bilingual:
        sims = np.where(en_rows, shipped_index.vectors @ _question_vector(shipped_index, idx, "zh"), -1)
        hits += int(shipped_index.rows["item"][int(np.argmax(sims))] == idx)
    assert hits / len(bilingual) >= 0.7


def test_item_scores_aggregate_each_items_rows(shipped_index, embedder):
    q = embedder.embed_query("训练时出现内存不足怎么办")
    sims = shipped_index.vectors @ q
    agg = Aggregation(w_max=0.5, w_q=0.2, w_qa=0.3)
    default = shipped_index.item_scores(q)
    mixed = shipped_index.item_scores(q, agg)
    for idx in range(0, len(shipped_index.items), 7):
        sl = shipped_index.item_rows(idx)
        kinds = shipped_index.rows["kind"][sl]
        best_q, best_qa = sims[sl][kinds == KIND_Q].max(), sims[sl][kinds == KIND_QA].max()
        assert default[idx] == pytest.approx(max(best_q, best_qa), abs=1e-5)
        assert mixed[idx] == pytest.approx(0.5 * max(best_q, best_qa) + 0.2 * best_q + 0.3 * best_qa, abs=1e-5)
    top = shipped_index.search_items(q, k=5, agg=agg)
    assert [i for i, _ in top] == list(np.argsort(-mixed, kind="stable")[:5])
    assert [s for _, s in top] == pytest.approx(sorted(mixed, reverse=True)[:5], abs=1e-5)


# ------------------------------------------------------------------ serialisation


def test_items_survive_a_json_round_trip(corpus):
    data = json.loads(json.dumps(items_to_json(corpus.items), ensure_ascii=False))
    assert items_from_json(data) == corpus.items


def test_save_and_load_round_trip(shipped_index, tmp_path):
    from faqbot.store import save_index

    save_index(shipped_index_copy := _clone(shipped_index), tmp_path / "idx")
    loaded = read_index(tmp_path / "idx")
    assert loaded.items == shipped_index.items
    assert (loaded.rows == shipped_index.rows).all()
    np.testing.assert_array_equal(loaded.vectors, shipped_index.vectors)
    assert loaded.manifest == shipped_index_copy.manifest
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == sorted(INDEX_FILES)


def _clone(index):
    from faqbot.index import FaqIndex

    return FaqIndex(items=index.items, rows=index.rows.copy(), faiss_index=faiss.clone_index(index.faiss_index),
                    manifest={k: v for k, v in index.manifest.items() if k != "files"})


def test_rebuild_reuses_vectors_of_unchanged_text(shipped_index, corpus, tmp_path):
    rebuilt = build_index(corpus, _NoEmbedding(), tmp_path / "idx", progress=False, reuse=shipped_index)
    assert rebuilt.manifest["counts"]["embedded"] == 0
    np.testing.assert_array_equal(rebuilt.vectors, shipped_index.vectors)


class _NoEmbedding:
    """Stands in for the default model when every vector must come from the old index."""

    def __init__(self):
        from faqbot.embed import load_embedder

        self._real = load_embedder(DEFAULT_MODEL)
        self.name, self.dim, self.max_tokens = self._real.name, self._real.dim, self._real.max_tokens
        self.token_count = self._real.token_count

    def embed_passages(self, texts):
        raise AssertionError(f"embedded {len(texts)} passages that the old index already had")

    embed_symmetric = embed_passages


def test_embedding_a_few_items_reproduces_the_shipped_vectors(shipped_index, embedder, corpus):
    from faqbot.schema import Corpus

    by_size = sorted(range(len(corpus.items)), key=lambda i: sum(len(e.answer) for e in corpus.items[i].entries.values()))
    picked = sorted(by_size[:3] + by_size[len(by_size) // 2 : len(by_size) // 2 + 1])
    small = build_index(Corpus(root="", items=[corpus.items[i] for i in picked]), embedder, None, progress=False)
    for j, idx in enumerate(picked):
        ours = small.vectors[small.item_rows(j)]
        shipped = shipped_index.vectors[shipped_index.item_rows(idx)]
        np.testing.assert_allclose(ours, shipped, atol=2e-3)


# ------------------------------------------------------------------ stale, missing, damaged


@pytest.fixture
def corpus_and_index_copy(tmp_path, corpus_dir, real_index_dir):
    corpus_copy = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus_copy)
    index_copy = tmp_path / "index"
    shutil.copytree(real_index_dir, index_copy, ignore=shutil.ignore_patterns("models", "README.md"))
    return corpus_copy, index_copy


def test_edited_corpus_is_stale_and_rebuilt_only_when_allowed(corpus_and_index_copy, shipped_index):
    corpus_copy, index_copy = corpus_and_index_copy
    entry = next(e for it in shipped_index.items for e in it.entries.values() if e.lang == "en" and len(e.answer) > 200)
    page = corpus_copy / entry.page
    first_line = next(line for line in entry.answer.split("\n") if len(line) > 40 and "`" not in line)
    text = page.read_text(encoding="utf-8")
    assert first_line in text
    page.write_text(text.replace(first_line, first_line + " Restart the frobnicator daemon first.", 1), encoding="utf-8")

    with pytest.raises(StaleIndexError) as err:
        load_index(index_copy, DEFAULT_MODEL, corpus_copy, rebuild=False)
    assert "faqbot index" in str(err.value) and "corpus" in str(err.value)
    assert not index_status(index_copy, DEFAULT_MODEL, corpus_copy)[0]

    rebuilt = load_index(index_copy, DEFAULT_MODEL, corpus_copy, rebuild=True, progress=False)  # explicit
    assert rebuilt.manifest["corpus_fingerprint"] == corpus_fingerprint(corpus_copy)
    assert 0 < rebuilt.manifest["counts"]["embedded"] <= 20  # only the edited entry's rows
    assert any("frobnicator" in e.answer for it in rebuilt.items for e in it.entries.values())
    assert read_index(index_copy).manifest == rebuilt.manifest
    assert load_index(index_copy, DEFAULT_MODEL, corpus_copy, rebuild=False).manifest == rebuilt.manifest


def test_index_built_for_another_model_is_refused(corpus_dir, real_index_dir):
    with pytest.raises(StaleIndexError) as err:
        load_index(real_index_dir, "st:/models/other", corpus_dir, rebuild=False)
    assert DEFAULT_MODEL in str(err.value) and "st:/models/other" in str(err.value)
    assert "faqbot index" in str(err.value)


@pytest.fixture(scope="module")
def small_corpus_dir(tmp_path_factory, corpus_dir):
    root = tmp_path_factory.mktemp("small") / "corpus"
    for rel in SMALL_PAGES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus_dir / rel, root / rel)
    return root


@pytest.fixture(scope="module")
def small_index_dir(small_corpus_dir, tmp_path_factory):
    """Built through the 'missing index' path of load_index."""
    index_dir = tmp_path_factory.mktemp("small-index") / "index"
    with pytest.raises(MissingIndexError) as err:
        load_index(index_dir, DEFAULT_MODEL, small_corpus_dir, rebuild=False)
    assert "faqbot index" in str(err.value)
    with pytest.raises(MissingIndexError):
        load_index(index_dir, DEFAULT_MODEL, small_corpus_dir)  # loading never builds unless asked to
    index = load_index(index_dir, DEFAULT_MODEL, small_corpus_dir, rebuild=True, progress=False)
    assert index.manifest["counts"]["items"] >= 3
    return index_dir


def _truncate_vectors(d: Path):
    data = (d / "vectors.faiss").read_bytes()
    (d / "vectors.faiss").write_bytes(data[: len(data) // 2])


def _garbage_manifest(d: Path):
    (d / "manifest.json").write_text("{ this is not json", encoding="utf-8")


def _wrong_dim(d: Path):
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    m["dim"] = 128
    (d / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _flipped_byte(d: Path):
    data = bytearray((d / "rows.npy").read_bytes())
    data[-3] ^= 0xFF
    (d / "rows.npy").write_bytes(bytes(data))


def _no_items(d: Path):
    (d / "items.json").unlink()


def _no_manifest(d: Path):
    (d / "manifest.json").unlink()


@pytest.mark.parametrize("damage", [_truncate_vectors, _garbage_manifest, _wrong_dim, _flipped_byte, _no_items, _no_manifest])
def test_damaged_index_is_reported_and_rebuilt_when_allowed(damage, small_index_dir, small_corpus_dir, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(small_index_dir, index_dir)
    damage(index_dir)
    with pytest.raises(CorruptIndexError) as err:
        load_index(index_dir, DEFAULT_MODEL, small_corpus_dir, rebuild=False)
    assert str(index_dir) in str(err.value) and "faqbot index" in str(err.value)
    rebuilt = load_index(index_dir, DEFAULT_MODEL, small_corpus_dir, rebuild=True, progress=False)
    assert rebuilt.items == read_index(small_index_dir).items
    assert read_index(index_dir).manifest["corpus_fingerprint"] == corpus_fingerprint(small_corpus_dir)


def test_failed_save_leaves_the_old_index_intact(small_index_dir, small_corpus_dir, tmp_path, monkeypatch, embedder):
    from faqbot import store
    from faqbot.corpus import load_corpus

    index_dir = tmp_path / "index"
    shutil.copytree(small_index_dir, index_dir)
    (index_dir / "models" / "other").mkdir(parents=True)  # another model's index lives inside the folder
    (index_dir / "models" / "other" / "manifest.json").write_text("{}", encoding="utf-8")
    before = {p.relative_to(index_dir): p.read_bytes() for p in index_dir.rglob("*") if p.is_file()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_write_file", disk_full)
    with pytest.raises(store.IndexWriteError) as err:
        build_index(load_corpus(small_corpus_dir), embedder, index_dir, progress=False)
    assert "no space left" in str(err.value) and str(index_dir) in str(err.value)
    assert {p.relative_to(index_dir): p.read_bytes() for p in index_dir.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no half-written temp folder left behind
    monkeypatch.undo()

    build_index(load_corpus(small_corpus_dir), embedder, index_dir, progress=False)
    assert (index_dir / "models" / "other" / "manifest.json").exists()  # other models' indexes survive a rebuild
    read_index(index_dir)


def test_fingerprint_changes_with_content_and_names_only(small_corpus_dir, tmp_path):
    copy = tmp_path / "corpus"
    shutil.copytree(small_corpus_dir, copy)
    assert corpus_fingerprint(copy) == corpus_fingerprint(small_corpus_dir)
    (copy / "notes.txt").write_text("not markdown", encoding="utf-8")
    assert corpus_fingerprint(copy) == corpus_fingerprint(small_corpus_dir)
    page = copy / SMALL_PAGES[0]
    page.write_text(page.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert corpus_fingerprint(copy) != corpus_fingerprint(small_corpus_dir)


# ------------------------------------------------------------------ index type by size


def test_index_type_is_flat_for_small_and_hnsw_for_large_corpora():
    assert choose_index_type(2_000).type == "flat"
    assert choose_index_type(49_999).type == "flat"
    big = choose_index_type(1_000_000)
    assert big.type == "hnsw" and big.params["efSearch"] >= 64 and big.params["M"] >= 16


def test_approximate_index_recall_matches_exact_search(shipped_index):
    """Synthetic 20k vectors around the real ones: the large-corpus index finds >= 95% of the exact top 10."""
    rng = np.random.default_rng(1)
    base = np.asarray(shipped_index.vectors)
    d = base.shape[1]

    def noisy(n):
        x = base[rng.integers(0, len(base), n)] + (0.5 / np.sqrt(d)) * rng.standard_normal((n, d)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    data, queries = noisy(20_000), noisy(100)
    exact = make_faiss_index(IndexSpec("flat"), d, data)
    approx = make_faiss_index(choose_index_type(1_000_000), d, data)
    _, truth = exact.search(queries, 10)
    _, found = approx.search(queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95


def test_scale_benchmark_runs_on_a_tiny_corpus(real_index_dir):
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "scale.py"), "--sizes", "3000", "--queries", "30", "--json",
         "--index", str(real_index_dir)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    report = json.loads(out.stdout)
    by_type = {}
    for row in report["results"]:
        by_type.setdefault(row["type"], []).append(row)
        assert row["n_vectors"] == 3000 and row["p50_ms"] > 0 and row["index_mb"] > 0
    assert by_type["flat"][0]["recall_at_10"] == 1.0
    assert max(r["recall_at_10"] for r in by_type["hnsw"]) >= 0.95
    assert report["chosen"] == {"3000": "flat"}
