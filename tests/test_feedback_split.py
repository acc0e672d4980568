"""Feedback split by job (issue 22, part 4): faqbot.feedback is the store; the reports (faqbot.feedback_reports)
and the proposals learned from use (faqbot.feedback_learning, typed) read it through the store and import no
database code; every name callers used from faqbot.feedback still imports from there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from faqbot import feedback, feedback_learning, feedback_reports
from faqbot.feedback import DISLIKE, LIKE, OFF_TOPIC, FeedbackStore

SRC = Path(feedback.__file__).resolve().parent
ENTRY, OTHER = "master/mindspore/installation/abc", "master/mindspore/installation/def"


@pytest.fixture
def store(tmp_path):
    s = FeedbackStore(tmp_path / "fb.sqlite3")
    s.record("how do I remove mindspore", LIKE, item_id=ENTRY, session="s1")
    s.record("how do I remove mindspore", LIKE, item_id=ENTRY, session="s2", kind="click")
    s.record("Why is the sky blue", OFF_TOPIC, kind="off_topic", session="s3")
    s.record("why is the sky  blue", OFF_TOPIC, kind="off_topic", session="s4")
    s.record("a wording that got a dislike", DISLIKE, item_id=OTHER, session="s5")
    assert s.flush(10)
    yield s
    s.close(timeout=2)


def test_learning_gives_typed_proposals_and_approve_and_reject_decide_them(store):
    proposals = feedback_learning.suggest(store)
    assert [type(p) for p in proposals] == [feedback_learning.Proposal]
    p = proposals[0]
    assert (p.wording, p.item_id, p.likes, p.clicks, p.dislikes, p.sessions) == ("how do I remove mindspore", ENTRY, 1, 1, 0, 2)
    assert store.suggest() == [p.to_dict()]  # the store's method gives the same, as the JSON dicts it always gave
    assert feedback_learning.reject(store, [p.n]) == 1
    assert feedback_learning.suggest(store) == [] and feedback_learning.approve(store, [p.n]) == 0  # decided once
    with pytest.raises(ValueError, match="maybe"):
        feedback_learning.decide(store, [p.n], "maybe")


def test_reports_read_the_store_and_match_its_methods(store):
    unanswered = feedback_reports.unanswered(store)
    assert [(r["count"], r["question"].lower().split()) for r in unanswered] == [(2, ["why", "is", "the", "sky", "blue"])]
    disliked = feedback_reports.disliked(store)
    assert [(r["item_id"], r["dislikes"], r["likes"]) for r in disliked] == [(OTHER, 1, 0)]
    report = feedback_reports.report(store, titles={OTHER: "Some title"})
    assert report == store.report(titles={OTHER: "Some title"}) and report["disliked"][0]["title"] == "Some title"
    assert sorted(g["why"] for g in feedback_reports.gap_questions(store)) == ["disliked", "unanswered", "unanswered"]
    assert "Most frequent unanswered questions" in feedback_reports.format_report(report)


def test_reports_and_learning_import_no_database_code_and_the_old_names_still_import():
    for module in ("feedback_reports", "feedback_learning"):
        tree = ast.parse((SRC / f"{module}.py").read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"sqlite3", "psycopg", "faqbot.feedback"}, module
    for name in ("cluster_gaps", "format_gaps_markdown", "format_gaps_csv", "format_report", "wording_key",
                 "MAX_PROPOSAL_CHARS", "FeedbackStore", "KINDS"):
        assert hasattr(feedback, name), name
    assert feedback.wording_key("How?  ") == feedback_learning.wording_key("how") == "how"
