"""Learning from use: the chat records evidence that a wording means an entry (a liked answer, a suggestion
clicked after a "not covered" reply, a rephrasing that then got a like); `faqbot feedback suggest` proposes
(wording -> entry) pairs, `approve` puts them in the alternates file and the index, `reject` is remembered;
and `faqbot feedback gaps` groups what the FAQ did not answer."""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

import pytest

from faqbot.cli import main
from faqbot.config import Settings
from faqbot.feedback import DISLIKE, LIKE, OFF_TOPIC, FeedbackStore

from faqbot.web import FaqChat  # noqa: E402

UNCOVERED = "pip 安装 mindspore 报错"  # not covered by the fixture index's pages
UNINSTALL = "How to uninstall MindSpore?"


@pytest.fixture
def chat(fake_retriever, tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    yield FaqChat(fake_retriever, Settings(feedback_db=store.path), store=store)
    store.close(timeout=2)


def _evidence(store, kind):
    assert store.flush(10)
    return store.rows("SELECT question, item_id, session FROM feedback WHERE kind = ? ORDER BY id", (kind,))


def test_a_suggestion_clicked_after_a_not_covered_reply_is_evidence_for_the_clicked_entry(chat):
    _, history, answers = chat.respond(UNCOVERED, [], "latest", "", {})
    assert answers.at_message(1).in_scope is False and history[-1]["options"]
    clicked = history[-1]["options"][0]["value"]
    _, history, answers = chat.respond_to_click(history, "latest", "", answers, SimpleNamespace(value={"text": clicked}),
                                                SimpleNamespace(session_hash="sess-1"))
    clicked_id = answers.at_message(3).item_id
    assert answers.at_message(3).in_scope and clicked_id
    assert _evidence(chat.store, "click") == [(UNCOVERED, clicked_id, "sess-1")]


def test_a_click_after_an_answered_question_is_not_evidence(chat):
    _, history, answers = chat.respond(UNINSTALL, [], "latest", "", {})
    assert answers.at_message(1).in_scope
    clicked = history[-1]["options"][0]["value"]
    chat.respond_to_click(history, "latest", "", answers, SimpleNamespace(value={"text": clicked}), None)
    assert _evidence(chat.store, "click") == []


def test_a_rephrased_question_that_gets_a_like_is_evidence_for_the_first_wording(chat):
    _, history, answers = chat.respond(UNCOVERED, [], "latest", "", {})
    _, history, answers = chat.respond(UNINSTALL, history, "latest", "", answers)
    liked_id = answers.at_message(3).item_id
    chat.vote(answers, SimpleNamespace(index=3, liked=True), SimpleNamespace(session_hash="sess-2"))
    assert _evidence(chat.store, "rephrase") == [(UNCOVERED, liked_id, "sess-2")]
    assert _evidence(chat.store, "vote") == [(UNINSTALL, liked_id, "sess-2")]


def test_a_dislike_after_a_not_covered_reply_is_no_rephrase_evidence(chat):
    _, history, answers = chat.respond(UNCOVERED, [], "latest", "", {})
    _, history, answers = chat.respond(UNINSTALL, history, "latest", "", answers)
    chat.vote(answers, SimpleNamespace(index=3, liked=False), None)
    assert _evidence(chat.store, "rephrase") == []


# ---------------------------------------------------------------- suggest / approve / reject


def _seed(db, item_a, item_b):
    """Evidence as the app would record it: wordings that mean item_a, one that users disagree on, and an FAQ
    question verbatim (already known: never proposed)."""
    store = FeedbackStore(db)
    store.record("mindspore 卸载不干净怎么办", LIKE, item_id=item_a, lang="zh", session="s1")
    store.record("mindspore 卸载不干净怎么办", LIKE, kind="click", item_id=item_a, lang="zh", in_scope=False, session="s2")
    store.record("remove mindspore completely", LIKE, kind="rephrase", item_id=item_a, lang="en", in_scope=False, session="s3")
    store.record("mindspore is slow", LIKE, item_id=item_b, lang="en")
    store.record("mindspore is slow", DISLIKE, item_id=item_b, lang="en")
    store.record("mindspore is slow", DISLIKE, item_id=item_b, lang="en")
    store.record(UNINSTALL, LIKE, item_id=item_a, lang="en")
    assert store.flush(10)
    store.close()
    return store


def _suggested(db, capsys):
    assert main(["feedback", "--db", str(db), "suggest", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_suggest_lists_numbered_pairs_with_evidence_and_reject_is_remembered(tmp_path, capsys, corpus):
    item_a = next(i for i in corpus.items if i.entries.get("en") and i.entry("en").question == UNINSTALL).id
    item_b = corpus.items[0].id
    db = tmp_path / "fb.sqlite3"
    _seed(db, item_a, item_b)
    proposals = _suggested(db, capsys)
    pairs = {(p["wording"], p["item_id"]): p for p in proposals}
    assert set(pairs) == {("mindspore 卸载不干净怎么办", item_a), ("remove mindspore completely", item_a)}
    zh = pairs[("mindspore 卸载不干净怎么办", item_a)]
    assert (zh["likes"], zh["clicks"], zh["rephrases"], zh["sessions"]) == (1, 1, 0, 2)

    assert main(["feedback", "--db", str(db), "suggest"]) == 0
    text = capsys.readouterr().out
    assert f"{zh['n']:>4}. mindspore 卸载不干净怎么办" in text and "1 liked, 1 clicked suggestion" in text

    assert main(["feedback", "reject", str(zh["n"]), "--db", str(db)]) == 0
    assert "Rejected 1" in capsys.readouterr().out
    FeedbackStore(db).record("mindspore 卸载不干净怎么办", LIKE, item_id=item_a, lang="zh")  # more evidence later
    again = _suggested(db, capsys)
    assert [p["wording"] for p in again] == ["remove mindspore completely"]
    assert again[0]["n"] == pairs[("remove mindspore completely", item_a)]["n"]  # numbers are stable

    assert main(["feedback", "--db", str(db), "reject", "999"]) == 1
    assert "no open proposal numbered 999" in capsys.readouterr().err


def test_approve_appends_the_alternate_and_updates_the_index_so_the_wording_finds_its_entry(
    tmp_path, capsys, monkeypatch, fake_corpus, fake_embedder
):
    import faqbot.store as store_mod
    from faqbot.lexical import LexicalIndex  # noqa: F401  (the index folder holds BM25 too)
    from faqbot.search import Retriever

    index_dir = tmp_path / "index"
    store_mod.build(fake_corpus, fake_embedder, index_dir, progress=False, reuse=False)
    monkeypatch.setattr("faqbot.embed.load_embedder", lambda *a, **k: fake_embedder)
    monkeypatch.setenv("FAQBOT_CORPUS", str(fake_corpus.root))

    def top(question):
        opened = store_mod.open_index(index_dir)
        return Retriever(opened.dense, opened.lexical, fake_embedder).search(question)

    wording = "mindspore 去掉 删光光"
    target = next(i for i in fake_corpus.items if i.entries.get("en") and i.entry("en").question == UNINSTALL).id
    before = top(wording)
    assert not (before.in_scope and before.hits[0].item.id == target)

    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    store.record(wording, LIKE, kind="rephrase", item_id=target, lang="zh", in_scope=False, session="s")
    assert store.flush(10)
    store.close()
    (n,) = [p["n"] for p in _suggested(db, capsys)]
    alternates = tmp_path / "alternates.jsonl"
    assert main(["feedback", "--db", str(db), "approve", str(n), "--alternates", str(alternates),
                 "--index", str(index_dir), "--by", "editor"]) == 0
    out = capsys.readouterr().out
    assert "Added 1 alternate question(s)" in out and "updated" in out
    line = json.loads(alternates.read_text(encoding="utf-8"))
    assert (line["id"], line["lang"], line["question"], line["approved_by"]) == (target, "zh", wording, "editor")
    after = top(wording)
    assert after.hits[0].item.id == target and after.in_scope
    assert _suggested(db, capsys) == []  # approved: not proposed again


def test_suggest_leaves_out_pasted_reports_but_proposes_short_wordings(tmp_path):
    """A pasted issue report is not a question another user will type; approved, it pulled other reports to its
    entry in the simulation. A short wording with the same evidence is proposed."""
    from faqbot.feedback import MAX_PROPOSAL_CHARS

    paste = ("MindSpore 1.1.0 Ascend 910 Ubuntu 18.04 aarch64 CANN 20.2 python 3.7.5 pip install ok, but "
             "import mindspore fails: ImportError: libge_runner.so: cannot open shared object file: No such file "
             "or directory. I set LD_LIBRARY_PATH as the guide says. What is missing?")
    assert len(paste) > MAX_PROPOSAL_CHARS
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    store.record(paste, LIKE, item_id="a/b/c/1", lang="en", session="s1")
    store.record("import mindspore cannot find libge_runner.so", LIKE, item_id="a/b/c/1", lang="en", session="s2")
    assert store.flush(10)
    assert [p["wording"] for p in store.suggest()] == ["import mindspore cannot find libge_runner.so"]
    assert {p["wording"] for p in store.suggest(max_chars=None)} == {paste, "import mindspore cannot find libge_runner.so"}
    store.close()


def test_an_alternate_counts_less_than_the_entrys_own_question_but_its_own_wording_still_finds_it(
    tmp_path, fake_corpus, fake_embedder
):
    """RankingParams.alternate_discount comes off alternate rows only: the entry's own question keeps its cosine,
    and asking the approved wording itself still puts its entry first."""
    import faqbot.store as store_mod
    from faqbot.alternates import Alternate, append_alternates
    from faqbot.search import RankingParams, Retriever

    index_dir, alternates = tmp_path / "index", tmp_path / "alternates.jsonl"
    store_mod.build(fake_corpus, fake_embedder, index_dir, progress=False, reuse=False)
    target = next(i for i in fake_corpus.items if i.entries.get("en") and i.entry("en").question == UNINSTALL)
    wording = "mindspore 去掉 删光光"
    append_alternates(alternates, [Alternate(target.id, "zh", wording, "editor", "2026-11-28")])
    store_mod.apply_alternates(index_dir, fake_embedder, alternates)
    opened = store_mod.open_index(index_dir)
    pos = next(n for n, it in enumerate(opened.dense.items) if it.id == target.id)
    discount = RankingParams().alternate_discount
    assert discount > 0
    alt_vec = fake_embedder.embed_queries([wording])[0]
    own_vec = fake_embedder.embed_queries([UNINSTALL])[0]
    full, discounted = (opened.dense.item_scores(alt_vec, alt_discount=d)[pos] for d in (0.0, discount))
    assert abs(full - 1.0) < 1e-3 and abs(discounted - (1.0 - discount)) < 1e-3
    own = [opened.dense.item_scores(own_vec, alt_discount=d)[pos] for d in (0.0, discount)]
    assert own[0] == own[1]  # the entry's own question is not discounted
    retriever = Retriever(opened.dense, opened.lexical, fake_embedder)
    assert retriever.search(wording).hits[0].item.id == target.id


# ---------------------------------------------------------------- gap report


@pytest.mark.slow
def test_gaps_groups_unanswered_and_disliked_questions_by_meaning_in_both_languages(tmp_path, capsys):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    for q, lang in [("How do I bake sourdough bread?", "en"), ("怎么烤面包？", "zh"), ("What is a good bread recipe?", "en"),
                    ("MindSpore 能在树莓派上运行吗？", "zh"), ("Does MindSpore run on a Raspberry Pi?", "en")]:
        store.record(q, OFF_TOPIC, kind="off_topic", lang=lang, in_scope=False)
    store.record("Can MindSpore run on Raspberry Pi 4?", DISLIKE, item_id="x/y/z/1", lang="en")
    store.record("I liked this", LIKE, item_id="x/y/z/1", lang="en")
    assert store.flush(10)
    store.close()

    out = tmp_path / "gaps.md"
    assert main(["feedback", "--db", str(db), "gaps", "--out", str(out)]) == 0
    assert "2 group(s) of 6 question(s) written" in capsys.readouterr().out
    md = out.read_text(encoding="utf-8")
    groups = md.split("\n## ")[1:]
    assert "I liked this" not in md
    pi = next(g for g in groups if "Raspberry" in g)
    assert pi.split(". ", 1)[1].startswith("3 question(s)") and "中文: MindSpore 能在树莓派上运行吗？" in pi and "2 unanswered, 1 with a disliked" in pi
    bread = next(g for g in groups if "sourdough" in g)
    assert "怎么烤面包" in bread and "Raspberry" not in bread and len(groups) == 2

    assert main(["feedback", "gaps", "--format", "csv", "--db", str(db)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sum(int(r["count"]) for r in rows) == 6
    assert all(r["first"][:2] == "20" and r["last"] >= r["first"] for r in rows)


def test_gaps_on_a_database_without_questions_says_so(tmp_path, capsys):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    store.record("fine", LIKE, item_id="x/y/z/1", lang="en")
    assert store.flush(10)
    store.close()
    assert main(["feedback", "--db", str(db), "gaps"]) == 0
    assert "No unanswered or disliked questions" in capsys.readouterr().out
