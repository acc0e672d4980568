"""The repository keeps no copy of another party's files: no tracked file has the bytes of a file under
../shared (the MindSpore FAQ pages, other teams' FAQs), and no index built from them is tracked. The pages are
read from where they live (corpus/README.md)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

from conftest import CORPUS_DIR, REPO_ROOT, need_corpus

from faqbot.index import INDEX_FILES

SHARED_FAQS = REPO_ROOT.parent / "shared" / "faqs"


def _tracked() -> list[str]:
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 0, f"run the tests in a git checkout of faqbot: {proc.stderr.decode(errors='replace')}"
    return [p for p in proc.stdout.decode("utf-8").split("\0") if p]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_tracked_file_is_a_copy_of_a_shared_page():
    need_corpus()
    theirs = {}
    for root in (CORPUS_DIR, SHARED_FAQS):
        for path in root.rglob("*") if root.is_dir() else ():
            if path.is_file() and path.stat().st_size > 0:
                theirs[_sha256(path)] = path
    assert len(theirs) >= 62  # the MindSpore pages at least: the comparison really ran
    copies = {p: theirs[h] for p in _tracked() if (REPO_ROOT / p).is_file() and (h := _sha256(REPO_ROOT / p)) in theirs}
    assert copies == {}, "tracked copies of another party's files (read them from where they live instead)"


def test_no_built_index_is_tracked():
    index_names = set(INDEX_FILES) | {"vectors.faiss", "rows.npy", "items.json", "manifest.json"}
    tracked = _tracked()
    assert [p for p in tracked if p.startswith("index/") and p != "index/README.md"] == []
    assert [p for p in tracked if Path(p).name in index_names or "/bm25/" in f"/{p}"] == []


def test_the_fixture_pages_are_the_projects_own():
    """The fast tier's pages mirror the corpus's layout and formats, but not its text."""
    fixture = REPO_ROOT / "tests" / "data" / "fixture_corpus"
    pages = sorted(p.relative_to(fixture).as_posix() for p in fixture.rglob("*.md"))
    assert len(pages) == 8
    for page in pages:
        ours, theirs = fixture / page, need_corpus() / page
        assert theirs.is_file(), f"{page}: not a path of the corpus layout"
        shared_lines = set(theirs.read_text(encoding="utf-8-sig").splitlines())
        lines = ours.read_text(encoding="utf-8").splitlines()
        assert any("Q:" in line or "Q：" in line for line in lines), page
        metadata = re.compile(r"^(\[!\[.*|(`[^`]+`\s*)+)$")  # the source badge (the page's address) and tag lines
        taken = [line for line in lines if len(line) >= 40 and line in shared_lines and not metadata.match(line)]
        assert taken == [], page  # no sentence of theirs
