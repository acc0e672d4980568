"""The first start with no index builds it from the corpus (with its stages on stderr), then serves; a stale or
damaged index is still refused with its message, never rebuilt silently; no corpus given says how to give one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURE_CORPUS

from faqbot.config import Settings
from faqbot.index import CorruptIndexError, MissingIndexError, StaleIndexError
from faqbot.search import Retriever

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def first_start(tmp_path, fake_embedder, monkeypatch):
    """A copy of the fixture pages and an index folder holding only its README, as in a fresh clone."""
    monkeypatch.setattr("faqbot.search.load_embedder", lambda model: fake_embedder)
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=fake_embedder.name)
    settings.model_index_dir.mkdir(parents=True)
    (settings.model_index_dir / "README.md").write_text("what goes here", encoding="utf-8")
    return settings


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_missing_index_is_built_with_its_stages_then_loaded_without_building(first_start, capsys):
    with pytest.raises(MissingIndexError):  # what the CLI does: never builds
        Retriever.from_settings(first_start, rebuild=False)
    built = Retriever.from_settings(first_start, rebuild="missing")
    err = capsys.readouterr().err
    assert "1/3 reading the pages" in err and "22 entries in 8 pages, 11 items: 2/3 embedding" in err and "3/3" in err
    assert len(built.items) == 11 and built.search("How to uninstall MindSpore?").hits[0].item.entry("en").question \
        == "How to uninstall MindSpore?"
    folder = first_start.model_index_dir
    assert (folder / "README.md").read_text(encoding="utf-8") == "what goes here"  # the tracked README stays
    before = _files(folder)
    again = Retriever.from_settings(first_start, rebuild="missing")  # a later start loads it
    assert "1/3" not in capsys.readouterr().err and len(again.items) == 11 and _files(folder) == before


def test_a_stale_index_is_refused_not_rebuilt(first_start):
    Retriever.from_settings(first_start, rebuild="missing")
    page = next(Path(first_start.corpus_dir).rglob("installation.md"))
    page.write_text(page.read_text(encoding="utf-8") + "\n### Q: A new question?\n\nA: A new answer.\n", encoding="utf-8")
    before = _files(first_start.model_index_dir)
    with pytest.raises(StaleIndexError) as err:
        Retriever.from_settings(first_start, rebuild="missing")
    assert "changed since the index was built" in str(err.value) and "faqbot index" in str(err.value)
    assert _files(first_start.model_index_dir) == before


def test_a_damaged_index_is_refused_not_rebuilt(first_start):
    Retriever.from_settings(first_start, rebuild="missing")
    (first_start.model_index_dir / "rows.npy").write_bytes(b"garbage")
    before = _files(first_start.model_index_dir)
    with pytest.raises(CorruptIndexError) as err:
        Retriever.from_settings(first_start, rebuild="missing")
    assert "rows.npy" in str(err.value) and "faqbot index" in str(err.value)
    assert _files(first_start.model_index_dir) == before


def test_no_index_and_no_corpus_says_how_to_give_one(first_start):
    with pytest.raises(MissingIndexError) as err:
        Retriever.from_settings(Settings(corpus_dir=None, index_dir=first_start.index_dir, model=first_start.model),
                                rebuild="missing")
    assert "--corpus" in str(err.value) and "FAQBOT_CORPUS" in str(err.value) and "corpus/README.md" in str(err.value)


def test_a_corpus_folder_without_entries_is_refused_and_nothing_is_written(first_start, tmp_path):
    empty = tmp_path / "empty"
    (empty / "docs").mkdir(parents=True)
    (empty / "docs" / "notes.md").write_text("# Notes\n\nNo questions here.\n", encoding="utf-8")
    with pytest.raises(MissingIndexError) as err:
        Retriever.from_settings(first_start.with_(corpus_dir=empty), rebuild="missing")
    assert "no FAQ entries found" in str(err.value)
    assert _files(first_start.model_index_dir) == {"README.md": b"what goes here"}


@pytest.mark.slow  # imports Gradio
def test_the_app_with_no_index_and_a_corpus_without_entries_says_so_in_one_line(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "notes.md").write_text("# Notes\n\nNo questions here.\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(REPO / "app.py"), "--corpus", str(tmp_path / "pages"), "--index",
                           str(tmp_path / "index"), "--port", "7999"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("faqbot: building")]
    assert "cannot start the chat" in lines[-1] and "no FAQ entries found" in lines[-1], proc.stderr
    assert not (tmp_path / "index" / "manifest.json").exists()
