"""Serve the app with uvicorn: check the settings first, drain requests in flight on shutdown."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from runtime.errors import UsageError
from runtime.models.fetch import model_path
from runtime.models.registry import registry_name
from runtime.sandbox import require_jail
from runtime.server.app import create_app
from runtime.server.engine import ServerCore
from runtime.server.protocol import guarded_protocol
from runtime.server.settings import ServerSettings, check_bind, check_port
from runtime.verifiers.head import ValueHead
from runtime.verifiers.registry import SELF
from runtime.verifiers.shipped import shipped_head_for
from runtime.verifiers.spec import VerifierSpec

log = logging.getLogger(__name__)


def precheck(settings: ServerSettings) -> None:
    """Fail fast, before binding, on what would only fail later: bind address, jail, model,
    verifier models and heads."""
    check_bind(settings)
    if settings.allow_code_execution:
        require_jail("--allow-code-execution")
    check_port(settings.host, settings.port)
    model_path(settings.model)  # fetches a registry model once if it is not cached
    spec = VerifierSpec.parse(settings.verifier)
    for part in spec.parts:
        if part.info.arg != "head":
            continue
        name = str(part).partition("=")[0]
        if part.model is not None and part.model != SELF:
            model_path(part.model)
        if part.head == "shipped" and not _shipped(settings.model, part.model):
            raise UsageError(
                f"--verifier {name} needs a head (none is shipped for this model): "
                f"{name}=PATH.npz, or {name}=constant to measure cost without rejecting"
            )
        if part.head not in ("constant", "shipped"):
            if not Path(part.head).is_file():
                raise UsageError(f"head file {part.head} does not exist (--verifier {part})")
            ValueHead.load(part.head)  # a corrupt head is refused now, not after binding


def _shipped(model: str, reader: str | None) -> bool:
    """Whether a head is shipped for ``model`` (a name or a registry GGUF's path), read by
    itself (``reader`` None or ``self``) or by the verifier model ``reader``."""
    main = registry_name(model)
    if main is None:
        return False
    if reader is None or reader == SELF:
        return shipped_head_for(main) is not None
    reader_name = registry_name(reader)
    return reader_name is not None and shipped_head_for(main, reader_name) is not None


class _Server(uvicorn.Server):
    """uvicorn's server that marks the app draining on the first SIGINT/SIGTERM."""

    def __init__(self, config: uvicorn.Config, core: ServerCore) -> None:
        super().__init__(config)
        self._core = core

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._core.draining = True
        super().handle_exit(sig, frame)


def run_server(settings: ServerSettings, **uvicorn_kwargs: Any) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight finish before the process exits."""
    precheck(settings)
    app = create_app(settings)
    core: ServerCore = app.state.core
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.timeout_s) + 10,
        # no limit_concurrency: it counts idle connections and answers a plain 503; the
        # protocol bounds connections and slow clients, the slot queue answers overload (429)
        http=guarded_protocol(
            header_timeout_s=settings.header_timeout_s,
            max_connections=settings.max_connections,
        ),
        **uvicorn_kwargs,
    )
    server = _Server(config, core)
    auth = f"{len(settings.api_key)} API key(s)" if settings.api_key else "no API key"
    print(
        f"backplan serve: {core.model_id} on http://{settings.host}:{settings.port} ({auth}; "
        "/ready says when the model is loaded; Ctrl-C finishes requests in flight and stops)",
        file=sys.stderr,
        flush=True,
    )
    server.run()
