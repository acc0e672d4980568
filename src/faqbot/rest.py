"""Plain JSON over HTTP beside the Gradio app, for programs: no queue, no event stream, one round trip.

    GET  /api/search?q=...&k=5&version=latest&component=mindspore
    POST /api/search   {"q": "...", "k": 5, "version": "latest", "component": "mindspore", "history": ["..."]}
    GET  /healthz

`/api/search` answers with exactly the object of `faqbot ask --json` (the app's `FaqChat.search`). Bad input gets
a 4xx and `{"error": "<what to do>"}`, never a traceback. The search runs in a thread pool with one worker per
model instance, so requests wait their turn here (measured as "queue" in the `Server-Timing` header) and never
oversubscribe the cores. The routes are handed to Gradio's FastAPI app when it is created (`app_kwargs`), so
they are served by the same server and port as the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # a question is cut to 2,000 characters anyway
MAX_WAITING = 256  # requests queued for the search workers beyond this get 503 at once
K_RANGE = (1, 50)
FIELDS = ("q", "k", "version", "component", "history")  # history: earlier questions of the conversation, oldest first
PRUNE_SECONDS = 5.0
# POST /api/feedback answers 202 only once the vote's row is committed to the feedback database, waiting at most
# this long; a vote only queued in this process's memory would be lost if the replica died, so it gets a 503.
FEEDBACK_ACK_SECONDS = 3.0
FEEDBACK_FIELDS = ("question", "item_id", "vote", "lang", "session")
VOTES = {"like": 1, "dislike": -1}  # feedback.LIKE, feedback.DISLIKE
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


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _json(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    headers = {REPLICA_HEADER: REPLICA, **(headers or {})}
    return Response(_dumps(obj), status_code=status, media_type="application/json", headers=headers)


def _error(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


class RestApi:
    """The REST routes over one `FaqChat` (web.py); `routes()` are added to the server's app."""

    def __init__(self, chat: Any, workers: int, health: dict | None = None):
        self.chat = chat
        self.workers = max(1, int(workers))
        self.health = health or {}
        self._pool: ThreadPoolExecutor | None = None
        self._waiting = 0

    # -- input ------------------------------------------------------------------------------------------------

    def _params(self, raw: dict[str, Any], from_query: bool) -> tuple[str, int, str, str]:
        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise BadRequest(f"unknown parameter {unknown[0]!r}: use q, k, version, component and history.")
        q = raw.get("q")
        if q is None:
            raise BadRequest("missing q: give the question, e.g. /api/search?q=How+do+I+install+MindSpore")
        if not isinstance(q, str):
            raise BadRequest(f"q must be a string, not {type(q).__name__}.")
        try:
            q.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("q is not valid Unicode text (it contains a lone surrogate such as \\ud800); send UTF-8 text.") from None
        if not q.strip():
            raise BadRequest("q is empty: give the question to search for.")
        k = raw.get("k", self.chat.settings.k)
        low, high = K_RANGE
        if from_query:
            try:
                k = int(str(k).strip())
            except ValueError:
                raise BadRequest(f"k must be a whole number from {low} to {high}, not {str(k)[:40]!r}.") from None
        elif isinstance(k, bool) or not isinstance(k, int):
            raise BadRequest(f"k must be a whole number from {low} to {high}, not {json.dumps(k)[:40]}.")
        if not low <= k <= high:
            raise BadRequest(f"k must be a whole number from {low} to {high}, not {k}.")
        version = raw.get("version") or "latest"
        component = raw.get("component") or ""
        for name, value in (("version", version), ("component", component)):
            if not isinstance(value, str):
                raise BadRequest(f"{name} must be a string, not {type(value).__name__}.")
        if version not in self.chat.versions:
            raise BadRequest(f"unknown version {version[:40]!r}: use one of {', '.join(self.chat.versions)}.")
        if component and component not in self.chat.components:
            raise BadRequest(f"unknown component {component[:40]!r}: use one of {', '.join(self.chat.components)}, or leave it out.")
        return q, k, version, component

    async def _read_json(self, request: Request) -> dict:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise BadRequest(f"the request body is over {MAX_BODY_BYTES // 1024} KB; send only q, k, version and component.", 413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"the request body is over {MAX_BODY_BYTES // 1024} KB; send only q, k, version and component.", 413)
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest('the body is not JSON: send {"q": "your question"} with Content-Type: application/json.') from None
        if not isinstance(obj, dict):
            raise BadRequest(f'the body must be a JSON object such as {{"q": "your question"}}, not {type(obj).__name__}.')
        return obj

    # -- work -------------------------------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="faqbot-rest")
        return self._pool

    def _search(self, enqueued: float, q: str, k: int, version: str, component: str,
                history: list[str] | None = None) -> tuple[dict, dict]:
        """Runs on a worker thread: the search and how long each stage took."""
        import gradio as gr

        started = time.perf_counter()
        embedder = self.chat.retriever.embedder
        take = getattr(embedder, "take_timings", None)
        if take:
            take()  # start this request's count from zero
        try:
            out = self.chat.search(q, k=k, version=version, component=component, history=history)
        except gr.Error as exc:  # the handler's own input checks
            raise BadRequest(str(getattr(exc, "message", exc))) from None
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
        return {"body": body}, stages

    async def search(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                raw = await self._read_json(request)
                q, k, version, component = self._params(raw, from_query=False)
                history = _history(raw.get("history"))
            else:
                q, k, version, component = self._params(dict(request.query_params), from_query=True)
                history = _history(request.query_params.getlist("history"))  # ?history=first&history=second
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        if self._waiting >= MAX_WAITING:
            return _error("the server is busy; retry in a moment.", 503)
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            out, stages = await loop.run_in_executor(self._executor(), self._search, time.perf_counter(), q, k, version,
                                                     component, history)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        except Exception:  # noqa: BLE001 - logged here; the client gets one line, never a traceback
            log.exception("/api/search failed for %r", q[:200])
            return _error("the search failed on the server; it is logged. Try again, or another question.", 500)
        finally:
            self._waiting -= 1
        timing = ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in stages.items())
        return Response(out["body"], media_type="application/json",
                        headers={"Server-Timing": timing, REPLICA_HEADER: REPLICA})

    async def healthz(self, request: Request) -> Response:
        retriever = self.chat.retriever
        embedder = retriever.embedder
        body = {
            "status": "ok" if self.health.get("index_ok", True) else "stale",
            "model": getattr(embedder, "name", None),
            "model_instances": getattr(embedder, "instances", 1),
            "items": len(retriever.items),
            "vectors": int(len(retriever.index.rows)),
            "index": _no_paths(self.health.get("index_message", "not checked")),
            "search_workers": self.workers,
            "waiting": self._waiting,
        }
        body["feedback"] = await asyncio.get_running_loop().run_in_executor(None, feedback_health, self.chat.store)
        if body["status"] == "ok" and body["feedback"]["database"] == "full":
            body["status"] = "feedback queue full"  # votes are being dropped: neither reachable nor queueing
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
            row = self._vote_params(await self._read_vote(request))
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        row["session"] = row["session"] or guard.session_of(client)  # so the per-session row cap applies
        outcome = await asyncio.get_running_loop().run_in_executor(
            self._vote_executor(), save_vote, self.chat.store, FEEDBACK_ACK_SECONDS, row)
        if outcome == "saved":
            return _json({"status": "saved"}, 202)
        if outcome == "queued":
            return _json({"status": "queued", "error": f"the feedback database did not confirm the vote within "
                          f"{FEEDBACK_ACK_SECONDS:g} s; it stays queued on this server and is written when the database "
                          "is back, unless this server stops. Sending it again may count it twice."}, 503)
        return _json({"status": "dropped", "error": "the vote could not be saved (the feedback queue is full or the "
                      "database refused it); try again in a minute."}, 503)

    async def _read_vote(self, request: Request) -> dict:
        example = '{"question": "...", "item_id": "<answers[].id from /api/search>", "vote": "like"}'
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"the request body is over {MAX_BODY_BYTES // 1024} KB; send only {example}.", 413)
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(f"the body is not JSON: send {example} with Content-Type: application/json.") from None
        if not isinstance(obj, dict):
            raise BadRequest(f"the body must be a JSON object such as {example}, not {type(obj).__name__}.")
        return obj

    def _vote_params(self, raw: dict) -> dict:
        unknown = sorted(set(raw) - set(FEEDBACK_FIELDS))
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r}: use question, item_id, vote, lang and session.")
        for name in ("question", "item_id", "vote"):
            if not isinstance(raw.get(name), str) or not raw[name].strip():
                raise BadRequest(f"{name} must be a non-empty string" + (
                    ": the id of the answer voted on (answers[].id from /api/search)." if name == "item_id" else
                    ': "like" or "dislike".' if name == "vote" else ": the question the answer was for."))
        if raw["vote"] not in VOTES:
            raise BadRequest(f'vote must be "like" or "dislike", not {raw["vote"][:20]!r}.')
        if self.chat.retriever.item(raw["item_id"]) is None:
            raise BadRequest(f"unknown item_id {raw['item_id'][:80]!r}: use an answers[].id from /api/search.")
        lang, session = raw.get("lang"), raw.get("session")
        if lang is not None and lang not in ("zh", "en"):
            raise BadRequest(f'lang must be "zh" or "en" (or left out), not {str(lang)[:20]!r}.')
        if session is not None and (not isinstance(session, str) or len(session) > 128):
            raise BadRequest("session must be a string of at most 128 characters (or left out).")
        try:
            raw["question"].encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("question is not valid Unicode text (it contains a lone surrogate); send UTF-8 text.") from None
        return {"question": raw["question"], "vote": VOTES[raw["vote"]], "item_id": raw["item_id"], "lang": lang,
                "session": session}

    def _vote_guard(self) -> Any:
        if getattr(self, "_guard", None) is None:
            from faqbot.guard import VoteGuard

            self._guard = VoteGuard.from_settings(self.chat.settings)
        return self._guard

    def _vote_executor(self) -> ThreadPoolExecutor:
        """Votes wait for their commit on their own threads, never in front of searches."""
        if getattr(self, "_votes", None) is None:
            self._votes = ThreadPoolExecutor(8, thread_name_prefix="faqbot-vote")
        return self._votes

    def routes(self) -> list[Route]:
        return [
            Route("/api/search", self.search, methods=["GET", "POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/api/feedback", self.feedback, methods=["POST"]),
        ]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if getattr(self, "_votes", None) is not None:
            self._votes.shutdown(wait=False, cancel_futures=True)
            self._votes = None


# ------------------------------------------------------------------------------------------ feedback over HTTP


def _history(value: Any) -> list[str]:
    """The earlier questions of the conversation (conversation.clean_history), or a 400 saying what to send."""
    from faqbot.conversation import HistoryError, clean_history

    try:
        return clean_history(value)
    except HistoryError as exc:
        raise BadRequest(f'{exc}, e.g. {{"q": "一共有几种？", "history": ["MindSpore Lite 怎么设置日志级别？"]}}.') from None


def save_vote(store: Any, timeout: float, row: dict) -> str:
    """Queue one vote and wait until the store's writer has committed it: "saved"; "queued" when the writer did
    not get through within `timeout` (the database is slow or unreachable: the row stays queued in memory);
    "dropped" when the queue was full or the writer gave up on a row meanwhile.

    The store's flush() returns once everything queued before it is written or dropped; a row is only dropped
    after the store's retry period (30 s, far past `timeout`), and every drop is counted, so an unchanged drop
    count means this row was committed. A drop of some other row at the same moment makes this answer
    "dropped" although the vote landed: an error the client may retry, never a lost acknowledged vote."""
    dropped = store.stats()["dropped"]
    if not store.record(row["question"], row["vote"], item_id=row["item_id"], lang=row["lang"], in_scope=True,
                        session=row["session"]):
        return "dropped"
    if not store.flush(timeout):
        return "queued"
    return "saved" if store.stats()["dropped"] == dropped else "dropped"


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/;,()]+/)*([^\s/;,()]+)")


