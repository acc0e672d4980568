"""The served app: the Gradio chat and API (web.py) and the REST routes (rest.py) on one server and port,
behind the request limits. This is the one module that knows both front ends; they know only the service.

    demo = build_app(retriever, settings)   # then launch(demo, host, port) or serve(...)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import re
import threading
from typing import Any

import gradio as gr

from faqbot.answer import DEFAULT_BANDS, Bands
from faqbot.config import Settings, SettingsError
from faqbot.connections import bound_connections
from faqbot.feedback import FeedbackStore
from faqbot.guard import HostGuard
from faqbot.reload import IndexWatcher
from faqbot.rest import RequestLimits, RestApi
from faqbot.service import InputError, index_health
from faqbot.web import CSS, STATE_SESSION_CAPACITY, THEME, build_blocks, complete_api_call


log = logging.getLogger(__name__)
PRUNE_SECONDS = 1.0  # finished sessions (and their inputs) live at most about this long
API_CALL = re.compile(r"^/gradio_api/(?:call|run)/([a-z_]+)/?$")  # a plain-HTTP call of a named Gradio API


def build_app(retriever: Any, settings: Settings, *, bands: Bands = DEFAULT_BANDS, store: FeedbackStore | None = None) -> gr.Blocks:
    """The Blocks app around a loaded retriever, with the REST routes over the same service. Start it with
    `launch()` (or `demo.launch(**launch_options(demo))`), which serves both on one port."""
    demo = build_blocks(retriever, settings, bands=bands, store=store, health=index_health(settings, getattr(retriever, "index", None)))
    chat = demo.faqbot_chat
    chat.store.start()  # connects and migrates off the request path; warns once if feedback cannot be saved
    wake_queue_on_change(getattr(demo, "_queue", None))  # no 1 kHz polling by Gradio's scheduler
    demo.faqbot_rest = RestApi(chat.service, workers=getattr(retriever.embedder, "instances", 1))
    # an approved alternate (or a rebuilt index) is served within seconds, without a restart (reload.py)
    demo.faqbot_watcher = IndexWatcher(settings, chat.service, chat.service.index_health, settings.reload_seconds).start()
    return demo


def _rewrite(path: str, body: bytes) -> bytes:
    """An old client's plain-HTTP Gradio API call with its missing trailing inputs filled in
    (web.complete_api_call); any other body as it is. A call that is JSON but no call is an InputError (422)."""
    api = API_CALL.match(path)
    if not api:
        return body
    try:
        payload = json.loads(body)
    except ValueError:
        return body  # Gradio answers a body that is not JSON itself
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        # Gradio answered e.g. {"data": Infinity} with a plain-text 500
        raise InputError(f'a call of /{api.group(1)} is a JSON object whose "data" is the list of its inputs; send '
                         '{"data": ["your question"]}.', 422)
    data = complete_api_call(api.group(1), payload["data"])
    if data is payload["data"]:
        return body
    return json.dumps({**payload, "data": data}).encode("utf-8")


def launch_options(demo: gr.Blocks | None = None) -> dict:
    """What `launch()` needs besides host and port: look and feel (Gradio 6 moved theme and css there), the
    session-state bound, errors shown to API clients (`show_error`: a refused input carries its message, never
    `{"error": null}`), and, given the app from `build_app`, the REST routes, the request limits and the
    lifespan that prunes finished sessions, passed to Gradio's FastAPI app as it is created."""
    options = {"theme": THEME, "css": CSS, "footer_links": ["api"], "state_session_capacity": STATE_SESSION_CAPACITY,
               "show_error": True}
    rest = getattr(demo, "faqbot_rest", None)
    if rest is not None:
        from starlette.middleware import Middleware

        options["app_kwargs"] = {"routes": rest.routes(), "lifespan": lifespan_with_pruning(demo),
                                 "middleware": [Middleware(HostGuard, allowed_hosts=rest.service.settings.allowed_hosts),
                                                Middleware(RequestLimits, service=rest.service, rewrite=_rewrite)]}
    return options


