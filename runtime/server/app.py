"""The OpenAI-compatible HTTP API: ``create_app(settings)`` returns the FastAPI application.

Routes: ``POST /v1/completions``, ``POST /v1/chat/completions`` (JSON or SSE streaming of
committed text only), ``GET /v1/models``, ``/health``, ``/ready``, ``/metrics``. The model
loads in the background at startup (``/ready`` says when). The model's output is text sent
to the client; the server never executes it, unless started with --allow-code-execution,
and then only in the bubblewrap jail. The routes live in :mod:`runtime.server.routes`, request
parsing in :mod:`runtime.server.requests`, answering in :mod:`runtime.server.responses`, the
dependencies (core, API key) in :mod:`runtime.server.deps`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime.errors import BackplanError
from runtime.server import errors as err
from runtime.server.engine import ServerCore
from runtime.server.errors import APIError
from runtime.server.gate import Gate
from runtime.server.routes import generation, infill, probes, tokens
from runtime.server.settings import ServerSettings


def create_app(
    settings: ServerSettings | None = None, *, core: ServerCore | None = None
) -> FastAPI:
    """The server application. The model loads in a background thread when it starts, unless
    ``core`` (built from ``settings``) was loaded already (a Ray Serve replica loads before it
    reports ready)."""
    settings = settings or ServerSettings()
    core = core or ServerCore(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core.loop = asyncio.get_running_loop()
        loader = threading.Thread(target=core.load, name="model-load", daemon=True)
        if not core.ready and core.load_error is None:
            loader.start()
        try:
            yield
        finally:
            core.draining = True
            if loader.is_alive():
                await asyncio.to_thread(loader.join)
            await asyncio.to_thread(core.close)

    guarded = bool(settings.api_key)  # with keys, the schema and its page are not public
    app = FastAPI(
        title="backplan",
        version="0.1.0",
        summary="OpenAI-compatible server with verifier-guided backtracking on llama.cpp.",
        lifespan=lifespan,
        docs_url=None if guarded else "/docs",
        redoc_url=None,
        openapi_url=None if guarded else "/openapi.json",
    )
    app.state.core = core
    app.add_middleware(Gate, core=core)
    app.add_exception_handler(RequestValidationError, err.validation_handler)
    app.add_exception_handler(APIError, err.api_error_handler)
    app.add_exception_handler(BackplanError, err.backplan_error_handler)
    app.add_exception_handler(StarletteHTTPException, err.http_error_handler)
    app.add_exception_handler(Exception, err.unexpected_error_handler)

    app.include_router(probes.router)
    app.include_router(generation.router)
    app.include_router(infill.router)
    app.include_router(tokens.router)
    app.openapi()  # build the schema now: a broken schema fails at startup, not on first use
    return app