def _no_paths(text: Any) -> Any:
    """`text` with absolute paths cut to their last part (…/index): /healthz is public, the layout of the disk
    is not."""
    return _ABSOLUTE_PATH.sub(r"…/\1", text) if isinstance(text, str) else text


def feedback_health(store: Any, timeout: float = 2.0) -> dict:
    """The feedback store for /healthz: "reachable" (a connection works now), "queueing" (it does not, and votes
    wait in memory to be retried) or "full" (the queue is full, so votes are dropped); with the store's counters."""
    stats = store.stats()
    out = {"backend": "postgresql" if store.postgres else "sqlite", "database": "reachable",
           **{k: stats.get(k) for k in ("queued", "written", "retried", "dropped")}}
    problem = None
    if store.postgres:
        try:
            import psycopg

            with psycopg.connect(store.url, connect_timeout=max(1, int(timeout))) as conn:
                conn.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable now"
            # the driver's text names hosts, ports and sockets: logged here, not shown to whoever asks /healthz
            log.warning("feedback database not reachable: %s", " ".join(str(exc).split())[:300] or type(exc).__name__)
            problem = "cannot connect to the PostgreSQL server (the app's log has the details)"
    else:
        problem = store.check()
    if problem:
        out["database"], out["error"] = "queueing", _no_paths(problem)
    full = getattr(getattr(store, "_queue", None), "full", None)
    if callable(full) and full():
        out["database"] = "full"
    return out


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
