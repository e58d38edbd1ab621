"""uvicorn's HTTP/1.1 protocol with the two guards it lacks against idle and slow clients.

uvicorn times out a connection only when it is idle after a response (``timeout_keep_alive``):
a client that connects and sends nothing, or sends its headers a byte at a time, holds the
connection forever, and its ``limit_concurrency`` counts such connections, so enough of them
turn every request, ``/health`` included, into a plain-text 503. This protocol:

- closes a connection whose request headers are not complete within ``header_timeout_s`` of
  its opening or of the previous response (slow headers, or nothing at all);
- caps open connections at ``max_connections`` by closing the *oldest idle* connection (no
  request in flight) when a new one arrives, never the new one, so a health check always gets
  in while any connection is idle. Overload of real requests is the app's to answer: a JSON
  429 with Retry-After from the slot queue.

The body of a request is timed by the app's gate (:mod:`runtime.server.gate`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class GuardedH11Protocol(H11Protocol):
    """See the module docstring; configure with :func:`guarded_protocol`."""

    header_timeout_s: float = 10.0
    max_connections: int = 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._opened = self.loop.time()
        self._arm_header_timer()
        if len(self.connections) > self.max_connections:
            self._evict_idle()

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _evict_idle(self) -> None:
        idle = sorted(
            (
                c
                for c in self.connections
                if isinstance(c, GuardedH11Protocol) and c is not self and not c._busy()
            ),
            key=lambda c: c._opened,
        )
        excess = len(self.connections) - self.max_connections
        for conn in idle[:excess]:
            log.warning("%d connections open: closing the oldest idle one", len(self.connections))
            conn.transport.close()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self._busy() and not self.transport.is_closing():
            log.info(
                "closing a connection that sent no complete request in %gs", self.header_timeout_s
            )
            self.transport.close()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not cycle:  # a request's headers arrived
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def guarded_protocol(*, header_timeout_s: float, max_connections: int) -> type[Any]:
    """A :class:`GuardedH11Protocol` subclass with these limits, for ``uvicorn.Config(http=)``."""
    return type(
        "BackplanH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "max_connections": max_connections},
    )
