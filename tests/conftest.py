"""Shared fixtures: the real bundled corpus, parsed once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from faqbot.corpus import load_corpus
from faqbot.schema import Corpus

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO_ROOT / "corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_corpus(CORPUS_DIR)
