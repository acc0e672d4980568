"""Idle and slow connections are closed after a timeout (issue 23: "slow connections are never closed").

uvicorn closes a keep-alive connection that stays idle after a response (`timeout_keep_alive`), but it has no
deadline for the request head: a client that connects and sends nothing, or sends a header line every few seconds
(slowloris), holds its connection for ever. And Gradio starts uvicorn itself with no way to pass its options.

So, once the server is up, `bound_connections` gives the running uvicorn server (Gradio's `demo.server`) a protocol
class that closes a connection whose request head is not complete `read_timeout` seconds after the connection was
made or its last response was sent, and sets the idle keep-alive timeout. uvicorn builds each connection's protocol
from its config when the connection is accepted, so the change applies to every connection accepted after it.
A slow request *body* is bounded by the request limits middleware (rest.RequestLimits), which reads every body.
"""

from __future__ import annotations

import asyncio
from typing import Any


class HeadDeadline:
    """Mixin for a uvicorn HTTP protocol class (h11 or httptools): the request head must arrive in time."""

    read_timeout: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # noqa: D102 - uvicorn's
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:  # noqa: D102 - uvicorn's
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102 - uvicorn's
        self._disarm()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, *args: Any, **kwargs: Any) -> Any:  # another protocol takes the connection over
        self._disarm()
        return super().handle_websocket_upgrade(*args, **kwargs)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.read_timeout, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.response_complete:
            return  # a request is being answered (its body, if slow, is the middleware's to time out)
        if not self.transport.is_closing():
            self.transport.close()


def bound_connections(server: Any, read_timeout: float, idle_timeout: float) -> bool:
    """Give a running uvicorn server (`demo.server` after Gradio's launch) the head deadline and the idle timeout
    for the connections it accepts from now on. False when `server` is not a uvicorn server (nothing changed)."""
    config = getattr(server, "config", None)
    protocol = getattr(config, "http_protocol_class", None)
    if protocol is None:
        return False
    if not issubclass(protocol, HeadDeadline):
        protocol = type(f"HeadDeadline{protocol.__name__}", (HeadDeadline, protocol), {})
    protocol.read_timeout = float(read_timeout)
    config.http_protocol_class = protocol
    config.timeout_keep_alive = idle_timeout
    return True
