"""Plain JSON over HTTP beside the Gradio app, for programs: no queue, no event stream, one round trip.

    GET  /api/search?q=...&k=5&version=latest&component=<name>
    POST /api/search   {"q": "...", "k": 5, "version": "latest", "component": "<name>", "history": ["..."]}
    GET  /healthz

`/api/search` answers with exactly the object of `faqbot ask --json` (`FaqService.answer`). Bad input gets a 4xx
and `{"error": "<what to do>"}`, never a traceback; the checks and limits are the service's (service.py), this
module only parses HTTP and renders JSON, and imports no Gradio. The search runs in a thread pool with one worker per
model instance, so requests wait their turn here (measured as "queue" in the `Server-Timing` header) and never
oversubscribe the cores. The routes are handed to Gradio's FastAPI app when it is created (`app_kwargs`), so
they are served by the same server and port as the chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from faqbot.config import NUMERIC_RANGES
from faqbot.service import FaqService, InputError

log = logging.getLogger(__name__)

MAX_WAITING = 256  # requests queued for the search workers beyond this get 503 at once
FIELDS = ("q", "k", "version", "component", "history")  # history: earlier questions of the conversation, oldest first
# POST /api/feedback answers 202 only once the vote's row is committed to the feedback database, waiting at most
# this long; a vote only queued in this process's memory would be lost if the replica died, so it gets a 503.
FEEDBACK_ACK_SECONDS = 3.0
FEEDBACK_FIELDS = ("question", "item_id", "vote", "lang", "session")
SEARCH_EXAMPLE = '{"q": "your question"}'
VOTE_EXAMPLE = '{"question": "...", "item_id": "<answers[].id from /api/search>", "vote": "like"}'
HISTORY_EXAMPLE = '{"q": "一共有几种？", "history": ["怎么设置日志级别？"]}'
# Which replica answered: in every REST response, for load balancer logs and the replicas test (docs/deploy.md).
REPLICA = f"{socket.gethostname()}-{os.getpid()}"
REPLICA_HEADER = "X-Faqbot-Replica"

try:  # Gradio depends on orjson; json is the fallback
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _json(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    headers = {REPLICA_HEADER: REPLICA, **(headers or {})}
    return Response(_dumps(obj), status_code=status, media_type="application/json", headers=headers)


def _error(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


def _refused(exc: InputError, path: str) -> Response:
    """An input error: one log line (never a traceback) and a JSON 4xx saying what to send."""
    log.info("%s refused (%d): %s", path, exc.status, exc.message)
    return _error(exc.message, exc.status)


class RestApi:
    """The REST routes over one `FaqService`; `routes()` are added to the server's app."""

    def __init__(self, service: FaqService, workers: int):
        self.service = service
        self.workers = max(1, int(workers))
        self._pool: ThreadPoolExecutor | None = None
        self._votes: ThreadPoolExecutor | None = None
        self._waiting = 0

    # -- input ------------------------------------------------------------------------------------------------

    def _params(self, raw: dict[str, Any], from_query: bool) -> tuple[str, Any]:
        """(q, k) parsed from the request; the service checks the rest."""
        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise InputError(f"unknown parameter {str(unknown[0])[:40]!r}: use q, k, version, component and history.")
        q = raw.get("q")
        if q is None:
            raise InputError("missing q: give the question, e.g. /api/search?q=How+do+I+install+it")
        if not isinstance(q, str):
            raise InputError(f"q must be a string, not {type(q).__name__}.")
        try:
            q[:self.service.settings.max_question_chars].encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("q is not valid Unicode text (it contains a lone surrogate such as \\ud800); send UTF-8 text.") from None
        if not q.strip():
            raise InputError("q is empty: give the question to search for.")
        k = raw.get("k")
        if not from_query and k is not None and (isinstance(k, bool) or not isinstance(k, int)):
            low, high = NUMERIC_RANGES["k"]
            raise InputError(f"k must be a whole number from {low:g} to {high:g}, not {json.dumps(k)[:40]}.")
        return q, k

    async def _body(self, request: Request, example: str) -> dict:
        limit = self.service.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise InputError(f"the request body is over {limit // 1024} KB; send only {example}.", 413)
        body = await request.body()
        try:
            obj = self.service.read_json(body)
        except InputError as exc:
            if exc.status == 400:
                raise InputError(f"the body is not JSON: send {example} with Content-Type: application/json.") from None
            raise InputError(f"{exc.message.rstrip('.').split(';')[0]}; send only {example}.", exc.status) from None
        if not isinstance(obj, dict):
            raise InputError(f"the body must be a JSON object such as {example}, not {type(obj).__name__}.")
        return obj

    # -- work -------------------------------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="faqbot-rest")
        return self._pool

    def _search(self, enqueued: float, query: Any) -> tuple[bytes, dict]:
        """Runs on a worker thread: the search and how long each stage took."""
        started = time.perf_counter()
        embedder = self.service.retriever.embedder
        take = getattr(embedder, "take_timings", None)
        if take:
            take()  # start this request's count from zero
        out = self.service.answer_query(query).to_dict()
        searched = time.perf_counter()
        body = _dumps(out)
        done = time.perf_counter()
        model = take() if take else {"wait_s": 0.0, "model_s": 0.0}
        stages = {
            "queue": started - enqueued,
            "instance": model["wait_s"],
            "model": model["model_s"],
            "rank": max(searched - started - model["wait_s"] - model["model_s"], 0.0),
            "render": done - searched,
        }
        return body, stages

    async def search(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                raw = await self._body(request, SEARCH_EXAMPLE)
                history = raw.get("history")
            else:
                raw = dict(request.query_params)
                history = request.query_params.getlist("history")  # ?history=first&history=second
            q, k = self._params(raw, from_query=request.method != "POST")
            try:
                query = self.service.validate(q, history, k=k, version=raw.get("version"), component=raw.get("component"))
            except InputError as exc:
                if exc.field == "history":
                    raise InputError(f"{exc.message.rstrip('.')}, e.g. {HISTORY_EXAMPLE}.") from None
                raise
        except InputError as exc:
            return _refused(exc, "/api/search")
        if self._waiting >= MAX_WAITING:
            return _error("the server is busy; retry in a moment.", 503)
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            body, stages = await loop.run_in_executor(self._executor(), self._search, time.perf_counter(), query)
        except Exception:  # noqa: BLE001 - logged here; the client gets one line, never a traceback
            log.exception("/api/search failed for %r", query.question[:200])
            return _error("the search failed on the server; it is logged. Try again, or another question.", 500)
        finally:
            self._waiting -= 1
        timing = ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in stages.items())
        return Response(body, media_type="application/json", headers={"Server-Timing": timing, REPLICA_HEADER: REPLICA})

    async def healthz(self, request: Request) -> Response:
        body = await asyncio.get_running_loop().run_in_executor(None, self.service.health)
        body["search_workers"] = self.workers
        body["waiting"] = self._waiting
        return _json(body, 200 if body["status"] == "ok" else 503)

    async def feedback(self, request: Request) -> Response:
        """POST /api/feedback {"question", "item_id", "vote": "like"|"dislike", "lang"?, "session"?}: 202 once the
        vote is committed to the feedback database (so a replica killed after answering loses nothing), 503 when
        the database did not confirm it within FEEDBACK_ACK_SECONDS, 4xx for bad input."""
        guard = self._vote_guard()
        client = guard.client(request.headers, request.client.host if request.client else None)
        refused = guard.refuse(request.headers, client)  # JSON only, same origin, per-client rate (guard.py)
        if refused:
            return _json({"error": refused[1]}, refused[0], refused[2])
        try:
            raw = await self._body(request, VOTE_EXAMPLE)
            unknown = sorted(set(raw) - set(FEEDBACK_FIELDS))
            if unknown:
                raise InputError(f"unknown field {str(unknown[0])[:40]!r}: use question, item_id, vote, lang and session.")
            turn = self.service.check_vote(raw.get("question"), raw.get("item_id"), raw.get("vote"), raw.get("lang"),
                                           raw.get("session"))
        except InputError as exc:
            return _refused(exc, "/api/feedback")
        session = raw.get("session") or guard.session_of(client)  # so the per-session row cap applies
        outcome = await asyncio.get_running_loop().run_in_executor(
            self._vote_executor(), lambda: self.service.vote(turn, raw["vote"] == "like", session,
                                                             wait=FEEDBACK_ACK_SECONDS))
        if outcome == "saved":
            return _json({"status": "saved"}, 202)
        if outcome == "queued":
            return _json({"status": "queued", "error": f"the feedback database did not confirm the vote within "
                          f"{FEEDBACK_ACK_SECONDS:g} s; it stays queued on this server and is written when the database "
                          "is back, unless this server stops. Sending it again may count it twice."}, 503)
        return _json({"status": "dropped", "error": "the vote could not be saved (the feedback queue is full or the "
                      "database refused it); try again in a minute."}, 503)

    def _vote_guard(self) -> Any:
        if getattr(self, "_guard", None) is None:
            from faqbot.guard import VoteGuard

            self._guard = VoteGuard.from_settings(self.service.settings)
        return self._guard

    def _vote_executor(self) -> ThreadPoolExecutor:
        """Votes wait for their commit on their own threads, never in front of searches."""
        if self._votes is None:
            self._votes = ThreadPoolExecutor(8, thread_name_prefix="faqbot-vote")
        return self._votes

    def routes(self) -> list[Route]:
        return [
            Route("/api/search", self.search, methods=["GET", "POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/api/feedback", self.feedback, methods=["POST"]),
        ]

    def app(self):
        """The REST routes alone as an ASGI app, behind the request limits (server.py serves them beside the chat)."""
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.middleware import Middleware

        async def http_error(request: Request, exc: HTTPException) -> Response:  # 404, 405: JSON too
            return _error(str(exc.detail), exc.status_code)

        return Starlette(routes=self.routes(), middleware=[Middleware(RequestLimits, service=self.service)],
                         exception_handlers={HTTPException: http_error})

    def close(self) -> None:
        for pool in (self._pool, self._votes):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._votes = None


# ------------------------------------------------------------------------------------------ limits at the door

BODY_METHODS = ("POST", "PUT", "PATCH")
DRAIN_FACTOR = 4  # a body up to this many times its limit (at least max_request_bytes) is read before its 413


class RequestLimits:
    """ASGI middleware: the service's size and nesting limits on every request body, before Gradio or a route
    reads it (Gradio has no body limit of its own). REST bodies (/api/...) may be `max_body_bytes`, anything
    else (the chat's events, the Gradio API) `max_request_bytes`; over it: 413, JSON nested too deep: 422, both
    with a JSON message. File uploads are refused: the app takes none, and Gradio would keep them on disk.
    `rewrite(path, body) -> body` may adjust a body that passed (server.py completes old Gradio API calls)."""

    def __init__(self, app: Any, service: Any, rewrite: Any = None):
        self.app, self.service, self.rewrite = app, service, rewrite

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
        # A body over the limit is read and dropped (up to `drain` bytes) before the 413, so that the client, still
        # sending, gets the message: answering at once and hanging up resets the connection, and the client's
        # socket then drops the 413 unread. A larger body is answered at once.
        drain = max(DRAIN_FACTOR * limit, settings.max_request_bytes)
        if declared.isdigit() and int(declared) > drain:
            await _reply(send, 413, f"the request body is over {limit // 1024} KB; send a shorter request.", close=True)
            return
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + settings.read_timeout_seconds  # a slowloris body
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - asyncio.get_running_loop().time(), 0.0))
            except asyncio.TimeoutError:
                log.info("%s refused (408): the body took over %g s", path, settings.read_timeout_seconds)
                await _reply(send, 408, f"the request body took over {settings.read_timeout_seconds:g} s to arrive; "
                             "send the whole request at once.", close=True)
                return
            if message["type"] != "http.request":  # the client left
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                chunks = []  # dropped: only its size counts now
                if size > drain or not message.get("more_body"):
                    log.info("%s refused (413): a body over %d bytes", path, limit)
                    await _reply(send, 413, f"the request body is over {limit // 1024} KB; send a shorter request.",
                                 close=size > drain)
                    return
                continue
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            self.service.check_body(body, limit)
            if self.rewrite is not None:  # may refuse too (InputError)
                body = self.rewrite(path, body)
        except InputError as exc:
            log.info("%s refused (%d): %s", path, exc.status, exc.message)
            await _reply(send, exc.status, exc.message)
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reply(send: Any, status: int, message: str, close: bool = False) -> None:
    body = json.dumps({"error": message}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + [(b"connection", b"close")] if close else headers})
    await send({"type": "http.response.body", "body": body})
