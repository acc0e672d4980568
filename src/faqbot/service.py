"""The one front door: every front end (the browser chat, Gradio `/ask` and `/search`, REST `/api/search` and
`/api/feedback`, `faqbot ask` and `faqbot chat`) calls one `FaqService`.

It owns the decisions the front ends used to copy: input checks (one error type, `InputError`, whose message
is what the user reads), the limits at the door (every text is cut before any other work, with the limits of
config.py), the related entries, the safe-links pass of the JSON answer, off-topic logging for the gap report,
and the click and rephrase evidence of the learning loop. Front ends only parse, call and render.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faqbot.answer import DEFAULT_BANDS, Bands, faq_markdown, render_markdown, render_text
from faqbot.config import NUMERIC_RANGES, Settings, SettingsError, check_number
from faqbot.corpus_config import CorpusConfig, CorpusConfigError, load_corpus_config
from faqbot.conversation import Conversation, HistoryError, Turn, search_in_context
from faqbot.feedback import DISLIKE, LIKE, OFF_TOPIC, wording_key
from faqbot.schema import Hit, SearchResult
from faqbot.search import MAX_QUERY_CHARS, clean_query
from faqbot.text import detect_lang, scrub_text

log = logging.getLogger(__name__)

RELATED_K = 3  # related entries offered under an answer
MAX_SESSION_CHARS = 128


class InputError(ValueError):
    """Input a front end must refuse. The message is for the user (what to send instead); `status` is the HTTP
    status a web front end answers with; `field` names the input (a CLI prints it as its flag)."""

    def __init__(self, message: str, status: int = 400, field: str = ""):
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


@dataclass(frozen=True)
class Filters:
    version: str = "latest"
    component: str | None = None


@dataclass(frozen=True)
class Query:
    """A question checked and cut at the door, ready to answer."""

    question: str
    conversation: Conversation
    filters: Filters
    k: int
    cut_from: int = 0  # the question's length before the door cut it (0: not cut)


@dataclass
class Answer:
    """What the service found: the search result, the related entries offered under it, its level, and the turn
    to add to the conversation."""

    result: SearchResult
    related: list[Hit] = field(default_factory=list)
    config: CorpusConfig | None = None  # the corpus's texts and fallback links (None: the built-in texts)

    @property
    def level(self) -> str:
        return self.result.match

    @property
    def top(self) -> Hit | None:
        return self.result.hits[0] if self.result.hits else None

    @property
    def turn(self) -> Turn:
        top = self.top
        return Turn(clean_query(self.result.query)[0], top.item.id if top else None, self.result.match,
                    self.result.lang, self.result.confidence if top else None)

    def to_dict(self) -> dict:
        """The `faqbot ask --json` / `/api/search` object; answers' links limited to safe schemes."""
        out = self.result.to_dict()
        for answer in out["answers"]:
            answer["answer"] = faq_markdown(answer["answer"])  # as the chat shows it: raw HTML as text
        links = []  # the corpus's "search the docs" / "open an issue" when nothing answers, the question filled in
        if self.config is not None and self.result.match == "none" and self.result.query.strip():
            links = self.config.fallback_links(self.result.query, self.result.lang)
        out["fallback_links"] = [{"label": label, "url": url} for label, url in links]  # always there: one shape
        return out

    def markdown(self, bands: Bands = DEFAULT_BANDS, list_suggestions: bool = True) -> str:
        """The chat's markdown (browser, Gradio `/ask`), in the corpus's own words."""
        return render_markdown(self.result, bands, self.related, list_suggestions, config=self.config)

    def text(self, bands: Bands = DEFAULT_BANDS) -> str:
        """The terminal's text (`faqbot ask`, `faqbot chat`), in the corpus's own words."""
        return render_text(self.result, bands, self.related, config=self.config)


def error_object(query: Any, message: str) -> dict:
    """The JSON object of a refused question: the usual keys (so readers need no special case) and `error`."""
    text = scrub_text(query if isinstance(query, str) else "")[:MAX_QUERY_CHARS]
    return {"query": text, "lang": detect_lang(text), "match": "none", "in_scope": False, "confidence": 0.0,
            "answers": [], "fallback_links": [], "error": message}


# ------------------------------------------------------------------------------------------------ JSON bodies

