"""Generation: ``POST /v1/completions`` (with ``suffix``: fill in the middle) and
``POST /v1/chat/completions``.

Prompt preparation (templating, tokenising) runs in a worker thread, never on the event loop:
a heavy chat cannot freeze ``/health`` or other streams.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from runtime.server.deps import ERRORS, Authorized, Core
from runtime.server.errors import APIError
from runtime.server.requests import (
    generation_request,
    grammar_of,
    max_tokens_for,
    prompt_from_chat,
    prompt_from_completion,
    prompt_from_fim,
)
from runtime.server.responses import run_generation
from runtime.server.schemas import ChatRequest, ChatResponse, CompletionRequest, CompletionResponse

router = APIRouter()


@router.post(
    "/v1/completions", response_model=CompletionResponse, dependencies=Authorized, responses=ERRORS
)
async def completions(body: CompletionRequest, request: Request, core: Core) -> Response:
    """Continue a prompt (raw text, no chat template). ``stream`` sends SSE chunks."""
    core.require_ready()
    core.check_model(body.model)
    if body.echo:
        raise APIError(400, "echo is not supported; prepend the prompt yourself", param="echo")
    limit = max_tokens_for(core.settings, body.max_tokens, 16)
    if body.suffix:  # fill in the middle: the prompt is the text before the gap
        prefix = (
            body.prompt[0]
            if isinstance(body.prompt, list) and len(body.prompt) == 1
            else body.prompt
        )
        if not isinstance(prefix, str):
            raise APIError(
                400,
                "with suffix (fill-in-the-middle) the prompt is the text before the gap: send "
                "it as a string, not token ids",
                param="prompt",
            )
        fim = await run_in_threadpool(prompt_from_fim, core, prefix, body.suffix, limit)
        gen = generation_request(core, body, fim.tokens, limit, "fim")
        gen.code_before, gen.code_after = prefix, body.suffix
    else:
        tokens = await run_in_threadpool(prompt_from_completion, core, body)
        gen = generation_request(core, body, tokens, limit, "code")
    return await run_generation(core, request, body, gen, "text")


@router.post(
    "/v1/chat/completions", response_model=ChatResponse, dependencies=Authorized, responses=ERRORS
)
async def chat_completions(body: ChatRequest, request: Request, core: Core) -> Response:
    """Answer a conversation (the GGUF's chat template). ``stream`` sends SSE chunks."""
    core.require_ready()
    core.check_model(body.model)
    if body.tools:
        raise APIError(400, "tools are not supported", param="tools")
    tokens = await run_in_threadpool(prompt_from_chat, core, body)
    asked = body.max_completion_tokens if body.max_tokens is None else body.max_tokens
    limit = max_tokens_for(core.settings, asked, core.settings.max_tokens_limit)
    gen = generation_request(core, body, tokens, limit, "fenced")
    gen.grammar = await run_in_threadpool(grammar_of, core, body)
    return await run_generation(core, request, body, gen, "chat")
