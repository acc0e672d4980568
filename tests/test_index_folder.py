"""The index folder owned once (issue 22, part 3): each index saves and loads its own files, faqbot.store keeps
the manifest (one dataclass), the health line reads the index already opened, index.py does not import store,
and the "latest" near-duplicate mask comes from FAISS k-NN."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from faqbot import store
from faqbot.config import Settings
from faqbot.index import FaqIndex
from faqbot.lexical import LexicalIndex
from faqbot.search import (
    NEAR_DUPLICATE, TWIN_ANSWER, TWIN_QUESTION, VERSION_ORDER, _answer_grams, _close_newer_pairs, _latest_mask,
    _newest_twin,
)
from faqbot.service import index_health

REPO = Path(__file__).resolve().parents[1]
QUERIES = ("how to install MindSpore on Windows", "安装 MindSpore 报错", "MindInsight 启动失败", "summary 文件")


def _settings(tmp_path, model) -> Settings:
    return Settings(corpus_dir=tmp_path / "corpus-copy", index_dir=tmp_path / "index", model=model)


@pytest.fixture
def built(fake_corpus, fake_embedder, tmp_path) -> store.StoredIndex:
    """The fixture corpus (a real copy of some pages) built and saved where its settings look for it."""
    corpus_dir = tmp_path / "corpus-copy"
    shutil.copytree(fake_corpus.root, corpus_dir)
    from faqbot.corpus import load_corpus

    return store.build(load_corpus(corpus_dir), fake_embedder, _settings(tmp_path, fake_embedder.name).model_index_dir,
                       progress=False, reuse=False)


def test_faq_index_saves_and_loads_its_own_files(fake_retriever, tmp_path):
    index = fake_retriever.index
    index.save(tmp_path / "dense")
    assert sorted(p.name for p in (tmp_path / "dense").iterdir()) == sorted(["vectors.faiss", "rows.npy", "items.json"])
    loaded = FaqIndex.load(tmp_path / "dense", index.manifest)
    assert loaded.items == index.items
    assert (loaded.rows == index.rows).all()
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    assert loaded.spec == index.spec and loaded.path == tmp_path / "dense"
    q = index.vectors[0]
    np.testing.assert_array_equal(loaded.item_scores(q), index.item_scores(q))


def test_faq_index_load_refuses_files_that_do_not_fit_the_manifest(fake_retriever, tmp_path):
    from faqbot.index import IndexFileError

    fake_retriever.index.save(tmp_path / "dense")
    wrong = {**fake_retriever.index.manifest, "dim": fake_retriever.index.dim + 1}
    with pytest.raises(IndexFileError, match="dimension"):
        FaqIndex.load(tmp_path / "dense", wrong)


def test_lexical_index_saves_and_loads_its_own_files(fake_retriever, tmp_path):
    lexical = LexicalIndex.build(fake_retriever.items, "abc", {0: ["an extra wording about pip wheels"]})
    lexical.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.fingerprint == "abc" and loaded.n_docs == lexical.n_docs == len(fake_retriever.items)
    assert loaded.check() is None
    for query in (*QUERIES, "pip wheels"):
        scores, oov = lexical.evidence(query)
        loaded_scores, loaded_oov = loaded.evidence(query)
        np.testing.assert_array_equal(loaded_scores, scores)
        assert loaded_oov == oov
    assert lexical.evidence("pip wheels")[0][0] > 0


def test_the_manifest_dataclass_round_trips_what_build_writes(built):
    on_disk = json.loads((built.path / store.MANIFEST).read_text(encoding="utf-8"))
    manifest = store.Manifest.from_dict(on_disk)
    assert manifest.to_dict() == on_disk
    assert list(manifest.to_dict()) == list(on_disk)  # same key order as on disk
    assert manifest.model == built.dense.model and manifest.files == on_disk["files"]
    assert "alternates_applied_at" not in on_disk and "source_alternates" not in on_disk
    newer = {**on_disk, "written_by_a_newer_faqbot": [1, 2], "alternates_applied_at": "2026-01-01T00:00:00+00:00"}
    again = store.Manifest.from_dict(json.loads(json.dumps(store.Manifest.from_dict(newer).to_dict())))
    assert again.to_dict() == newer and again.extra == {"written_by_a_newer_faqbot": [1, 2]}


def test_apply_alternates_keeps_the_manifest_and_updates_its_alternates(built, fake_embedder, tmp_path):
    from faqbot.alternates import Alternate

    before = json.loads((built.path / store.MANIFEST).read_text(encoding="utf-8"))
    item = built.dense.items[0]
    lang = item.langs[0]
    added, summary = store.add_alternates(built.path, fake_embedder, tmp_path / "alternates.jsonl",
                                          [Alternate(item.id, lang, "a brand new wording of this question", "test", "2026-12-07")])
    assert len(added) == 1 and summary["changed"] and summary["embedded"] == 1
    after = json.loads((built.path / store.MANIFEST).read_text(encoding="utf-8"))
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == {"alternates", "counts", "lexical", "alternates_applied_at", "files"}
    assert after["alternates"]["count"] == 1 and after["counts"]["alternate_vectors"] == 1
    assert store.open_index(built.path).dense.manifest == after


def test_the_health_line_reads_the_opened_index_without_opening_or_hashing_it_again(built, fake_embedder, tmp_path,
                                                                                    monkeypatch):
    from faqbot.corpus import load_corpus

    settings = _settings(tmp_path, built.dense.model)
    corpus_dir = settings.corpus_dir
    opened = store.open_index(settings.model_index_dir, settings.model, corpus_dir)
    calls = {"sha256": 0, "open": 0}
    real_sha, real_open = store._sha256, store.open_index

    def counting_sha(path):
        calls["sha256"] += 1
        return real_sha(path)

    def counting_open(*args, **kwargs):
        calls["open"] += 1
        return real_open(*args, **kwargs)

    monkeypatch.setattr(store, "_sha256", counting_sha)
    monkeypatch.setattr(store, "open_index", counting_open)
    health = index_health(settings, opened.dense)
    assert calls == {"sha256": 0, "open": 0}
    expected = store.index_status(built.path, built.dense.model, corpus_dir)  # the full check, for comparison
    assert calls["sha256"] > 0 and calls["open"] == 1
    assert (health["index_ok"], health["index_message"]) == expected
    assert health["index_ok"] and "up to date" in health["index_message"]

    page = next(corpus_dir.rglob("*.md"))
    page.write_text(page.read_text(encoding="utf-8") + "\n\nchanged\n", encoding="utf-8")
    stale = index_health(settings, opened.dense)
    assert not stale["index_ok"] and "changed since the index was built" in stale["index_message"]
    assert (stale["index_ok"], stale["index_message"]) == store.index_status(built.path, built.dense.model, corpus_dir)

    calls.update(open=0)  # an index opened elsewhere (or built in memory) is not the settings' one: checked as before
    in_memory = store.build(load_corpus(corpus_dir), fake_embedder, None, progress=False, reuse=False).dense
    assert in_memory.path is None
    assert index_health(settings, in_memory) == index_health(settings) and calls["open"] == 2


def _newest_twin_n_by_n(items, index) -> np.ndarray:
    """_newest_twin as it was computed before k-NN: an n x n product of all question vectors."""
    from faqbot.index import KIND_Q

    newest = _newest_twin(items)  # the text rule alone
    ranks = np.array([VERSION_ORDER.get(it.version, 9) for it in items])
    q_rows = np.flatnonzero(index.rows["kind"] == KIND_Q)
    owner = index.rows["item"][q_rows]
    sims = index.vectors[q_rows] @ index.vectors[q_rows].T
    newer = ranks[owner][None, :] < ranks[owner][:, None]
    for a, b in zip(*np.nonzero((sims >= TWIN_QUESTION) & newer)):
        row, col = int(owner[a]), int(owner[b])
        if sims[a, b] < NEAR_DUPLICATE:
            ga, gb = _answer_grams(items[row]), _answer_grams(items[col])
            if len(ga & gb) < TWIN_ANSWER * max(1, len(ga | gb)):
                continue
        if ranks[col] < ranks[newest[row]]:
            newest[row] = col
    return newest


def test_the_knn_near_duplicates_equal_the_n_by_n_ones_on_the_real_index(shipped_index):
    items = shipped_index.items
    knn = _newest_twin(items, shipped_index)
    np.testing.assert_array_equal(knn, _newest_twin_n_by_n(items, shipped_index))
    assert (knn != _newest_twin(items)).any()  # the vectors find rewrites the text rule misses
    np.testing.assert_array_equal(_latest_mask(items, shipped_index), knn == np.arange(len(items)))


def test_the_knn_search_widens_past_k_when_the_k_nearest_are_all_older_duplicates():
    # 40 copies of one question in the old version and one in the new: with k=4 the newer one is beyond the
    # first 4 neighbours of most copies, so it is found only by asking again with a wider k
    rng = np.random.default_rng(0)
    base = rng.normal(size=32).astype(np.float32)
    vecs = np.stack([base + rng.normal(scale=1e-3, size=32).astype(np.float32) for _ in range(41)])
    far = rng.normal(size=(5, 32)).astype(np.float32)
    vecs = np.concatenate([vecs, far])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ranks = np.array([1] * 40 + [0] + [1] * 5)
    pairs = _close_newer_pairs(vecs, ranks, NEAR_DUPLICATE, k=4)
    assert [(a, b) for a, b, _ in pairs] == [(a, 40) for a in range(40)]
    sims = vecs @ vecs.T
    assert all(abs(sim - sims[a, b]) < 1e-5 for a, b, sim in pairs)


def test_index_does_not_import_store():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    edges, third = import_graph.graph()
    assert "store" not in edges["index"] and "index" in edges["store"]
    assert not any("index" in c for c in import_graph.cycles(edges))
    assert frozenset({"index", "store"}) not in import_graph.KNOWN_CYCLES
    assert import_graph.problems(edges, third) == []


def test_own_oov_is_the_oov_of_evidence_without_scoring_bm25_again(fake_retriever, monkeypatch):
    from faqbot.conversation import own_oov

    lexical = fake_retriever.lexical
    for query in (*QUERIES, "LoRA fine-tuning in Excel", "", "???"):
        assert lexical.oov(query) == lexical.evidence(query)[1]
    calls = []
    real = lexical.bm25.get_scores
    monkeypatch.setattr(lexical.bm25, "get_scores", lambda words: calls.append(words) or real(words))
    values = [own_oov(fake_retriever, q) for q in ("那 Windows 呢", "and on Ascend?", "LoRA 微调")]
    assert calls == []
    assert values[2] > values[0] and 0.0 <= min(values) and max(values) <= 1.0
