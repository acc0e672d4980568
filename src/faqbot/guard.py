"""Defences against hostile input behind the front door: text that is safe to store and safe to print, and the
vote endpoint's checks (JSON only, same origin or an allowed one, a per-client rate limit).

Why here and not in each adapter: a vote arrives from the chat, the REST API and the CLI, and its text ends up in a
database and then on a reviewer's terminal (`faqbot feedback`, `suggest`, the gap report); one set of rules keeps
those paths alike.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from urllib.parse import urlsplit

# Lone surrogates cannot be encoded (SQLite's driver raises), NUL cannot be stored in PostgreSQL text, and
# control and bidi characters rewrite what a terminal shows (ANSI escapes, right-to-left overrides).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ANSI = re.compile(r"\x1b(?:\[[0-?]{0,32}[ -/]{0,8}[@-~]|\][^\x07\x1b]{0,256}(?:\x07|\x1b\\)?|[@-_])")


def storable(value: object, limit: int) -> str | None:
    """`value` as text a database accepts: None stays None; lone surrogates, NUL, control and bidi characters
    removed (tabs and newlines kept); at most `limit` characters."""
    if value is None:
        return None
    text = str(value)[: limit * 2]  # bound the work before cleaning
    if _CONTROL.search(text):
        text = _CONTROL.sub("", _ANSI.sub("", text))
    return text[:limit]


def storable_number(value: object) -> float | None:
    """A finite float, or None (NaN, infinities and non-numbers are not stored)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def printable(text: object) -> str:
    """`text` safe to print on a terminal: escape sequences, control characters (newlines and tabs included, as
    each printed field is one line) and bidi overrides removed."""
    text = str(text).replace("\n", " ").replace("\t", " ")
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub("", _ANSI.sub("", text))


