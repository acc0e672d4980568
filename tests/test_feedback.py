"""The feedback log: created on first use, what it stores, and the `faqbot feedback` report."""

from __future__ import annotations

import json
import sqlite3

import pytest

from faqbot.cli import main
from faqbot.feedback import DISLIKE, LIKE, OFF_TOPIC, FeedbackStore

ITEM_A = "master/mindspore/installation/aaaaaaaa"
ITEM_B = "master/mindspore/installation/bbbbbbbb"


def test_database_and_parent_folders_are_created_on_first_use(tmp_path):
    path = tmp_path / "deep" / "er" / "feedback.sqlite3"
    store = FeedbackStore(path)
    assert not path.exists()
    store.record("如何安装？", DISLIKE, item_id=ITEM_A, score=0.91, lang="zh", in_scope=True)
    assert path.exists()
    rows = sqlite3.connect(path).execute("SELECT question, item_id, score, lang, vote, in_scope, time FROM feedback").fetchall()
    assert len(rows) == 1
    question, item_id, score, lang, vote, in_scope, time = rows[0]
    assert (question, item_id, score, lang, vote, in_scope) == ("如何安装？", ITEM_A, pytest.approx(0.91), "zh", -1, 1)
    assert time[:2] == "20" and "T" in time


def test_report_does_not_create_a_database(tmp_path):
    store = FeedbackStore(tmp_path / "none" / "fb.sqlite3")
    assert store.report() == {"db": str(store.path), "unanswered": [], "disliked": []}
    assert not (tmp_path / "none").exists()


def test_unknown_vote_is_refused(tmp_path):
    with pytest.raises(ValueError, match="vote"):
        FeedbackStore(tmp_path / "fb.sqlite3").record("q", 2)


def test_most_frequent_unanswered_questions_come_first(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    for q in ["How do I bake bread?", "how do I bake  bread? ", "How do I bake bread?", "Who won the match?"]:
        store.record(q, OFF_TOPIC, item_id=ITEM_A, score=0.5, lang="en", in_scope=False)
    store.record("Installed fine", LIKE, item_id=ITEM_A, score=0.9, lang="en", in_scope=True)
    unanswered = store.unanswered()
    assert [u["count"] for u in unanswered] == [3, 1]
    assert unanswered[0]["question"] == "How do I bake bread?" and unanswered[1]["question"] == "Who won the match?"


def test_questions_differing_only_in_case_and_edges_count_together(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    for q in ["How do I bake bread?", "  how do i\tbake   bread?", "HOW DO I BAKE BREAD?"]:
        store.record(q, OFF_TOPIC, lang="en", in_scope=False)
    assert [u["count"] for u in store.unanswered()] == [3]


def test_most_disliked_answers_come_first_with_their_questions(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    store.record("q1", DISLIKE, item_id=ITEM_B, score=0.8, lang="en")
    store.record("q2", DISLIKE, item_id=ITEM_B, score=0.8, lang="en")
    store.record("q3", DISLIKE, item_id=ITEM_A, score=0.8, lang="zh")
    store.record("q4", LIKE, item_id=ITEM_A, score=0.8, lang="zh")
    store.record("q5", LIKE, item_id="liked/only", score=0.8, lang="zh")
    disliked = store.disliked()
    assert [(d["item_id"], d["dislikes"], d["likes"]) for d in disliked] == [(ITEM_B, 2, 0), (ITEM_A, 1, 1)]
    assert set(disliked[0]["questions"]) == {"q1", "q2"}


def test_feedback_command_prints_both_lists(tmp_path, capsys, corpus):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    item = corpus.items[0]
    store.record("量子计算机怎么买？", OFF_TOPIC, lang="zh", in_scope=False)
    store.record(item.entry("en").question, DISLIKE, item_id=item.id, score=0.85, lang="en")
    assert main(["feedback", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    unanswered, disliked = out.split("Most disliked answers:")
    assert "量子计算机怎么买？" in unanswered
    assert item.id in disliked and item.entry("en").question.split()[0] in disliked


def test_feedback_command_json(tmp_path, capsys):
    db = tmp_path / "fb.sqlite3"
    FeedbackStore(db).record("what is love", OFF_TOPIC, lang="en", in_scope=False)
    assert main(["feedback", "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unanswered"][0]["question"] == "what is love"
    assert report["disliked"] == []


def test_feedback_command_explains_a_wrong_path(tmp_path, capsys):
    assert main(["feedback", "--db", str(tmp_path / "missing.sqlite3")]) == 1
    err = capsys.readouterr().err
    assert "no feedback database" in err and "Traceback" not in err
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database")
    assert main(["feedback", "--db", str(junk)]) == 1
    assert "--db" in capsys.readouterr().err
