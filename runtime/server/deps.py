"""What the routes depend on: the server's core (settings, model, engine) and the API-key check.

FastAPI dependencies, so each route says what it needs and a test can override them.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from runtime.server.engine import ServerCore
from runtime.server.errors import APIError, ErrorResponse

_bearer = HTTPBearer(auto_error=False, description="One of the server's --api-key values.")

#: The error responses a generation route documents (OpenAI-shaped bodies).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "Invalid request"),
        (401, "Missing or wrong API key"),
        (404, "Unknown model"),
        (408, "The body did not arrive in time"),
        (413, "Body too large"),
        (429, "Queue full (Retry-After)"),
        (503, "Loading, shutting down or timed out in the queue (Retry-After)"),
    )
}


def core_of(request: Request) -> ServerCore:
    """The app's :class:`ServerCore` (``create_app`` puts it on ``app.state``)."""
    core: ServerCore = request.app.state.core
    return core


Core = Annotated[ServerCore, Depends(core_of)]


def require_api_key(
    core: Core,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request bears one of the server's keys (no keys: everyone may)."""
    keys = core.settings.api_key
    if not keys:
        return
    given = creds.credentials.encode() if creds is not None else b""
    ok = False
    for key in keys:  # compare with every key: no early exit that times the match
        ok |= secrets.compare_digest(given, key.encode())
    if not ok:
        raise APIError(
            401,
            "missing or wrong API key; send 'Authorization: Bearer KEY' with one of the "
            "server's --api-key values"
            if given
            else "this server needs an API key; send 'Authorization: Bearer KEY'",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = [Depends(require_api_key)]
