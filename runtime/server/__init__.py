"""backplan's OpenAI-compatible production server.

``backplan serve`` and ``python -m runtime.server`` run it.

:func:`create_app` builds the ASGI application from :class:`ServerSettings`; :func:`run_server`
checks the settings, then serves it with uvicorn until SIGINT/SIGTERM, finishing requests in
flight before it exits. Imports are lazy: importing this package loads neither FastAPI nor
llama.cpp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.server.settings import ServerSettings, check_bind

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServerSettings", "check_bind", "create_app", "run_server"]


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    from runtime.server.app import create_app as _create_app

    return _create_app(settings)


def run_server(settings: ServerSettings, **kwargs: Any) -> None:
    from runtime.server.run import run_server as _run_server

    _run_server(settings, **kwargs)
