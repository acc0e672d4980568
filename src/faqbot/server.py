"""The served app: the Gradio chat and API (web.py) and the REST routes (rest.py) on one server and port,
behind the request limits. This is the one module that knows both front ends; they know only the service.

    demo = build_app(retriever, settings)   # then launch(demo, host, port) or serve(...)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from typing import Any

import gradio as gr

from faqbot.answer import DEFAULT_BANDS, Bands
from faqbot.config import Settings
from faqbot.feedback import FeedbackStore
from faqbot.rest import RestApi
from faqbot.service import InputError, index_health
from faqbot.web import CSS, STATE_SESSION_CAPACITY, THEME, build_blocks, complete_api_call

log = logging.getLogger(__name__)

PRUNE_SECONDS = 5.0
BODY_METHODS = ("POST", "PUT", "PATCH")
API_CALL = re.compile(r"^/gradio_api/(?:call|run)/([a-z_]+)/?$")  # a plain-HTTP call of a named Gradio API


def build_app(retriever: Any, settings: Settings, *, bands: Bands = DEFAULT_BANDS, store: FeedbackStore | None = None) -> gr.Blocks:
    """The Blocks app around a loaded retriever, with the REST routes over the same service. Start it with
    `launch()` (or `demo.launch(**launch_options(demo))`), which serves both on one port."""
    demo = build_blocks(retriever, settings, bands=bands, store=store, health=index_health(settings))
    chat = demo.faqbot_chat
    chat.store.start()  # connects and migrates off the request path; warns once if feedback cannot be saved
    demo.faqbot_rest = RestApi(chat.service, workers=getattr(retriever.embedder, "instances", 1))
    return demo


class RequestLimits:
    """ASGI middleware: the service's size and nesting limits on every request body, before Gradio or a route
    reads it (Gradio has no body limit of its own). REST bodies (/api/...) may be `max_body_bytes`, anything
    else (the chat's events, the Gradio API) `max_request_bytes`; over it: 413, JSON nested too deep: 422, both
    with a JSON message. File uploads are refused: the app takes none, and Gradio would keep them on disk."""

    def __init__(self, app: Any, service: Any):
        self.app, self.service = app, service

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path.rstrip("/").endswith("/upload"):
            await _reply(send, 413, "this app takes no file uploads.")
            return
        settings = self.service.settings
        limit = settings.max_body_bytes if path.startswith("/api/") else settings.max_request_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, f"the request body is over {limit // 1024} KB; send a shorter request.")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _reply(send, 413, f"the request body is over {limit // 1024} KB; send a shorter request.")
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            self.service.check_body(body, limit)
        except InputError as exc:
            log.info("%s refused (%d): %s", path, exc.status, exc.message)
            await _reply(send, exc.status, exc.message)
            return
        api = API_CALL.match(path)
        if api:
            body = _complete(api.group(1), body)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _complete(api: str, body: bytes) -> bytes:
    """An old client's API call with its missing trailing inputs filled in (web.complete_api_call)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body  # Gradio answers a body that is not JSON itself
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return body
    data = complete_api_call(api, payload["data"])
    if data is payload["data"]:
        return body
    return json.dumps({**payload, "data": data}).encode("utf-8")


async def _reply(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


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
                                 "middleware": [Middleware(RequestLimits, service=rest.service)]}
    return options


def launch(demo: gr.Blocks, host: str, port: int, share: bool = False, quiet: bool = False) -> None:
    """Start serving in background threads: the chat, its Gradio API, `/api/search` and `/healthz`."""
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=quiet,
                **launch_options(demo))


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
    try:
        return int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    except ValueError:
        return 7860


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


def lifespan_with_pruning(blocks: Any, every: float = PRUNE_SECONDS):
    """A FastAPI lifespan (given to Gradio's app through `launch(app_kwargs=...)`) that prunes finished
    sessions every few seconds on the server's own event loop."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                queue = getattr(blocks, "_queue", None)
                if queue is not None:
                    prune_finished_sessions(queue)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    return lifespan