# linear: a run of plain characters, then escapes each followed by a run ("unrolled"; no two ways to match a
# character), and ~20x faster than one alternation a character (a 1 MB body: 4 ms, not 80-140 ms on the event loop)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, without parsing it (so '[' * 100000 cannot reach the
    parser's recursion limit): strings are blanked, then brackets are counted."""
    if b"[" not in body and b"{" not in body:
        return 0
    text = np.frombuffer(_JSON_STRING.sub(b'""', body), dtype=np.uint8)
    steps = np.isin(text, (ord("["), ord("{"))).astype(np.int32) - np.isin(text, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def corpus_config(settings: Settings) -> CorpusConfig:
    """The served corpus's config (its faqbot.toml, or the bundled one its layout matches); a broken file is
    logged and the defaults are used, so the bot still answers."""
    if settings.corpus_dir is None:  # no corpus named: the defaults
        return CorpusConfig()
    try:
        return load_corpus_config(settings.corpus_dir)
    except CorpusConfigError as exc:
        log.warning("%s; the default texts are used", exc)
        return CorpusConfig(name=Path(settings.corpus_dir).resolve().name or "faq")


class FaqService:
    """The retriever, the settings and the feedback store (None: nothing is logged, as in the CLI), behind the
    few calls the front ends make. `config`: the corpus's title, texts, examples and links, read once here
    from settings.corpus_dir (every front end shows them from here)."""

    def __init__(self, retriever: Any, settings: Settings, store: Any = None, health: dict | None = None,
                 config: CorpusConfig | None = None):
        self.retriever = retriever
        self.settings = settings
        self.config = config if config is not None else corpus_config(settings)
        self.store = store
        self.index_health = health or {}
        self.versions = ["latest", *[v for v in retriever.versions if v != "latest"], "all"]
        self.components = list(retriever.components)

    # -- checks -------------------------------------------------------------------------------------------------

    def cut(self, text: str) -> tuple[str, int]:
        """A user text cut to the question limit before any other work, lone surrogates replaced: (text, the
        length before the cut, or 0 when it was not cut)."""
        limit = self.settings.max_question_chars
        if len(text) <= limit:
            return scrub_text(text), 0
        return scrub_text(text[:limit]), len(text)

    def validate(self, question: Any, conversation: Any = None, filters: Filters | None = None, k: Any = None,
                 *, version: Any = None, component: Any = None) -> Query:
        """The request checked and cut, or InputError saying what to send. `version`/`component` may be given
        instead of `filters` (as the front ends receive them: "" and None mean the default)."""
        if not isinstance(question, str):
            raise InputError(f"question must be a string, not {type(question).__name__}.", field="question")
        question, cut_from = self.cut(question)
        if filters is not None:
            version, component = filters.version, filters.component
        return Query(question, self.conversation(conversation), self.filters(version, component), self.check_k(k),
                     cut_from)

    def conversation(self, history: Any) -> Conversation:
        """A client's history (None, a Conversation, or earlier questions oldest first) within the limits."""
        try:
            return Conversation.of(history, self.settings.max_history_turns, self.settings.max_question_chars)
        except HistoryError as exc:
            raise InputError(f"{exc}.", field="history") from None

    def filters(self, version: Any = None, component: Any = None) -> Filters:
        return check_filters(version, component, self.versions, self.components)

    def check_k(self, k: Any, required: bool = False) -> int:
        """`k` as a whole number in its range ("3" and 3.0 accepted; None: the setting, unless `required`)."""
        if k is None and not required:
            return self.settings.k
        low, high = NUMERIC_RANGES["k"]
        try:
            return check_number("k", k.strip() if isinstance(k, str) else k, low, high, integer=True)
        except SettingsError:
            shown = repr(k[:40]) if isinstance(k, str) else str(k)[:40]
            raise InputError(f"k must be a whole number from {low:g} to {high:g}, not {shown}.", field="k") from None

    def check_body(self, body: bytes, limit: int | None = None) -> None:
        """A request body within the size limit (else InputError 413) and the JSON nesting limit (else 422)."""
        limit = limit or self.settings.max_body_bytes
        if len(body) > limit:
            raise InputError(f"the request body is over {limit // 1024} KB; send only the fields of the request.", 413)
        if json_depth(body) > self.settings.max_json_depth:
            raise InputError(f"the JSON body nests deeper than {self.settings.max_json_depth} levels; "
                             "send a flat JSON object.", 422)

    def read_json(self, body: bytes, limit: int | None = None) -> Any:
        """A JSON request body within the size and nesting limits, parsed; InputError (413, 422 or 400) if not."""
        self.check_body(body, limit)
        import json

        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise InputError("the body is not JSON: send a JSON object with Content-Type: application/json.") from None

    # -- answers ------------------------------------------------------------------------------------------------

    def answer(self, question: Any, conversation: Any = None, filters: Filters | None = None, k: Any = None, *,
               version: Any = None, component: Any = None) -> Answer:
        """Answer a question in its conversation: the result, its related entries and its level. An off-topic
        question is logged for `faqbot feedback gaps` (when there is a store)."""
        query = self.validate(question, conversation, filters, k, version=version, component=component)
        return self.answer_query(query)

    def answer_query(self, query: Query) -> Answer:
        f = query.filters
        result = search_in_context(self.retriever, query.question, query.conversation, k=query.k, version=f.version,
                                   component=f.component)
        if query.cut_from and result.message:  # say how long the message really was
            result.message = _long_note(query.cut_from, result.lang)
        related: list[Hit] = []
        if result.in_scope and result.hits:
            related = list(self.retriever.related(result.hits[0].item.id, result.lang, k=RELATED_K,
                                                  version=f.version, component=f.component))
        answer = Answer(result, related, self.config)
        self._log_off_topic(answer)
        return answer

    def _log_off_topic(self, answer: Answer) -> None:
        result = answer.result
        if self.store is None or result.in_scope:
            return
        turn = answer.turn
        if not turn.question:
            return
        try:  # the cleaned question (at most 2,000 characters) is what is stored: masked after the cut
            self.store.record(turn.question, OFF_TOPIC, kind="off_topic", item_id=turn.item_id, score=turn.confidence,
                              lang=turn.lang, in_scope=False)
        except Exception as exc:  # noqa: BLE001 - feedback must never break an answer
            log.warning("could not log an off-topic question to %s: %s", getattr(self.store, "path", "?"), exc)

    # -- feedback -----------------------------------------------------------------------------------------------

    def check_vote(self, question: Any, item_id: Any, vote: Any, lang: Any = None, session: Any = None) -> Turn:
        """A vote sent by a client, checked and cut: the turn it is about (InputError says what to send)."""
        for name, value in (("question", question), ("item_id", item_id), ("vote", vote)):
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{name} must be a non-empty string" + (
                    ": the id of the answer voted on (answers[].id from /api/search)." if name == "item_id" else
                    ': "like" or "dislike".' if name == "vote" else ": the question the answer was for."), field=name)
        if vote not in ("like", "dislike"):
            raise InputError(f'vote must be "like" or "dislike", not {vote[:20]!r}.', field="vote")
        if self.retriever.item(item_id[:200]) is None:
            raise InputError(f"unknown item_id {item_id[:80]!r}: use an answers[].id from /api/search.", field="item_id")
        if lang is not None and lang not in ("zh", "en"):
            raise InputError(f'lang must be "zh" or "en" (or left out), not {str(lang)[:20]!r}.', field="lang")
        if session is not None and (not isinstance(session, str) or len(session) > MAX_SESSION_CHARS):
            raise InputError(f"session must be a string of at most {MAX_SESSION_CHARS} characters (or left out).",
                             field="session")
        if _has_surrogate(question[:self.settings.max_question_chars]):
            raise InputError("question is not valid Unicode text (it contains a lone surrogate); send UTF-8 text.",
                             field="question")
        text = clean_query(self.cut(question)[0])[0]
        return Turn(text, item_id, "", lang)

    def vote(self, turn: Turn, liked: bool, session: str | None = None, before: Turn | None = None,
             wait: float | None = None) -> str:
        """Record a 👍/👎 on the answer of `turn`. A like right after an unresolved reply (`before`) also records
        the earlier wording as a rephrasing of the liked entry. `wait`: seconds to wait for the database to commit
        it: "saved", "queued" (not confirmed in time; it stays queued) or "dropped"; without `wait`, "queued" or
        "dropped" at once."""
        if self.store is None:
            return "dropped"
        store = self.store
        dropped = store.stats()["dropped"] if wait is not None else 0
        session = scrub_text(session) if isinstance(session, str) else None
        queued = store.record(turn.question, LIKE if liked else DISLIKE, item_id=turn.item_id, score=turn.confidence,
                              lang=turn.lang, in_scope=turn.in_scope, session=session)
        if liked and turn.item_id and turn.in_scope and before is not None and before.unresolved \
                and wording_key(before.question) != wording_key(turn.question):
            store.record(before.question, LIKE, kind="rephrase", item_id=turn.item_id, lang=before.lang,
                         in_scope=False, session=session)
        if not queued:
            return "dropped"
        if wait is None:
            return "queued"
        # flush() returns once everything queued before it is written or dropped; a row is only dropped after
        # the store's retry period (far past `wait`), and every drop is counted, so an unchanged count means
        # this row was committed. Another row's drop at the same moment makes this "dropped" although the vote
        # landed: an error the client may retry, never a lost acknowledged vote.
        if not store.flush(wait):
            return "queued"
        return "saved" if store.stats()["dropped"] == dropped else "dropped"

    def click(self, before: Turn | None, after: Turn | None, session: str | None = None) -> None:
        """A suggestion clicked right after an unresolved reply: evidence that the earlier wording meant the
        clicked entry (when the clicked question got an in-scope answer)."""
        if self.store is None or before is None or after is None or after is before:
            return
        if after.in_scope and after.item_id and before.unresolved:
            self.store.record(before.question, LIKE, kind="click", item_id=after.item_id, lang=before.lang,
                              in_scope=False, session=session)

    # -- health -------------------------------------------------------------------------------------------------

    def health(self) -> dict:
        """/healthz: the index checked at start, what is loaded, and the feedback store."""
        retriever = self.retriever
        embedder = retriever.embedder
        body = {
            "status": "ok" if self.index_health.get("index_ok", True) else "stale",
            "model": getattr(embedder, "name", None),
            "model_instances": getattr(embedder, "instances", 1),
            "items": len(retriever.items),
            "vectors": int(len(retriever.index.rows)),
            "index": no_paths(self.index_health.get("index_message", "not checked")),
        }
        if self.store is not None:
            body["feedback"] = feedback_health(self.store)
            if body["status"] == "ok" and body["feedback"]["database"] == "full":
                body["status"] = "feedback queue full"  # votes are being dropped: neither reachable nor queueing
        return body