def printable_tree(obj: object) -> object:
    """Every string in a JSON-like object made `printable` (for `--json` output a reviewer reads too)."""
    if isinstance(obj, str):
        return printable(obj)
    if isinstance(obj, dict):
        return {printable(k) if isinstance(k, str) else k: printable_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [printable_tree(v) for v in obj]
    return obj


# ---------------------------------------------------------------- the vote endpoint


JSON_TYPES = ("application/json",)


def is_json(content_type: str | None) -> bool:
    """A JSON body by its Content-Type (`application/json`, with or without a charset, or `application/*+json`).
    Plain text and form bodies are what a cross-site form or `fetch` without a preflight can send, so they are
    refused."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def origin_allowed(headers: Mapping[str, str], allowed: tuple[str, ...] = ()) -> bool:
    """Whether a browser request comes from this site or an allowed one. The Origin header (or else the Referer)
    must name the request's own host or one of `allowed` (`https://example.org`, or `*` for any); a request with
    neither header is not from a web page (curl, a script, a server) and is allowed."""
    source = headers.get("origin") or headers.get("referer")
    if not source:
        return True
    if "*" in allowed:
        return True
    if source == "null":  # a sandboxed frame or a file: page
        return False
    parts = urlsplit(source)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin in {a.rstrip("/").lower() for a in allowed}:
        return True
    host = (headers.get("host") or "").lower()
    return bool(host) and parts.netloc.lower() == host


class RateLimiter:
    """At most `rate` requests per second per client, with bursts of `burst` (a token bucket per client).

    The table of clients is bounded (`max_clients`, the least recently seen forgotten first), so a flood of
    client ids cannot grow memory; a forgotten client starts again with a full bucket."""

    def __init__(self, rate: float, burst: float | None = None, max_clients: int = 10_000):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        """Take one token for `client`: True when it had one (the request may go on)."""
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            ok = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if ok else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return ok

    def retry_after(self, client: str) -> float:
        """Seconds until `client` has a token again."""
        with self._lock:
            tokens, _ = self._buckets.get(client, (self.burst, 0.0))
        return max(0.0, (1.0 - tokens) / self.rate) if self.rate > 0 else 0.0


def _is_proxy(peer: str) -> bool:
    if peer == "localhost":
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


class VoteGuard:
    """The checks in front of POST /api/feedback, in the order a request meets them: a JSON body (415), from this
    site or an allowed origin (403), within the client's rate (429)."""

    def __init__(self, rate: float = 5.0, allowed_origins: tuple[str, ...] = ()):
        self.allowed_origins = tuple(allowed_origins)
        self.limiter = RateLimiter(rate, burst=max(1.0, 4 * rate))
        self._key = os.urandom(16)

    @classmethod
    def from_settings(cls, settings: object) -> "VoteGuard":
        return cls(getattr(settings, "vote_rate", 5.0), getattr(settings, "allowed_origins", ()))

    @staticmethod
    def client(headers: Mapping[str, str], peer: str | None) -> str:
        """Who is asking: the peer's address; behind a proxy on this host or its private network (the peer is a
        loopback or private address, as nginx in compose.yaml is), the address the proxy appended last to
        X-Forwarded-For (deploy/faqbot.conf.template's nginx does). A public peer's header is ignored."""
        peer = peer or ""
        forwarded = headers.get("x-forwarded-for")
        if forwarded and _is_proxy(peer):
            last = forwarded.split(",")[-1].strip()
            if last:
                return last[:64]
        return peer

    def session_of(self, client: str) -> str:
        """A session id for a vote sent without one: the same for every vote of one client (so the per-session row
        cap applies to it too), and not the address itself (a keyed hash, with a key that lives in this process)."""
        return "client-" + hmac.new(self._key, client.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:16]

    def refuse(self, headers: Mapping[str, str], client: str) -> tuple[int, str, dict[str, str]] | None:
        """(status, message, headers) when the vote must be refused, else None."""
        if not is_json(headers.get("content-type")):
            return 415, ('send the vote as JSON with Content-Type: application/json, e.g. {"question": "...", '
                         '"item_id": "<answers[].id from /api/search>", "vote": "like"}.'), {}
        if not origin_allowed(headers, self.allowed_origins):
            return 403, ("votes are taken from this site's own pages (or from an origin listed in "
                         "FAQBOT_ALLOWED_ORIGINS); this request came from another site."), {}
        if not self.limiter.allow(client):
            wait = max(1, math.ceil(self.limiter.retry_after(client)))
            return 429, f"too many votes from this client; try again in {wait} s.", {"Retry-After": str(wait)}
        return None


# ---------------------------------------------------------------- Host headers


def _host_name(value: str) -> str:
    """`example.org:8080` -> `example.org`; `[::1]:7860` -> `[::1]`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostGuard:
    """ASGI middleware against Host header reflection: Gradio builds the URLs in its pages (`/config`, `/`) from
    the Host and X-Forwarded-Host headers, so a request could make them name another site.

    With `allowed_hosts` (FAQBOT_ALLOWED_HOSTS), a request whose Host is not one of them gets 400, and an
    X-Forwarded-Host that is not one of them is dropped. Without it the Host is served as it comes (a Space or a
    container does not know its public name), and an X-Forwarded-Host is kept only when it names the same host as
    the Host header, as the nginx of deploy/ sends it."""

    def __init__(self, app, allowed_hosts: tuple[str, ...] = ()):
        self.app = app
        self.allowed = {_host_name(h) for h in allowed_hosts if h.strip()}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        host = next((v.decode("latin-1") for k, v in headers if k == b"host"), "")
        if self.allowed and _host_name(host) not in self.allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return None
            body = b'{"error": "unknown host: use the address this faqbot is served at (FAQBOT_ALLOWED_HOSTS)."}'
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return None
        kept = []
        for key, value in headers:
            if key == b"x-forwarded-host":
                forwarded = _host_name(value.decode("latin-1").split(",")[0])
                if (forwarded not in self.allowed) if self.allowed else (forwarded != _host_name(host)):
                    continue
            kept.append((key, value))
        if len(kept) != len(headers):
            scope = dict(scope, headers=kept)
        return await self.app(scope, receive, send)
