"""The index folder's one owner (faqbot.store): every file checksummed, atomic saves that survive SIGKILL,
no rebuild on load, and alternate questions applied in place. All faults are made on copies in tmp_path."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faqbot import store
from faqbot.alternates import (
    Alternate,
    AlternatesError,
    alternates_path,
    append_alternates,
    load_alternates,
    remove_alternates,
)
from faqbot.index import CorruptIndexError, MissingIndexError, StaleIndexError

PY = sys.executable
FAQBOT = [PY, "-m", "faqbot.cli"]

# "怎么把mindspore删掉" ("how do I get MindSpore off my machine") does not find the uninstall entry today
UNINSTALL = "master/mindspore/installation/4a4da09a"
UNINSTALL_WORDING = "怎么把mindspore删掉"


@pytest.fixture
def index_copy(tmp_path, fake_index_dir) -> Path:
    target = tmp_path / "index"
    shutil.copytree(fake_index_dir, target)
    return target


@pytest.fixture
def real_index_copy(tmp_path, real_index_dir) -> Path:
    """A copy of the index built from the real corpus with the real model, for tests about its answers."""
    target = tmp_path / "index"
    shutil.copytree(real_index_dir, target, ignore=shutil.ignore_patterns("models", "README.md"))
    return target


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text(encoding="utf-8"))


def _write_manifest(d: Path, m: dict) -> None:
    (d / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


# ------------------------------------------------------------------ every file is in the manifest


def test_manifest_lists_every_file_with_its_sha256(index_copy):
    m = _manifest(index_copy)
    on_disk = sorted(p.relative_to(index_copy).as_posix() for p in index_copy.rglob("*") if p.is_file())
    assert sorted(m["files"]) == [n for n in on_disk if n != "manifest.json"]
    assert any(n.startswith("bm25/") for n in m["files"])
    for name, info in m["files"].items():
        assert info["bytes"] == (index_copy / name).stat().st_size
        assert info["sha256"] == store._sha256(index_copy / name)
    assert m["format_version"] == store.FORMAT_VERSION
    assert set(m["alternates"]) >= {"sha256", "count"}


# ------------------------------------------------------------------ faults


def _truncate(p: Path):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _garble(p: Path):
    data = bytearray(p.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0x5A
    p.write_bytes(bytes(data))


def _delete(p: Path):
    p.unlink()


FILES = ["vectors.faiss", "rows.npy", "items.json", "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy",
         "bm25/indptr.csc.index.npy", "bm25/vocab.index.json", "bm25/params.index.json", "bm25/lexical.json"]


@pytest.mark.parametrize("damage", [_truncate, _garble, _delete], ids=["truncated", "garbled", "deleted"])
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_is_refused_with_what_to_run(index_copy, name, damage):
    damage(index_copy / name)
    with pytest.raises(CorruptIndexError) as err:
        store.open_index(index_copy)
    message = str(err.value)
    assert name in message and str(index_copy) in message and "run `faqbot index`" in message
    assert "\n" not in message


def _shuffle_vocab(d: Path):
    """Same words, same ids, shuffled pairing: valid JSON that would rank the wrong items."""
    path = d / "bm25" / "vocab.index.json"
    vocab = json.loads(path.read_text(encoding="utf-8"))
    words, ids = list(vocab), list(vocab.values())
    np.random.default_rng(0).shuffle(ids)
    path.write_text(json.dumps(dict(zip(words, ids)), ensure_ascii=False), encoding="utf-8")


def _files_null(d: Path):
    m = _manifest(d)
    m["files"] = None
    _write_manifest(d, m)


def _manifest_garbage(d: Path):
    (d / "manifest.json").write_text("{ not json", encoding="utf-8")


def _manifest_drops_bm25(d: Path):
    m = _manifest(d)
    m["files"] = {k: v for k, v in m["files"].items() if not k.startswith("bm25/")}
    _write_manifest(d, m)


def _stray_file(d: Path):
    (d / "bm25" / "extra.npy").write_bytes(b"\x93NUMPY")


def _path_escape(d: Path):
    m = _manifest(d)
    m["files"]["../outside"] = {"bytes": 1, "sha256": "0" * 64}
    _write_manifest(d, m)


OTHER_FAULTS = [_shuffle_vocab, _files_null, _manifest_garbage, _manifest_drops_bm25, _stray_file, _path_escape]


@pytest.mark.parametrize("fault", OTHER_FAULTS, ids=[f.__name__.strip("_") for f in OTHER_FAULTS])
def test_tampered_folder_is_refused_with_what_to_run(index_copy, fault):
    fault(index_copy)
    with pytest.raises(CorruptIndexError) as err:
        store.open_index(index_copy)
    assert "run `faqbot index`" in str(err.value) and "\n" not in str(err.value)


def test_a_folder_with_only_its_readme_is_missing_not_damaged(tmp_path):
    """The default index/ of a fresh clone holds only its README: the first start builds there."""
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "README.md").write_text("what goes here", encoding="utf-8")
    with pytest.raises(MissingIndexError):
        store.open_index(tmp_path / "index")


def test_missing_folder_says_to_build_it(tmp_path):
    with pytest.raises(MissingIndexError) as err:
        store.open_index(tmp_path / "none")
    assert "faqbot index" in str(err.value)


def test_older_format_is_stale_not_misread(index_copy):
    m = _manifest(index_copy)
    m["format_version"] = 1
    _write_manifest(index_copy, m)
    with pytest.raises(StaleIndexError) as err:
        store.open_index(index_copy)
    assert "faqbot index" in str(err.value)


def test_checks_behind_the_checksums_catch_inconsistent_bm25(index_copy):
    """A BM25 folder whose manifest was rewritten to match (e.g. by hand) still cannot index past its items."""
    stored = store.open_index(index_copy)
    n_docs = stored.lexical.n_docs
    stored.lexical.bm25.scores["indices"][0] = n_docs + 5
    assert "outside the documents" in stored.lexical.check()


@pytest.mark.slow
@pytest.mark.parametrize("fault", [
    lambda d: _truncate(d / "bm25" / "data.csc.index.npy"),
    lambda d: _garble(d / "bm25" / "indices.csc.index.npy"),
    _shuffle_vocab,
    lambda d: _delete(d / "bm25" / "indptr.csc.index.npy"),
    lambda d: _truncate(d / "vectors.faiss"),
    _files_null,
], ids=["bm25-truncated", "bm25-garbled", "vocab-shuffled", "bm25-deleted", "vectors-truncated", "files-null"])
def test_faqbot_ask_on_a_damaged_folder_prints_one_line_and_exits_2(index_copy, fault):
    fault(index_copy)
    proc = subprocess.run([*FAQBOT, "ask", "--index", str(index_copy), "How do I uninstall MindSpore?"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("faqbot: ") and "run `faqbot index`" in lines[0]


# ------------------------------------------------------------------ loading never builds


@pytest.mark.slow
def test_ask_with_a_stale_index_refuses_and_leaves_the_folder_untouched(real_index_copy, tmp_path, corpus_dir):
    index_copy = real_index_copy
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    page = next(corpus.rglob("installation.md"))
    page.write_text(page.read_text(encoding="utf-8") + "\n\nQ: A new question?\n\nA: A new answer.\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in index_copy.rglob("*") if p.is_file()}
    proc = subprocess.run([*FAQBOT, "ask", "--index", str(index_copy), "--corpus", str(corpus), "uninstall"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "changed since the index was built" in proc.stderr and "faqbot index" in proc.stderr
    assert {p: p.read_bytes() for p in index_copy.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("command", [["index"], ["ask", "uninstall"]])
def test_an_empty_model_is_a_usage_error_not_a_rebuild(command, capsys, tmp_path):
    from faqbot.cli import main

    assert main([*command, "--model", "", "--index", str(tmp_path / "index")]) == 2
    err = capsys.readouterr().err
    assert "model" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "index").exists()  # nothing was built


# ------------------------------------------------------------------ atomic save, SIGKILL, recovery


def _run_until_paused(cmd: list[str], point: str, timeout: float = 240) -> subprocess.Popen:
    env = {**os.environ, store.PAUSE_ENV: point, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline, seen = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            seen += chunk
            if f"paused at {point}".encode() in seen:
                return proc
            if not chunk:
                break
    proc.kill()
    raise AssertionError(f"never reached {point}: {seen.decode(errors='replace')[-2000:]}")


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


RESAVE = """
import sys
from faqbot import store
s = store.open_index(sys.argv[1])
s.dense.manifest["note"] = "new"
store.save(s, sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("point,expected", [("written", None), ("between-renames", "new"), ("swapped", "new")])
def test_save_killed_at_any_point_leaves_old_or_new_and_no_leftovers(index_copy, point, expected):
    (index_copy / "models" / "other").mkdir(parents=True)  # another model's index must survive too
    (index_copy / "models" / "other" / "keep.txt").write_text("x", encoding="utf-8")
    proc = _run_until_paused([PY, "-c", RESAVE, str(index_copy)], point)
    _kill(proc)
    parent = index_copy.parent
    if point == "between-renames":  # the state the probe found: no index/, the two copies beside it
        assert not index_copy.exists()
        assert list(parent.glob(".index.old-*")) and list(parent.glob(".index.tmp-*"))

    stored = store.open_index(index_copy)  # repairs, then verifies every file
    assert stored.manifest.get("note") == expected
    assert stored.lexical.n_docs == len(stored.dense.items)
    assert sorted(p.name for p in parent.iterdir()) == ["index"]  # leftovers cleaned up
    assert (index_copy / "models" / "other" / "keep.txt").read_text(encoding="utf-8") == "x"


def test_save_swaps_the_whole_folder_and_keeps_other_models(index_copy):
    (index_copy / "models" / "m").mkdir(parents=True)
    (index_copy / "models" / "m" / "manifest.json").write_text("{}", encoding="utf-8")
    (index_copy / "README.md").write_text("what goes here", encoding="utf-8")  # the default index/ keeps one
    stored = store.open_index(index_copy)
    stored.dense.manifest["note"] = "second"
    store.save(stored, index_copy)
    again = store.open_index(index_copy)
    assert again.manifest["note"] == "second" and "README.md" not in again.manifest["files"]
    assert (index_copy / "models" / "m" / "manifest.json").exists()
    assert (index_copy / "README.md").read_text(encoding="utf-8") == "what goes here"
    assert sorted(p.name for p in index_copy.parent.iterdir()) == ["index"]


def test_orphaned_incomplete_tmp_is_removed_and_index_kept(index_copy):
    junk = index_copy.parent / ".index.tmp-abc123"
    junk.mkdir()
    (junk / "vectors.faiss").write_bytes(b"half")
    store.open_index(index_copy)
    assert not junk.exists()


def test_only_an_old_copy_left_is_restored(index_copy):
    old = index_copy.parent / ".index.old-xyz"
    index_copy.rename(old)
    stored = store.open_index(index_copy)
    assert stored.dense.n_vectors > 0 and not old.exists()


# ------------------------------------------------------------------ read-only folder, full disk (own mount namespace)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, corpus_dir) -> Path:
    root = tmp_path_factory.mktemp("small") / "corpus"
    for lang in ("source_en", "source_zh_cn"):
        rel = Path("mindspore-r1.1/docs/faq") / lang / "programming_language_extensions.md"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus_dir / rel, root / rel)
    return root


