"""Approved alternates and a running app (issue 23): the app serves a newly approved wording within seconds without
a restart; a process opening the index while `approve` runs never finds the file ahead of the index; and
`approve` into a folder it cannot write refuses before it changes or marks anything."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import faqbot.store as store_mod
from faqbot.alternates import Alternate, alternates_path, load_alternates
from faqbot.config import Settings
from faqbot.sources import load_corpus
from faqbot.feedback import LIKE, FeedbackStore
from faqbot.index import StaleIndexError
from faqbot.reload import IndexWatcher
from faqbot.search import Retriever

UNINSTALL = "How to uninstall MindSpore?"
WORDING = "mindspore 去掉 删光光"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def site(tmp_path, fake_corpus, fake_embedder):
    """A copy of the fixture corpus and an index built from it, as a deployment has them."""
    corpus_dir = tmp_path / "corpus"
    shutil.copytree(fake_corpus.root, corpus_dir)
    corpus = load_corpus(corpus_dir)
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", model=fake_embedder.name,
                        reload_seconds=0.2)
    store_mod.build(corpus, fake_embedder, settings.model_index_dir, progress=False, reuse=False)
    target = next(i for i in corpus.items if i.entries.get("en") and i.entry("en").question == UNINSTALL).id
    return settings, target


def _retriever(settings, embedder) -> Retriever:
    opened = store_mod.open_index(settings.model_index_dir, embedder.name, settings.corpus_dir)
    return Retriever(opened.dense, opened.lexical, embedder)


def _alt(target: str) -> Alternate:
    return Alternate(id=target, lang="zh", question=WORDING, approved_by="editor", approved_at="2026-12-07")


class _Holder:
    def __init__(self, retriever):
        self.retriever = retriever


def test_a_running_app_serves_an_approved_alternate_after_the_next_check(site, fake_embedder):
    settings, target = site
    holder = _Holder(_retriever(settings, fake_embedder))
    health: dict = {}
    watcher = IndexWatcher(settings, holder, health, interval=0)
    assert holder.retriever.search(WORDING).hits[0].item.id != target
    assert watcher.check() is False  # nothing changed: nothing reloaded

    added, summary = store_mod.add_alternates(settings.model_index_dir, fake_embedder,
                                              alternates_path(settings.corpus_dir), [_alt(target)])
    assert [a.question for a in added] == [WORDING] and summary["changed"]
    assert watcher.check() is True
    result = holder.retriever.search(WORDING)
    assert result.hits[0].item.id == target and result.in_scope
    assert "(1 alternate questions)" in health["index_message"]
    assert watcher.check() is False and watcher.reloads == 1


def test_the_app_over_http_finds_the_approved_wording_without_a_restart(site, fake_embedder, tmp_path):
    import http.client
    import urllib.parse

    from test_vote_guard import _serve

    settings, target = site
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    demo, port = _serve(_retriever(settings, fake_embedder), store, settings.with_(feedback_db=store.path))

    def top() -> str:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/search?" + urllib.parse.urlencode({"q": WORDING, "k": 1}))
        body = json.loads(conn.getresponse().read())
        conn.close()
        return body["answers"][0]["id"]

    try:
        assert top() != target
        store_mod.add_alternates(settings.model_index_dir, fake_embedder, alternates_path(settings.corpus_dir),
                                 [_alt(target)])
        deadline = time.monotonic() + 60  # a hang guard, not a timing: the watcher checks every 0.2 s
        while top() != target and time.monotonic() < deadline:
            time.sleep(0.1)
        assert top() == target
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        assert "(1 alternate questions)" in health["index"]
    finally:
        demo.faqbot_watcher.stop()
        demo.close()
        store.close()


def test_an_index_that_fails_its_checks_is_not_loaded_and_the_old_one_keeps_serving(site, fake_embedder, caplog):
    settings, target = site
    holder = _Holder(_retriever(settings, fake_embedder))
    before = holder.retriever
    watcher = IndexWatcher(settings, holder, {}, interval=0)
    # the file changes without the index (an edit by hand): the folder is stale, so it is not served
    path = alternates_path(settings.corpus_dir)
    path.write_text(json.dumps(_alt(target).to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = settings.model_index_dir / store_mod.MANIFEST
    manifest.write_bytes(manifest.read_bytes())  # touched: a new stamp
    assert watcher.check() is False and holder.retriever is before
    assert "cannot be loaded" in caplog.text and caplog.text.count("cannot be loaded") == 1
    assert watcher.check() is False and caplog.text.count("cannot be loaded") == 1  # logged once per change


def _propose(db: Path, target: str) -> None:
    store = FeedbackStore(db)
    store.record(WORDING, LIKE, kind="rephrase", item_id=target, lang="zh", in_scope=False, session="s")
    assert store.flush(10)
    assert [p["n"] for p in store.suggest()] == [1]
    store.close()


def _open_outcome(settings, embedder):
    try:
        return store_mod.open_index(settings.model_index_dir, embedder.name, settings.corpus_dir)
    except StaleIndexError as exc:  # what a starting app printed before, exiting 2: "alternates.jsonl changed"
        return exc


def test_a_process_opening_the_index_while_approve_runs_never_finds_the_file_ahead_of_it(
        site, fake_embedder, tmp_path, monkeypatch):
    """Before, `approve` appended to the file, then loaded the model (5-7 s), then updated the index: a process
    starting meanwhile refused the index as stale. Now both change together under the index's write lock."""
    from faqbot.cli import main

    settings, target = site
    db = tmp_path / "fb.sqlite3"
    _propose(db, target)
    loading, go_on = threading.Event(), threading.Event()

    def slow_model(*args, **kwargs):
        loading.set()
        go_on.wait(60)
        return fake_embedder

    monkeypatch.setattr("faqbot.embed.load_embedder", slow_model)
    monkeypatch.setenv("FAQBOT_CORPUS", str(settings.corpus_dir))
    monkeypatch.setenv("FAQBOT_MODEL", fake_embedder.name)
    codes: list[int] = []
    approve = threading.Thread(target=lambda: codes.append(main([
        "feedback", "--db", str(db), "approve", "1", "--index", str(settings.index_dir), "--by", "editor"])))
    approve.start()
    assert loading.wait(60)
    during = _open_outcome(settings, fake_embedder)  # while `approve` loads its model
    go_on.set()
    approve.join(120)
    after = _open_outcome(settings, fake_embedder)
    assert codes == [0]
    assert not isinstance(during, Exception), during
    assert not isinstance(after, Exception), after
    assert (during.manifest["counts"]["alternate_vectors"], after.manifest["counts"]["alternate_vectors"]) == (0, 1)
    assert [a.question for a in load_alternates(alternates_path(settings.corpus_dir))] == [WORDING]


