"""``POST /tokenize`` and ``POST /detokenize``: the model's tokenizer, as llama-server serves it.

Editor plugins count tokens before they send a context (to fit the window); the work runs in a
worker thread, never on the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from runtime.server.deps import ERRORS, Authorized, Core
from runtime.server.engine import ServerCore
from runtime.server.errors import APIError
from runtime.server.requests import checked_text
from runtime.server.schemas import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
    TokenPiece,
)

router = APIRouter()


def _tokenize(core: ServerCore, body: TokenizeRequest) -> TokenizeResponse:
    assert core.model is not None
    model = core.model
    ids = model.tokenize(
        checked_text(body.content, "content"), add_special=body.add_special, parse_special=False
    )
    if body.with_pieces:
        return TokenizeResponse(
            tokens=[TokenPiece(id=t, piece=model.piece(t).decode("utf-8", "replace")) for t in ids]
        )
    return TokenizeResponse(tokens=ids)


def _detokenize(core: ServerCore, body: DetokenizeRequest) -> DetokenizeResponse:
    assert core.model is not None
    n_vocab = core.model.n_vocab
    bad = [t for t in body.tokens if not 0 <= t < n_vocab]
    if bad:
        raise APIError(
            400, f"token id {bad[0]} is outside the vocabulary (0..{n_vocab - 1})", param="tokens"
        )
    return DetokenizeResponse(content=core.model.detokenize(body.tokens))


@router.post(
    "/tokenize", response_model=TokenizeResponse, dependencies=Authorized, responses=ERRORS
)
async def tokenize(body: TokenizeRequest, core: Core) -> TokenizeResponse:
    """The token ids (and, with ``with_pieces``, their text) of ``content``."""
    core.require_ready()
    return await run_in_threadpool(_tokenize, core, body)


@router.post(
    "/detokenize", response_model=DetokenizeResponse, dependencies=Authorized, responses=ERRORS
)
async def detokenize(body: DetokenizeRequest, core: Core) -> DetokenizeResponse:
    """The text of ``tokens``."""
    core.require_ready()
    return await run_in_threadpool(_detokenize, core, body)
