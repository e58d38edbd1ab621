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
from runtime.server.app import create_app
from runtime.server.engine import ServerCore, split_spec
from runtime.server.settings import ServerSettings, check_bind, check_port
from runtime.verifiers.factory import shipped_head_for
from runtime.verifiers.head import ValueHead

log = logging.getLogger(__name__)


def precheck(settings: ServerSettings) -> None:
    """Fail fast, before binding, on what would only fail later: bind address, model, verifier."""
    check_bind(settings)
    check_port(settings.host, settings.port)
    model_path(settings.model)  # fetches a registry model once if it is not cached
    parts = split_spec(settings.verifier)
    if not parts and settings.verifier.strip():
        raise UsageError(f"--verifier {settings.verifier!r} names no verifier; e.g. syntax")
    for name, head in parts:
        if name == "none":
            continue
        if name not in ("syntax", "latent") and not name.startswith("model:"):
            raise UsageError(
                f"unknown verifier {name!r} in --verifier; use none, syntax, latent=HEAD or "
                "model:NAME=HEAD, '+' to stack"
            )
        if name.startswith("model:"):
            model_path(name[len("model:") :])
        if name != "syntax" and head in (None, "shipped") and not _shipped(settings.model, name):
            raise UsageError(
                f"--verifier {name} needs a head (none is shipped for this model): "
                f"{name}=PATH.npz, or {name}=constant to measure cost without rejecting"
            )
        if head not in (None, "constant", "shipped"):
            if not Path(head).is_file():
                raise UsageError(f"head file {head} does not exist (--verifier {name}={head})")
            ValueHead.load(head)  # a corrupt head is refused now, not after binding


def _shipped(model: str, verifier: str) -> bool:
    """Whether a head is shipped for ``model`` (a name or a registry GGUF's path)."""
    main = registry_name(model)
    reader = registry_name(verifier[len("model:") :]) if verifier.startswith("model:") else None
    if main is None or (verifier.startswith("model:") and reader is None):
        return False
    return shipped_head_for(main, reader) is not None


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
        limit_concurrency=settings.parallel + settings.queue + 64,
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