def test_the_file_and_the_index_change_together_under_the_write_lock(site, fake_embedder, monkeypatch):
    settings, target = site
    paused, resume = threading.Event(), threading.Event()
    real_pause = store_mod._pause

    def pause(point: str) -> None:
        if point == "written":  # the new index is written, not yet swapped in
            paused.set()
            resume.wait(60)
        real_pause(point)

    monkeypatch.setattr(store_mod, "_pause", pause)
    path = alternates_path(settings.corpus_dir)
    approve = threading.Thread(target=store_mod.add_alternates,
                               args=(settings.model_index_dir, fake_embedder, path, [_alt(target)]))
    approve.start()
    assert paused.wait(60)
    assert not path.exists()  # the file is replaced only after the index, both under the lock
    outcome: list = []
    opener = threading.Thread(target=lambda: outcome.append(_open_outcome(settings, fake_embedder)))
    opener.start()
    opener.join(1.0)  # it waits for the lock rather than read a half-done state
    resume.set()
    approve.join(60)
    opener.join(60)
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert outcome[0].manifest["counts"]["alternate_vectors"] == 1
    assert [a.question for a in load_alternates(path)] == [WORDING]


_APPROVE_IN_NAMESPACE = r"""
import sys
sys.path.insert(0, {tests!r})
from conftest import HashEmbedder
import faqbot.embed
faqbot.embed.load_embedder = lambda *a, **k: HashEmbedder()
from faqbot.cli import main
sys.exit(main(["feedback", "--db", {db!r}, "approve", "1", "--alternates", {alternates!r}, "--index", {index!r},
               "--by", "editor"]))
"""


@pytest.mark.parametrize("read_only", ["index", "corpus"])
def test_approve_into_a_folder_it_cannot_write_refuses_before_changing_or_marking_anything(private_mounts, site,
                                                                                           fake_embedder, tmp_path,
                                                                                           read_only):
    settings, target = site
    db = tmp_path / "fb.sqlite3"
    _propose(db, target)
    path = alternates_path(settings.corpus_dir)
    index_files = {p: p.read_bytes() for p in settings.model_index_dir.rglob("*") if p.is_file()}
    # the index folder's parent holds its swaps; the corpus folder holds the alternates file
    folder = settings.model_index_dir.parent if read_only == "index" else settings.corpus_dir
    script = _APPROVE_IN_NAMESPACE.format(tests=str(REPO / "tests"), db=str(db), alternates=str(path),
                                          index=str(settings.model_index_dir))
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
                                       f'"$2" -c "$3"', "sh", str(folder), sys.executable, script],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "FAQBOT_CORPUS": str(settings.corpus_dir)},
    )
    assert proc.returncode == 1, proc.stderr
    assert "nothing was approved" in proc.stderr and "read-only" in proc.stderr.lower() and "Traceback" not in proc.stderr
    assert not path.exists()
    assert {p: p.read_bytes() for p in settings.model_index_dir.rglob("*") if p.is_file()} == index_files
    assert [p["n"] for p in FeedbackStore(db).suggest()] == [1]  # still open: approve it again once writable
    assert store_mod.open_index(settings.model_index_dir, fake_embedder.name, settings.corpus_dir)  # app starts
