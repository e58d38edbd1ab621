"""The server's outer ASGI layer: body-size limit and per-route request metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.server.engine import ServerCore
from runtime.server.errors import APIError

_ROUTES = {
    "/v1/completions",
    "/v1/chat/completions",
    "/v1/models",
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
}


class Gate:
    """ASGI middleware: body-size limit (413), body timeout (408) and per-route request counts
    and latency (a client that hangs up mid-body counts as 499, not as a server error)."""

    def __init__(self, app: ASGIApp, core: ServerCore) -> None:
        self.app = app
        self.core = core

    async def _drain(self, receive: Receive) -> None:
        """Read and drop the rest of a body (bounded by the body timeout) before refusing it."""

        async def rest() -> None:
            while True:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rest(), self.core.settings.body_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in _ROUTES else "other"
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            limit = self.core.settings.max_body_bytes
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                status = 413 if length.isdigit() else 400
                msg = (
                    f"the body has {int(length)} bytes; this server accepts at most {limit} "
                    "(--max-body-bytes)"
                    if length.isdigit()
                    else "the Content-Length header is not a number"
                )
                if status == 413 and int(length) <= 2 * limit:
                    await self._drain(receive)  # read it, so the client gets the 413, not a reset
                await APIError(status, msg, code="body_too_large").response()(scope, receive, send)
                return
            chunks: list[bytes] = []
            size = 0
            body_deadline = time.monotonic() + self.core.settings.body_timeout_s
            while True:
                try:
                    message = await asyncio.wait_for(
                        receive(), timeout=max(0.0, body_deadline - time.monotonic())
                    )
                except asyncio.TimeoutError:
                    status = 408
                    await APIError(
                        408,
                        f"the request body did not arrive within "
                        f"{self.core.settings.body_timeout_s:g}s (--body-timeout-s)",
                        code="body_timeout",
                    ).response()(scope, receive, send)
                    return
                if message["type"] != "http.request":
                    status = 499  # the client went away before sending its body: not a 500
                    return
                body = message.get("body", b"")
                size += len(body)
                if size > limit:
                    status = 413
                    if message.get("more_body", False) and size <= 2 * limit:
                        await self._drain(receive)
                    await APIError(
                        413,
                        f"the body exceeds {limit} bytes (--max-body-bytes)",
                        code="body_too_large",
                    ).response()(scope, receive, send)
                    return
                chunks.append(body)
                if not message.get("more_body", False):
                    break
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                return await receive()

            await self.app(scope, replay, send_wrapper)
        finally:
            m = self.core.metrics
            m.requests.labels(route, str(status)).inc()
            m.latency.labels(route).observe(time.perf_counter() - t0)
