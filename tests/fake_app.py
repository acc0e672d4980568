"""The whole app on the fixture index (HashEmbedder), as a process of its own: `python tests/fake_app.py PORT`.

For tests that watch the server process from outside (its memory in /proc/<pid>/status, or its /healthz while
another client misbehaves). Settings come from the environment as for `faqbot serve` (FAQBOT_FEEDBACK_DB ...)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from conftest import CORPUS_DIR, FIXTURE_PAGES, HashEmbedder  # noqa: E402


def fake_retriever(root: Path):
    from faqbot.sources import load_corpus
    from faqbot.store import build_index
    from faqbot.lexical import LexicalIndex
    from faqbot.search import Retriever

    for page in FIXTURE_PAGES:
        (root / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CORPUS_DIR / page, root / page)
    embedder = HashEmbedder()
    index = build_index(load_corpus(root), embedder, None, progress=False, reuse=False)
    return Retriever(index, LexicalIndex.build(index.items, index.manifest.get("corpus_fingerprint") or ""), embedder)


def main() -> None:
    from faqbot.config import settings_from_env
    from faqbot.server import build_app, launch

    port = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        demo = build_app(fake_retriever(Path(tmp)), settings_from_env())
        launch(demo, "127.0.0.1", port, quiet=True)
        print(f"serving on {port}", flush=True)
        demo.block_thread()


if __name__ == "__main__":
    main()