def check_filters(version: Any, component: Any, versions: Sequence[str], components: Sequence[str] | None) -> Filters:
    """The version and component filters ("" and None: the defaults), or InputError naming the choices.
    `components` None: not checked (a front end checking the version before the index is loaded)."""
    for name, value in (("version", version), ("component", component)):
        if value is not None and not isinstance(value, str):
            raise InputError(f"{name} must be a string or empty, not {type(value).__name__}.", field=name)
    version = version or "latest"
    if version not in versions:
        raise InputError(f"unknown version {version[:40]!r}: use one of {', '.join(versions)}.", field="version")
    component = component or None
    if component is not None and components is not None and component not in components:
        raise InputError(f"unknown component {component[:40]!r}: use one of {', '.join(components)}, "
                         "or leave it empty.", field="component")
    return Filters(version, component)


def index_health(settings: Settings, index: Any = None) -> dict:
    """Checked once when an app starts (it hashes the corpus pages); /healthz reports it. `index`: the one the
    retriever opened from the settings' folder, read as it is (its files were checked when it was opened);
    otherwise (none, or one built in memory or elsewhere) the folder in `settings` is opened and checked."""
    try:
        from faqbot import store

        path = getattr(index, "path", None)
        if path is not None and Path(path).resolve() == Path(settings.model_index_dir).resolve():
            ok, message = store.opened_status(index, path, settings.model, settings.corpus_dir)
        else:
            ok, message = store.index_status(settings.model_index_dir, settings.model, settings.corpus_dir)
    except Exception as exc:  # noqa: BLE001 - a health check must not stop the app
        return {"index_ok": True, "index_message": f"not checked ({type(exc).__name__}: {exc})"}
    return {"index_ok": bool(ok), "index_message": message}


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
        out["database"], out["error"] = "queueing", no_paths(problem)
    full = getattr(getattr(store, "_queue", None), "full", None)
    if callable(full) and full():
        out["database"] = "full"
    return out


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/;,()]+/)*([^\s/;,()]+)")


def no_paths(text: Any) -> Any:
    """`text` with absolute paths cut to their last part (…/index): /healthz is public, the layout of the disk
    is not."""
    return _ABSOLUTE_PATH.sub(r"…/\1", text) if isinstance(text, str) else text


def _has_surrogate(text: str) -> bool:
    return scrub_text(text) != text


def _long_note(length: int, lang: str) -> str:
    if lang == "zh":
        return f"输入过长（{length:,} 个字符），只读取了前 {MAX_QUERY_CHARS:,} 个字符。"
    return f"Your message was long ({length:,} characters); only the first {MAX_QUERY_CHARS:,} were read."