def launch(demo: gr.Blocks, host: str, port: int, share: bool = False, quiet: bool = False) -> None:
    """Start serving in background threads: the chat, its Gradio API, `/api/search` and `/healthz`."""
    preload_call_imports()
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=quiet,
                **launch_options(demo))
    template_sessions(demo)  # a new Gradio session (every plain-HTTP API call is one) copies a template
    chat = getattr(demo, "faqbot_chat", None)
    if chat is not None:  # Gradio passes no options to uvicorn: idle and slow connections are bounded here
        settings = chat.service.settings
        bound_connections(getattr(demo, "server", None), settings.read_timeout_seconds, settings.idle_timeout_seconds)


def preload_call_imports() -> None:
    """Gradio switches matplotlib to its "agg" backend around every event, inside its event loop; the first time,
    that imports matplotlib and pyplot there, and for about 0.4 s no request (not even /healthz) is answered.
    Done once before serving instead."""
    try:
        from gradio.utils import MatplotlibBackendMananger  # Gradio's own (misspelt) name; gone in a later Gradio: skipped

        with MatplotlibBackendMananger():
            pass
    except Exception as exc:  # noqa: BLE001 - a warm-up must not stop the app; the first event pays it then
        log.warning("could not preload matplotlib for Gradio's events: %s", exc)


def serve(demo: gr.Blocks, host: str, port: int, share: bool = False) -> None:
    """Serve until interrupted. A share link that cannot be made is reported; the app keeps serving locally."""
    launch(demo, host, port, share=share)
    if share and not demo.share_url:
        print(
            "\nfaqbot: no public share link: Gradio could not reach its share server (this machine is offline or "
            f"the frpc tunnel binary is missing). The chat is still served locally at {demo.local_url} ; "
            "run without --share, or deploy as a Hugging Face Space (see README).",
            flush=True,
        )
    demo.block_thread()


def default_host() -> str:
    """Hugging Face Spaces (and Docker setups) pass the address through Gradio's own variables."""
    return os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")


def default_port() -> int:
    """$GRADIO_SERVER_PORT (plain digits, 1-65535) or 7860; anything else is a SettingsError in one line."""
    text = os.environ.get("GRADIO_SERVER_PORT", "").strip() or "7860"
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise SettingsError(f"GRADIO_SERVER_PORT={text[:40]!r} is not a port number; give one from 1 to 65535, "
                            "or pass --port")
    return int(text)


# ------------------------------------------------------------------------------------------ Gradio's growth bounds


def prune_finished_sessions(queue: Any) -> int:
    """Drop the session keys of Gradio's `Queue.pending_event_ids_session` whose event set is empty.

    Why this touches a Gradio internal: Gradio 6.31 (the newest release) removes each finished event id from
    its session's set but never the session key, and every plain-HTTP API call is a new session. The dict grows
    by one key per call forever (10,839 after 10,839 calls), and `GET /gradio_api/call/<api>/<event_id>` scans
    it linearly, so each call gets slower. No setting bounds it. Only empty sets are dropped: an empty set means
    the session has no event waiting, which is exactly when Gradio itself would drop it (`clean_events`). Run it
    on the server's event loop, where Gradio reads and writes this dict, so it never interleaves with them."""
    pending = getattr(queue, "pending_event_ids_session", None)
    if not isinstance(pending, dict):
        return 0
    empty = [session for session, ids in list(pending.items()) if not ids]
    for session in empty:
        if not pending.get(session, True):
            pending.pop(session, None)
    return len(empty)


def prune_api_sessions(blocks: Any, pending: dict | None = None) -> int:
    """Drop the session state of finished Gradio sessions that hold no `gr.State`: the plain-HTTP API calls.

    Why: Gradio keeps a `SessionState` per session (`blocks.state_holder`, up to `state_session_capacity` of them)
    and copies each call's inputs into it (`_update_value_in_config`). Every plain-HTTP call of `/ask` or
    `/search` is a new session, so the last 2,000 calls' inputs stayed in memory: 100 calls with ~1 MB of history
    kept +52 MB (docs/performance.md). A session of the chat holds its Conversation in a `gr.State` from its
    first event on, so it is never dropped here; nor is a session with an event still waiting or running
    (`pending`: the queue's `pending_event_ids_session`). Should a dropped session call again, Gradio makes it a
    fresh state, as for any new session."""
    holder = getattr(blocks, "state_holder", None)
    sessions = getattr(holder, "session_data", None)
    if not isinstance(sessions, dict):
        return 0
    pending = pending or {}
    dropped = 0
    with holder.lock:
        for session, state in list(sessions.items()):
            if not getattr(state, "state_data", True) and not pending.get(session):
                sessions.pop(session, None)
                holder.time_last_used.pop(session, None)
                dropped += 1
    return dropped