def _in_private_mount(script: str) -> subprocess.CompletedProcess:
    faqbot = " ".join(FAQBOT)
    return subprocess.run(["unshare", "-rm", "sh", "-c", script.replace("FAQBOT", faqbot)],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_index_on_a_read_only_folder_says_so_in_one_line(private_mounts, small_corpus):
    proc = _in_private_mount(
        f"mount -t tmpfs -o size=8m tmpfs /mnt && mkdir /mnt/idx && mount -o remount,ro /mnt && "
        f"FAQBOT index --corpus {small_corpus} --index /mnt/idx/index"
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "read-only" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_index_on_a_full_disk_says_so_and_keeps_the_old_index(private_mounts, small_corpus):
    # a 2 MB disk: the first build fits, then a filler leaves too little room for the second save
    proc = _in_private_mount(
        f"mount -t tmpfs -o size=2m tmpfs /mnt && "
        f"FAQBOT index --corpus {small_corpus} --index /mnt/index >/dev/null 2>&1 && "
        f"(dd if=/dev/zero of=/mnt/filler bs=64k 2>/dev/null; true) && "
        f"FAQBOT index --corpus {small_corpus} --index /mnt/index; echo rc=$? >&2; "
        f"rm /mnt/filler; FAQBOT index --check --corpus {small_corpus} --index /mnt/index >&2; ls -a /mnt >&2"
    )
    assert "rc=1" in proc.stderr, proc.stderr
    assert "no space left" in proc.stderr and "Traceback" not in proc.stderr
    assert "is up to date" in proc.stderr  # the old index was left intact
    assert ".index.tmp-" not in proc.stderr  # no half-written copy left behind


# ------------------------------------------------------------------ alternates file


def _alt(question="怎么卸载", item=UNINSTALL, lang="zh") -> Alternate:
    return Alternate(id=item, lang=lang, question=question, approved_by="reviewer", approved_at="2026-11-28")


@pytest.mark.parametrize("line,why", [
    ('{"id": "x", "lang": "zh"', "bad JSON"),
    ('{"id": "nope/nope", "lang": "zh", "question": "q", "approved_by": "a", "approved_at": "2026-11-28"}', "unknown item id"),
    (f'{{"id": "{UNINSTALL}", "lang": "zh", "question": "  ", "approved_by": "a", "approved_at": "2026-11-28"}}', "empty question"),
    (f'{{"id": "{UNINSTALL}", "lang": "fr", "question": "q", "approved_by": "a", "approved_at": "2026-11-28"}}', "lang"),
    (f'{{"id": "{UNINSTALL}", "lang": "en", "question": "q", "approved_by": "a", "approved_at": "yesterday"}}', "ISO date"),
    (f'{{"id": "{UNINSTALL}", "lang": "en", "question": "q"}}', "missing approved_by"),
])
def test_broken_alternates_line_is_named(tmp_path, line, why):
    path = tmp_path / "alternates.jsonl"
    good = json.dumps(_alt().to_json(), ensure_ascii=False)
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(AlternatesError) as err:
        load_alternates(path, item_ids={UNINSTALL})
    assert "line 3" in str(err.value) and why in str(err.value) and str(path) in str(err.value)


def test_append_skips_repeats_and_remove_takes_lines_out(tmp_path):
    path = tmp_path / "alternates.jsonl"
    assert append_alternates(path, [_alt("怎么卸载"), _alt("怎么卸载")]) == [_alt("怎么卸载")]
    assert append_alternates(path, [_alt("怎么卸载"), _alt("how to remove it", lang="en")]) == [_alt("how to remove it", lang="en")]
    assert load_alternates(path) == [_alt("怎么卸载"), _alt("how to remove it", lang="en")]
    assert remove_alternates(path, [_alt("怎么卸载")]) == 1
    assert load_alternates(path) == [_alt("how to remove it", lang="en")]
    with pytest.raises(AlternatesError):
        append_alternates(path, [_alt("  ")])


# ------------------------------------------------------------------ alternates in the index


def test_alternates_are_question_rows_and_bm25_words_of_their_item(fake_corpus, fake_embedder, tmp_path):
    corpus_dir = Path(fake_corpus.root)
    item = next(it for it in fake_corpus.items if "zh" in it.entries)
    wording = "彻底清除 zxqwvframework 的办法"
    alt_file = tmp_path / "alternates.jsonl"
    append_alternates(alt_file, [_alt(wording, item=item.id)])
    built = store.build(fake_corpus, fake_embedder, tmp_path / "index", progress=False, alternates_file=alt_file)
    idx = [it.id for it in built.dense.items].index(item.id)
    rows = built.dense.rows[built.dense.item_rows(idx)]
    alt_rows = rows[(rows["kind"] == 0) & (rows["chunk"] > 0)]
    assert len(alt_rows) == 1 and built.manifest["counts"]["alternate_vectors"] == 1
    vec = built.dense.vectors[built.dense.item_rows(idx)][(rows["kind"] == 0) & (rows["chunk"] > 0)][0]
    np.testing.assert_allclose(vec, fake_embedder.embed_symmetric([wording])[0], atol=1e-5)
    scores = built.lexical.scores("zxqwvframework")
    assert int(np.argmax(scores)) == idx and (scores > 0).sum() == 1
    assert built.manifest["alternates"]["count"] == 1
    # the stale check follows <corpus>/alternates.jsonl
    ok, why = store.index_status(tmp_path / "index", fake_embedder.name, corpus_dir)
    assert not ok and "alternates.jsonl" in why and "faqbot index" in why


def test_apply_alternates_embeds_only_new_questions_and_can_undo(fake_corpus, fake_embedder, tmp_path):
    alt_file = tmp_path / "alternates.jsonl"
    index_dir = tmp_path / "index"
    base = store.build(fake_corpus, fake_embedder, index_dir, progress=False, alternates_file=alt_file)
    item = fake_corpus.items[0].id
    append_alternates(alt_file, [_alt("第一种说法", item=item), _alt("another wording", item=item, lang="en")])
    summary = store.apply_alternates(index_dir, fake_embedder, alt_file)
    assert summary["changed"] and summary["added"] == 2 and summary["embedded"] == 2 and summary["removed"] == 0
    after = store.open_index(index_dir)
    assert after.manifest["alternates"] == {"file": "alternates.jsonl", "count": 2,
                                            "sha256": store.alternates_fingerprint(alt_file.read_bytes())}
    assert after.dense.n_vectors == base.dense.n_vectors + 2
    np.testing.assert_array_equal(after.dense.vectors[after.dense.rows["chunk"] == 0][: 10],
                                  base.dense.vectors[base.dense.rows["chunk"] == 0][: 10])
    assert store.apply_alternates(index_dir, fake_embedder, alt_file)["changed"] is False

    append_alternates(alt_file, [_alt("第三种", item=item)])
    remove_alternates(alt_file, [_alt("第一种说法", item=item)])
    summary = store.apply_alternates(index_dir, fake_embedder, alt_file)
    assert (summary["added"], summary["removed"], summary["embedded"]) == (1, 1, 1)
    remove_alternates(alt_file, load_alternates(alt_file))
    store.apply_alternates(index_dir, fake_embedder, alt_file)
    final = store.open_index(index_dir)
    np.testing.assert_array_equal(final.dense.rows, base.dense.rows)
    np.testing.assert_array_equal(final.dense.vectors, base.dense.vectors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alternates.jsonl", "index"]


def test_apply_alternates_names_a_broken_line_and_changes_nothing(fake_corpus, fake_embedder, tmp_path):
    alt_file = tmp_path / "alternates.jsonl"
    store.build(fake_corpus, fake_embedder, tmp_path / "index", progress=False, alternates_file=alt_file)
    before = {p: p.read_bytes() for p in (tmp_path / "index").rglob("*") if p.is_file()}
    alt_file.write_text('{"id": "gone/item", "lang": "en", "question": "q", "approved_by": "a", "approved_at": "2026-11-28"}\n',
                        encoding="utf-8")
    with pytest.raises(AlternatesError) as err:
        store.apply_alternates(tmp_path / "index", fake_embedder, alt_file)
    assert "line 1" in str(err.value) and "unknown item id" in str(err.value)
    assert {p: p.read_bytes() for p in (tmp_path / "index").rglob("*") if p.is_file()} == before


def test_alternate_wording_finds_its_item_and_removing_it_undoes_that(real_index_copy, embedder, tmp_path):
    """Real model, real index copy: the wording lands elsewhere today; approved, it finds the uninstall entry."""
    index_copy = real_index_copy
    from faqbot.search import Retriever

    def top(q: str) -> str:
        stored = store.open_index(index_copy)
        return Retriever(stored.dense, stored.lexical, embedder).search(q, k=3).hits[0].item.id

    assert top(UNINSTALL_WORDING) != UNINSTALL
    alt_file = tmp_path / "alternates.jsonl"
    append_alternates(alt_file, [_alt(UNINSTALL_WORDING)])
    summary = store.apply_alternates(index_copy, embedder, alt_file)
    assert summary["embedded"] == 1 and summary["added"] == 1
    assert top(UNINSTALL_WORDING) == UNINSTALL
    assert top("How do I uninstall MindSpore?") == UNINSTALL  # the item's own questions still work

    remove_alternates(alt_file, [_alt(UNINSTALL_WORDING)])
    assert store.apply_alternates(index_copy, embedder, alt_file)["removed"] == 1
    assert top(UNINSTALL_WORDING) != UNINSTALL
    assert _manifest(index_copy)["counts"]["alternate_vectors"] == 0


APPLY = """
import sys
from faqbot import store
from faqbot.embed import load_embedder
print(store.apply_alternates(sys.argv[1], load_embedder(None), sys.argv[2]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("point,count", [("written", 0), ("between-renames", 1)])
def test_apply_alternates_killed_mid_update_leaves_old_or_new(real_index_copy, tmp_path, point, count):
    index_copy = real_index_copy
    alt_file = tmp_path / "alts" / "alternates.jsonl"
    append_alternates(alt_file, [_alt(UNINSTALL_WORDING)])
    proc = _run_until_paused([PY, "-c", APPLY, str(index_copy), str(alt_file)], point)
    _kill(proc)
    stored = store.open_index(index_copy)
    assert stored.manifest["alternates"]["count"] == count
    assert stored.manifest["counts"]["alternate_vectors"] == count
    assert stored.lexical.n_docs == len(stored.dense.items)
    assert sorted(p.name for p in index_copy.parent.iterdir()) == ["alts", "index"]


@pytest.mark.slow
def test_faqbot_index_picks_up_alternates_and_check_follows_them(small_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(small_corpus, corpus)
    index_dir = tmp_path / "index"
    from faqbot.sources import load_corpus

    item = load_corpus(corpus).items[0].id
    append_alternates(alternates_path(corpus), [_alt("an approved other wording", item=item, lang="en")])
    run = subprocess.run([*FAQBOT, "index", "--corpus", str(corpus), "--index", str(index_dir)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "1 alternate questions" in run.stdout
    check = [*FAQBOT, "index", "--check", "--corpus", str(corpus), "--index", str(index_dir)]
    assert subprocess.run(check, capture_output=True, text=True, timeout=300).returncode == 0

    with open(alternates_path(corpus), "a", encoding="utf-8") as fh:
        fh.write('{"id": "nope", "lang": "en", "question": "q", "approved_by": "a", "approved_at": "2026-11-28"}\n')
    stale = subprocess.run(check, capture_output=True, text=True, timeout=300)
    assert stale.returncode == 1 and "alternates.jsonl changed" in stale.stdout
    broken = subprocess.run([*FAQBOT, "index", "--corpus", str(corpus), "--index", str(index_dir)],
                            capture_output=True, text=True, timeout=600)
    assert broken.returncode == 2 and "line 2" in broken.stderr and "unknown item id" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_rebuild_after_bm25_damage_reuses_every_vector(fake_corpus, fake_embedder, tmp_path):
    """A damaged BM25 file costs a rebuild of BM25 only: the dense vectors, still intact, are reused."""
    index_dir = tmp_path / "index"
    store.build(fake_corpus, fake_embedder, index_dir, progress=False)
    _garble(index_dir / "bm25" / "data.csc.index.npy")
    with pytest.raises(CorruptIndexError):
        store.open_index(index_dir)
    rebuilt = store.build(fake_corpus, fake_embedder, index_dir, progress=False)
    assert rebuilt.manifest["counts"]["embedded"] == 0
    store.open_index(index_dir)
