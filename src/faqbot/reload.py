"""A running app picks up a changed index folder (an approved alternate question, `faqbot index`) within seconds,
without a restart.

Why polling: the check is one `stat` of the manifest every few seconds (the manifest is replaced last on every
save), which costs nothing and needs no signal plumbing across Docker, Spaces and replicas. On a change the folder
is opened and verified like at start (checksums, model, staleness), in this background thread, and only then is
the new retriever put in place; a folder that fails the checks is logged in one line and the app keeps serving
the index it has.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def manifest_stamp(index_dir: Path) -> tuple[int, int, int] | None:
    """What changes when the folder is saved again: the manifest's inode, size and modification time."""
    from faqbot.store import MANIFEST

    try:
        st = os.stat(Path(index_dir) / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class IndexWatcher:
    """Watches `settings.model_index_dir` for `holder` (anything with a `retriever` attribute, e.g. web.FaqChat):
    on a change, a new Retriever over the new folder, with the same model instances, ranking parameters and
    calibration, replaces `holder.retriever`. `health` (RestApi.health) gets the new index line for /healthz."""

    def __init__(self, settings: Any, holder: Any, health: dict | None = None, interval: float = 2.0):
        self.settings = settings
        self.holder = holder
        self.health = health if health is not None else {}
        self.interval = float(interval)
        # the folder the running index was loaded from (the settings' one when the index does not know)
        self.index_dir = Path(getattr(holder.retriever.index, "path", None) or settings.model_index_dir)
        self._stamp = manifest_stamp(self.index_dir)
        self._failed: tuple | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reloads = 0

    def check(self) -> bool:
        """Reload when the folder changed since the last look; True when a new index was put in place."""
        stamp = manifest_stamp(self.index_dir)
        if stamp is None or stamp == self._stamp:
            return False
        from faqbot import store
        from faqbot.index import IndexLoadError
        from faqbot.search import Retriever

        old = self.holder.retriever
        try:
            opened = store.open_index(self.index_dir, old.embedder.name, self.settings.corpus_dir)
        except IndexLoadError as exc:
            if self._failed != stamp:  # once per version of the folder, not every few seconds
                self._failed = stamp
                log.warning("the index in %s changed but cannot be loaded (%s); still serving the previous one",
                            self.index_dir, " ".join(str(exc).split())[:300])
            return False
        if [it.id for it in opened.dense.items] != [it.id for it in old.items]:
            # other items (a corpus rebuilt): the app's filters and sessions were made for the old ones
            if self._failed != stamp:
                self._failed = stamp
                log.warning("the index in %s now has other FAQ items; restart the app to serve them", self.index_dir)
            return False
        self.holder.retriever = Retriever(opened.dense, opened.lexical, old.embedder, old.params, old.calibration)
        self._stamp = stamp
        self.reloads += 1
        self.health.update(index_ok=True, index_message=store.describe(self.index_dir, opened.manifest))
        log.info("reloaded the index in %s (%s alternate questions)", self.index_dir,
                 opened.manifest.get("counts", {}).get("alternate_vectors", 0))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watcher must never stop the app; logged once per failure
                log.exception("checking the index in %s for changes failed", self.index_dir)

    def start(self) -> "IndexWatcher":
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="faqbot-index-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