def lifespan_with_pruning(blocks: Any, every: float = PRUNE_SECONDS):
    """A FastAPI lifespan (given to Gradio's app through `launch(app_kwargs=...)`) that prunes finished
    sessions (and the state of finished API-call sessions) every few seconds on the server's own event loop."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                queue = getattr(blocks, "_queue", None)
                if queue is not None:
                    prune_api_sessions(blocks, getattr(queue, "pending_event_ids_session", None))
                    prune_finished_sessions(queue)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    return lifespan


# ------------------------------------------------------------------------------------------ Gradio's per-request costs

QUEUE_IDLE_SECONDS = 0.05  # the longest Gradio's scheduler sleeps unwoken (a safety net: every change wakes it)


class QueueWake(float):
    """Gradio's `Queue.sleep_when_free` as a wait that ends when the queue changes (an event pushed, an event
    finished) or after `float(self)` seconds at the latest.

    Why: Gradio 6.31's scheduler (`Queue.start_processing`) sleeps 1 ms and looks again, idle or not: about
    1,000 wake-ups a second on the event loop: the served app took 5.4% of a core with no request at all, 1.4%
    with this wait, and under load the scheduler took the GIL and a core from the model threads about once a
    millisecond. The scheduler itself is Gradio's, unchanged: only its sleep ends
    at the change instead of 1 ms later."""

    def __new__(cls, seconds: float) -> "QueueWake":
        wake = super().__new__(cls, seconds)
        wake._changed = None  # (loop, asyncio.Event): made on the loop that waits
        return wake

    def _event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._changed is None or self._changed[0] is not loop:
            self._changed = (loop, asyncio.Event())
        return self._changed[1]

    def wake(self) -> None:
        """The queue changed: the scheduler looks again now. From another thread than the waiting loop's, the
        wake-up is handed to that loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # another thread: the loop that waits sets it (a closed loop waits no more)
            changed = self._changed
            if changed is not None:
                with contextlib.suppress(RuntimeError):
                    changed[0].call_soon_threadsafe(changed[1].set)
            return
        self._event().set()

    async def wait(self) -> None:
        changed = self._event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), float(self))
        changed.clear()  # cleared before the scheduler looks: a change after this point wakes it again


