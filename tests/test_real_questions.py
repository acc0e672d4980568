"""Real users' questions (issue 19): the loader and split, and the answer rules they motivated.

The slow tests use the real model and shipped index; expected entries are found by their own question text."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from faqbot.devset import (RealQuestionsError, assign_real_splits, load_real_questions, real_questions_paths,
                           split_real)
from faqbot.facets import detect
from faqbot.paste import paste_signal


def _item(items, version: str, text: str):
    """The item of `version` whose question (zh or en) contains `text`."""
    found = [it for it in items if it.version == version and any(text in e.question for e in it.entries.values())]
    assert len(found) == 1, f"{text!r} names {len(found)} {version} items"
    return found[0]


# ---------------------------------------------------------------- fast tier


def test_missing_real_questions_file_is_one_clear_line(tmp_path, corpus):
    with pytest.raises(RealQuestionsError) as err:
        load_real_questions(corpus.items, [tmp_path / "nowhere.jsonl"])
    assert "FAQBOT_REAL_QUESTIONS" in str(err.value) and "\n" not in str(err.value)


def test_env_points_at_another_file(tmp_path):
    path = tmp_path / "q.jsonl"
    assert real_questions_paths({"FAQBOT_REAL_QUESTIONS": str(path)}) == [path]


def test_expect_resolves_to_every_version_and_a_wrong_label_is_an_error(tmp_path, corpus):
    path = tmp_path / "q.jsonl"
    rows = [{"query": "how to uninstall", "lang": "en", "source": "https://github.com/a/b/issues/2",
             "expect": ["How to uninstall MindSpore"], "covered": "yes"},
            {"query": "something else", "lang": "en", "source": "https://github.com/c/d/issues/4", "expect": []}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    qs = load_real_questions(corpus.items, [path])
    assert qs[0].gold_ids and all("uninstall" in it.entry("en").question.lower()
                                  for it in corpus.items if it.id in qs[0].gold_ids)
    assert qs[1].gold_ids == () and qs[0].repo == "a/b"
    rows[0]["expect"] = ["no entry says this"]
    path.write_text(json.dumps(rows[0]), encoding="utf-8")
    with pytest.raises(RealQuestionsError):
        load_real_questions(corpus.items, [path])


def test_split_is_by_repository_never_by_line(corpus):
    qs = load_real_questions(corpus.items)
    sides = split_real(qs)
    assert sides["tune"] and sides["heldout"]
    repos = {side: {q.repo for q in group} for side, group in sides.items()}
    assert not repos["tune"] & repos["heldout"]
    assert set(assign_real_splits(qs)) == {q.repo for q in qs}


def test_questions_added_later_never_move_a_repository_across(corpus, tmp_path):
    """The constants were chosen on the tune side of the shared file: more data must not carry any of it into the
    held-out side (or the reverse), even when a new file has more questions from one of its repositories."""
    shared = load_real_questions(corpus.items, real_questions_paths({})[:1])
    before = assign_real_splits(shared)
    biggest = max(before, key=lambda repo: sum(q.repo == repo for q in shared))
    extra = tmp_path / "more.jsonl"
    rows = [{"query": f"question {n}", "source": f"https://github.com/{biggest}/issues/{2 * n}", "expect": []}
            for n in range(1, 60)]
    rows += [{"query": f"other {n}", "source": f"https://github.com/new/repo{n}/issues/2", "expect": []}
             for n in range(1, 9)]
    extra.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    after = assign_real_splits(load_real_questions(corpus.items, [*real_questions_paths({})[:1], extra]))
    assert {repo: after[repo] for repo in before} == before
    assert before[biggest] == "tune"  # dealt first, ties go to tune
    assert {after[f"new/repo{n}"] for n in range(1, 9)} == {"heldout"}  # new repositories even the sides out


def test_products_and_versions_are_detected(corpus):
    core = _item(corpus.items, "master", "How to uninstall MindSpore")
    assert detect("MindSpore Lite benchmark crashes on GPU").conflict(core)
    assert detect("mindyolo 训练时报错 cannot import name").conflict(core)
    assert not detect("How do I uninstall MindSpore 2.2?").conflict(core)
    assert detect("MindSpore 2.3 GPU training is stuck").major == 2


def test_a_paste_reads_the_last_exception_not_the_numpy_warning():
    paste = ("I run my script and it fails:\n"
             "/usr/lib/python3.9/site-packages/numpy/core/getlimits.py:499: UserWarning: The value of the smallest "
             "subnormal for <class 'numpy.float64'> type is zero.\n  setattr(self, word, getattr(machar, word).flat[0])\n"
             "Traceback (most recent call last):\n  File \"train.py\", line 12, in <module>\n"
             "ValueError: its name 'fc.weight' already exists. Please set a unique name for the parameter.\n")
    signal = paste_signal(paste)
    assert signal.cause.startswith("ValueError")
    assert not any("subnormal" in s for s in signal.segments)


# ---------------------------------------------------------------- slow tier: the real model and index


def test_plain_paraphrase_of_uninstall_is_asserted(retriever):
    r = retriever.rank("How can I remove MindSpore from my machine?")
    assert retriever.items[r.order[0]].id == _item(retriever.items, "master", "How to uninstall MindSpore").id
    assert r.match == "answer"


def test_paste_with_numpy_warning_finds_the_last_exceptions_entry(retriever):
    paste = ("Training my model fails right after start.\n"
             "/usr/lib/python3.9/site-packages/numpy/core/getlimits.py:499: UserWarning: The value of the smallest "
             "subnormal for <class 'numpy.float64'> type is zero.\n  setattr(self, word, getattr(machar, word).flat[0])\n"
             "Traceback (most recent call last):\n  File \"train.py\", line 40, in <module>\n    net = Net()\n"
             "ValueError: The value Parameter (name=Parameter, shape=(1024, 768), dtype=Float32, requires_grad=True) , "
             "its name 'Parameter' already exists. Please set a unique name for the parameter.\n")
    r = retriever.rank(paste)
    first = retriever.items[r.order[0]]
    assert any("unique name for the parameter" in e.question for e in first.entries.values())
    assert not any("subnormal" in e.question for e in first.entries.values())


def test_a_lite_question_is_not_asserted_a_core_entry(retriever):
    for q in ("MindSpore Lite only supports Python 3.7, when will Python 3.9 be supported?",
              "mindspore lite benchmark 在手机上用GPU跑mobilenetv2会crash，怎么办"):
        # answer_at=0: every first entry the calibration would assert; only the product rule may hold it back
        for params in (None, replace(retriever.params, answer_at=0.0)):
            r = retriever.rank(q, params=params)
            first = retriever.items[r.order[0]]
            assert first.component == "lite" or r.match != "answer", (q, first.id, r.match)


def test_an_add_on_library_question_is_not_asserted_a_core_api_entry(retriever):
    q = "mindnlp 里 from mindspore.nn import MultiheadAttention 报错 ImportError: cannot import name 'MultiheadAttention'"
    for params in (None, replace(retriever.params, answer_at=0.0)):
        r = retriever.rank(q, params=params)
        first = retriever.items[r.order[0]]
        assert first.component != "mindspore" or r.match != "answer", (first.id, r.match)
        assert r.match != "none"  # still shown as related


def test_twins_take_one_slot_newest_first(retriever):
    """A reworded r1.1 question over the same answer as a master entry is that entry's twin (search._newest_twin):
    the default (latest) search shows the master copy only; version="all" still shows every copy, as asked."""
    master = _item(retriever.items, "master", "only be run on Huawei own")
    old = _item(retriever.items, "r1.1", "run only on Huawei `NPUs`")
    ids = [retriever.items[i].id for i in retriever.rank("Does MindSpore run only on Huawei NPUs?").order[:5]]
    assert master.id in ids and old.id not in ids, ids
    every = [retriever.items[i].id for i in retriever.rank("Does MindSpore run only on Huawei NPUs?", version="all").order[:5]]
    assert old.id in every


def test_an_old_entry_is_not_asserted_for_a_2x_user(corpus):
    old = next(it for it in corpus.items if it.version == "r1.1")
    assert "old version" in detect("MindSpore 2.3.1 on Ascend: the same thing fails").conflict(old)
    assert not detect("the same thing fails").conflict(old)  # no version named: the entry may still answer


def _devset(tmp_path):
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"q": "best pizza in Naples?", "lang": "en", "kind": "offtopic", "gold_ids": []}) + "\n",
                   encoding="utf-8")
    return dev


def test_eval_reports_real_questions_as_their_own_rows(tmp_path, monkeypatch, capsys, retriever):
    from faqbot.cli import main

    real = tmp_path / "real.jsonl"
    rows = [{"query": "How can I remove MindSpore from my machine?", "lang": "en",
             "source": "https://github.com/a/b/issues/2", "expect": ["How to uninstall MindSpore"], "covered": "yes"},
            {"query": "what is a good recipe for tomato pasta?", "lang": "en",
             "source": "https://github.com/c/d/issues/4", "expect": []}]
    real.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    monkeypatch.setenv("FAQBOT_REAL_QUESTIONS", str(real))
    assert main(["eval", "--devset", str(_devset(tmp_path)), "--split", "all", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["real"]["all"]["n"] == 1 and out["real"]["all"]["n_offtopic"] == 1
    assert out["real"]["all"]["r1"] == 1.0 and out["real"]["all"]["offtopic_asserted"] == 0.0
    assert sum(b["n"] for b in out["real"]["all"]["reliability"]["bins"]) == 2


def test_eval_without_the_real_questions_file_says_so_in_one_line(tmp_path, monkeypatch, capsys, retriever):
    from faqbot.cli import main

    monkeypatch.setenv("FAQBOT_REAL_QUESTIONS", str(tmp_path / "missing.jsonl"))
    assert main(["eval", "--devset", str(_devset(tmp_path)), "--split", "all"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "real questions skipped" in line]
    assert len(notes) == 1 and "FAQBOT_REAL_QUESTIONS" in notes[0]


def test_a_product_counts_only_when_the_corpus_has_entries_of_it(corpus):
    core = _item(corpus.items, "master", "How to uninstall MindSpore")
    assert detect("MindSpore Lite benchmark crashes", frozenset({"mindspore", "lite"})).conflict(core)
    assert not detect("the lite theme of our buttons", frozenset({"mindspore"})).conflict(core)