class _QueueAsyncio:
    """`asyncio` as `gradio.queueing` sees it: the module itself, except that a sleep of a QueueWake waits for
    the queue to change. Any other sleep (a plain number) is asyncio's own."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: Any, result: Any = None) -> Any:
        if isinstance(delay, QueueWake):
            await delay.wait()
            return result
        return await asyncio.sleep(delay, result)


def wake_queue_on_change(queue: Any, idle_seconds: float = QUEUE_IDLE_SECONDS) -> bool:
    """Gradio's scheduler woken by the queue's own changes instead of polling every millisecond (QueueWake says
    why). The events it runs, their order and their concurrency limits are unchanged. A Gradio whose queue
    lacks these parts keeps its own polling: False."""
    try:
        import gradio.queueing as queueing
    except ImportError:  # pragma: no cover - Gradio is a dependency
        return False
    if queue is None or not all(hasattr(queue, name) for name in ("sleep_when_free", "push", "process_events")) \
            or not hasattr(queueing, "asyncio"):
        return False
    if isinstance(queue.sleep_when_free, QueueWake):
        return True
    if not isinstance(queueing.asyncio, _QueueAsyncio):
        queueing.asyncio = _QueueAsyncio()
    push, process_events = queue.push, queue.process_events

    def changed() -> None:
        wake = queue.sleep_when_free
        if isinstance(wake, QueueWake):
            wake.wake()

    async def pushed(*args: Any, **kwargs: Any) -> Any:
        try:
            return await push(*args, **kwargs)
        finally:
            changed()

    async def processed(*args: Any, **kwargs: Any) -> Any:
        try:
            return await process_events(*args, **kwargs)
        finally:
            changed()  # its concurrency slot is free again

    queue.push, queue.process_events = pushed, processed
    queue.sleep_when_free = QueueWake(idle_seconds)
    return True


# The attributes of a Gradio 6.31 SessionState right after it is made. Another Gradio (other attributes) keeps
# making its sessions itself: a copied session must hold nothing this list does not name.
SESSION_ATTRIBUTES = frozenset({"blocks_config", "config_values", "state_data", "_state_ttl", "is_closed",
                                "STATE_TTL_WHEN_CLOSED"})


class SessionTemplate:
    """New Gradio sessions copied from one made by Gradio itself, instead of made from scratch.

    Why: every plain-HTTP call of `/ask` or `/search` is a new Gradio session, and Gradio's `SessionState()`
    renders the config of every block of the app for it (`config_for_block`, `inspect.signature` of each
    component's constructor: 23 blocks, 0.8 ms of CPU a call, in the event loop; about a quarter of what
    Gradio adds to an `/ask` call). Those configs depend only on the app's blocks, so they are rendered once
    here, and a new session gets its own copy of each: its own top-level dict and "props" dict (the only parts
    Gradio changes in place: `_update_value_in_config` sets props["value"]), its own `blocks_config` copy and
    empty state, as Gradio's own constructor gives. The template is made again when the app's blocks change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._template: Any = None
        self._blocks: Any = None  # the Blocks it was made for
        self._made_from: tuple = ()  # (the blocks dict, a copy of it): the blocks the configs were rendered from

    def _current(self, blocks: Any) -> Any:
        """The template for these blocks as they are now (None: this Gradio's sessions are not copied)."""
        from gradio.state_holder import SessionState

        now = blocks.default_config.blocks
        with self._lock:
            if self._template is not None and self._blocks is blocks and self._made_from[0] is now \
                    and len(now) == len(self._made_from[1]) and all(now.get(k) is v for k, v in self._made_from[1].items()):
                return self._template
            template = SessionState(blocks)
            if set(vars(template)) != SESSION_ATTRIBUTES:
                return None
            self._template, self._blocks, self._made_from = template, blocks, (now, dict(now))
            return template

    def new(self, blocks: Any) -> Any:
        """A new session for `blocks`: what `gradio.state_holder.SessionState(blocks)` gives."""
        from gradio.state_holder import SessionState

        template = self._current(blocks)
        if template is None:
            return SessionState(blocks)
        session = copy.copy(template)  # the same attributes, then a fresh copy of each mutable one
        session.blocks_config = copy.copy(blocks.default_config)
        session.config_values = {k: _own_config(v) for k, v in template.config_values.items()}
        session.state_data = {}
        session._state_ttl = {}
        session.is_closed = False
        return session


def _own_config(config: dict) -> dict:
    own = dict(config)
    if isinstance(own.get("props"), dict):
        own["props"] = dict(own["props"])
    return own


def template_sessions(blocks: Any) -> bool:
    """Gradio's session store of a launched app makes its new sessions from a SessionTemplate. False (nothing
    changed) where the store is not Gradio 6's StateHolder."""
    try:
        from gradio.state_holder import StateHolder
    except ImportError:  # pragma: no cover - Gradio is a dependency
        return False
    holder = getattr(blocks, "state_holder", None)
    if type(holder) is StateHolder:
        holder.__class__ = _TemplatedStateHolder
        holder.templates = SessionTemplate()
    return isinstance(holder, _TemplatedStateHolder)


try:
    from gradio.state_holder import StateHolder as _StateHolder
except ImportError:  # pragma: no cover - Gradio is a dependency
    _StateHolder = object


class _TemplatedStateHolder(_StateHolder):
    """Gradio's StateHolder, its new sessions copied from a SessionTemplate (the rest is Gradio's own)."""

    templates: SessionTemplate

    def __getitem__(self, session_id: str) -> Any:
        if session_id not in self.session_data:
            self.session_data[session_id] = self.templates.new(self.blocks)
        return super().__getitem__(session_id)
