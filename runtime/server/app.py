"""The OpenAI-compatible HTTP API: ``create_app(settings)`` returns the FastAPI application.

Routes: ``POST /v1/completions``, ``POST /v1/chat/completions`` (JSON or SSE streaming of
committed text only), ``GET /v1/models``, ``/health``, ``/ready``, ``/metrics``. The model
loads in the background at startup (``/ready`` says when). The model's output is text sent
to the client; the server never executes it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime.errors import BackplanError, UsageError
from runtime.samplers.choice import SamplingParams
from runtime.server import errors as err
from runtime.server.engine import ServerCore
from runtime.server.errors import APIError, ErrorResponse
from runtime.server.gate import Gate
from runtime.server.jobs import Chunk, ClientGone, Failed, Finished, GenerationRequest, Job
from runtime.server.schemas import (
    AssistantMessage,
    Backtrack,
    ChatChoice,
    ChatRequest,
    ChatResponse,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    ModelCard,
    ModelList,
    Usage,
)
from runtime.server.settings import ServerSettings

MAX_STOPS = 16
MAX_STOP_CHARS = 256

_bearer = HTTPBearer(auto_error=False, description="One of the server's --api-key values.")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "Invalid request"),
        (401, "Missing or wrong API key"),
        (404, "Unknown model"),
        (413, "Body too large"),
        (429, "Queue full (Retry-After)"),
        (503, "Loading, shutting down or timed out in the queue (Retry-After)"),
    )
}


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def _backtrack(fin: Finished, queue_s: float) -> Backtrack:
    t = fin.trace
    return Backtrack(
        strategy=t.strategy,
        verifier=t.verifier,
        rollbacks=t.rollbacks,
        rejected_tokens=t.rejected_tokens,
        rolled_back_tokens=t.rolled_back_tokens,
        verifier_calls=t.verifier_calls,
        generated_tokens=t.generated_tokens,
        main_forward_tokens=t.main_forward_tokens,
        verifier_forward_tokens=t.verifier_forward_tokens,
        forward_per_token=round(t.forward_per_emitted, 4),
        decode_tokens_per_s=round(t.decode_tok_s, 2),
        queue_s=round(queue_s, 4),
        timed_out=fin.timed_out,
        code_runs=t.code_runs,
        code_cpu_s=round(t.code_cpu_s, 4),
        isolation=t.isolation,
    )


def _usage(fin: Finished) -> Usage:
    t = fin.trace
    return Usage(
        prompt_tokens=t.prompt_tokens,
        completion_tokens=t.emitted_tokens,
        total_tokens=t.prompt_tokens + t.emitted_tokens,
    )


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The server application. The model loads in a background thread when it starts."""
    settings = settings or ServerSettings()
    core = ServerCore(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core.loop = asyncio.get_running_loop()
        loader = threading.Thread(target=core.load, name="model-load", daemon=True)
        loader.start()
        try:
            yield
        finally:
            core.draining = True
            await asyncio.to_thread(loader.join)
            await asyncio.to_thread(core.close)

    app = FastAPI(
        title="backplan",
        version="0.1.0",
        summary="OpenAI-compatible server with verifier-guided backtracking on llama.cpp.",
        lifespan=lifespan,
    )
    app.state.core = core
    app.add_middleware(Gate, core=core)
    app.add_exception_handler(RequestValidationError, err.validation_handler)
    app.add_exception_handler(APIError, err.api_error_handler)
    app.add_exception_handler(BackplanError, err.backplan_error_handler)
    app.add_exception_handler(StarletteHTTPException, err.http_error_handler)
    app.add_exception_handler(Exception, err.unexpected_error_handler)

    keys = [k.encode() for k in settings.api_key]

    async def auth(
        creds: _Credentials,
    ) -> None:
        if not keys:
            return
        given = creds.credentials.encode() if creds is not None else b""
        ok = False
        for key in keys:  # compare with every key: no early exit that times the match
            ok |= secrets.compare_digest(given, key)
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

    # -- probes and metadata --------------------------------------------------------------------
    @app.get("/health", tags=["probes"])
    async def health() -> dict[str, str]:
        """Alive (the process serves HTTP), whether or not the model is loaded."""
        return {"status": "ok"}

    @app.get("/ready", tags=["probes"], responses={503: {"description": "Not ready"}})
    async def ready() -> JSONResponse:
        """Ready to generate: the model is loaded and the server is not shutting down."""
        if core.ready and not core.draining:
            return JSONResponse(
                {"status": "ready", "model": core.model_id, "slots": settings.parallel}
            )
        state = "draining" if core.draining else "failed" if core.load_error else "loading"
        body: dict[str, Any] = {"status": state}
        if core.load_error:
            body["error"] = core.load_error
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})

    @app.get(
        "/metrics",
        tags=["probes"],
        dependencies=[Depends(auth)],
        response_class=Response,
        responses={401: _ERRORS[401]},
    )
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(core.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get(
        "/v1/models",
        response_model=ModelList,
        dependencies=[Depends(auth)],
        responses={401: _ERRORS[401]},
    )
    async def list_models() -> ModelList:
        return ModelList(data=[ModelCard(id=core.model_id, created=core.created)])

    @app.get(
        "/v1/models/{model}",
        response_model=ModelCard,
        dependencies=[Depends(auth)],
        responses={401: _ERRORS[401], 404: _ERRORS[404]},
    )
    async def get_model(model: str) -> ModelCard:
        core.check_model(model)
        return ModelCard(id=core.model_id, created=core.created)

    # -- generation -----------------------------------------------------------------------------
    def _text(value: str, param: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise APIError(
                400, f"{param} is not valid Unicode (a lone surrogate?)", param=param
            ) from None
        return value

    def _prompt_from_completion(body: CompletionRequest) -> list[int]:
        assert core.model is not None
        prompt = body.prompt
        if isinstance(prompt, list):
            if not prompt:
                raise APIError(400, "the prompt is empty", param="prompt")
            if isinstance(prompt[0], str | list):
                if len(prompt) != 1:
                    raise APIError(
                        400, "one prompt per request; send the others separately", param="prompt"
                    )
                prompt = prompt[0]  # type: ignore[assignment]
        if isinstance(prompt, str):
            if len(prompt) > settings.max_body_bytes:
                raise APIError(413, "the prompt is too long", param="prompt")
            tokens = core.model.tokenize(
                _text(prompt, "prompt"), add_special=True, parse_special=False
            )
        else:
            tokens = [int(t) for t in prompt]  # type: ignore[union-attr]
            bad = [t for t in tokens if not 0 <= t < core.model.n_vocab]
            if bad:
                raise APIError(
                    400,
                    f"token id {bad[0]} is outside the vocabulary (0..{core.model.n_vocab - 1})",
                    param="prompt",
                )
        if not tokens or (isinstance(prompt, str) and not prompt.strip()):
            raise APIError(400, "the prompt is empty; send the text to continue", param="prompt")
        return tokens

    def _prompt_from_chat(body: ChatRequest) -> list[int]:
        from jinja2 import TemplateError

        from runtime.engine.chat import chat_prompt_tokens

        assert core.model is not None
        messages = []
        for msg in body.messages:
            content = msg.content
            if isinstance(content, list):
                content = "".join(part.text for part in content)
            role = "system" if msg.role == "developer" else msg.role
            messages.append({"role": role, "content": _text(content or "", "messages")})
        try:
            return chat_prompt_tokens(core.model, messages)
        except UsageError:
            raise
        except TemplateError as exc:
            raise APIError(
                400,
                f"the model's chat template could not render the messages: {exc}",
                param="messages",
            ) from None

    def _generation_request(
        body: CompletionRequest | ChatRequest,
        tokens: list[int],
        max_tokens: int,
        syntax_mode: Literal["code", "fenced"],
    ) -> GenerationRequest:
        s = settings
        if max_tokens > s.max_tokens_limit:
            raise APIError(
                400,
                f"max_tokens is {max_tokens}; this server allows at most "
                f"{s.max_tokens_limit} (--max-tokens-limit)",
                param="max_tokens",
                code="max_tokens_exceeded",
            )
        if len(tokens) > s.max_prompt_tokens:
            raise APIError(
                400,
                f"the prompt has {len(tokens)} tokens; this server accepts at "
                f"most {s.max_prompt_tokens} (--max-prompt-tokens)",
                param="prompt",
                code="prompt_too_long",
            )
        assert core.engine is not None
        n_ctx = core.engine.n_ctx_per_slot
        if len(tokens) >= n_ctx:
            raise APIError(
                400,
                f"the prompt has {len(tokens)} tokens and a slot's context holds "
                f"{n_ctx}; shorten the prompt (the operator can raise --n-ctx)",
                param="prompt",
                code="context_length_exceeded",
            )
        ext = body.backplan
        tests = list(ext.tests or []) if ext is not None else []
        verifier = core.check_verifier(
            ext.verifier if ext is not None and ext.verifier is not None else s.verifier, tests
        )
        strategy = ext.strategy if ext is not None and ext.strategy is not None else s.strategy
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stops) > MAX_STOPS:
            raise APIError(400, f"at most {MAX_STOPS} stop strings", param="stop")
        if any(len(x) > MAX_STOP_CHARS for x in stops):
            raise APIError(
                400, f"stop strings are at most {MAX_STOP_CHARS} characters", param="stop"
            )
        greedy = body.temperature == 0.0 or body.top_p == 0.0
        sampling = SamplingParams(
            temperature=0.0 if greedy else body.temperature,
            top_p=1.0 if greedy else body.top_p,
            top_k=body.top_k,
            ignore_eos=bool(ext and ext.ignore_eos),
        )
        return GenerationRequest(
            prompt_tokens=tokens,
            max_tokens=max_tokens,
            sampling=sampling,
            seed=None if body.seed is None else body.seed % (2**63),
            verifier=verifier,
            strategy=strategy,
            syntax_mode=syntax_mode,
            tests=tests,
            stop=stops,
            stream=body.stream,
            deadline=time.monotonic() + s.timeout_s,
        )

    async def _run(
        request: Request,
        body: CompletionRequest | ChatRequest,
        gen: GenerationRequest,
        kind: Literal["text", "chat"],
    ) -> Response:
        t_arrive = time.monotonic()
        disconnected: Callable[[], Awaitable[bool]] = request.is_disconnected
        try:
            slot = await core.acquire(gen.deadline, disconnected)
        except ClientGone:
            return Response(status_code=499)
        queue_s = time.monotonic() - t_arrive
        core.metrics.queue_wait.observe(queue_s)
        job = core.start(gen, slot)
        rid = ("cmpl-" if kind == "text" else "chatcmpl-") + secrets.token_hex(12)
        created = int(time.time())
        try:
            first = await job.next_event(disconnected)
        except ClientGone:
            return Response(status_code=499)
        if isinstance(first, Failed):
            raise first.error
        if not gen.stream:
            try:
                while True:
                    ev = await job.next_event(disconnected)
                    if isinstance(ev, Failed):
                        raise ev.error
                    if isinstance(ev, Finished):
                        break
            except ClientGone:
                return Response(status_code=499)
            usage, backtrack = _usage(ev), _backtrack(ev, queue_s)
            out: CompletionResponse | ChatResponse
            if kind == "text":
                out = CompletionResponse(
                    id=rid,
                    created=created,
                    model=core.model_id,
                    usage=usage,
                    backtrack=backtrack,
                    choices=[
                        CompletionChoice(index=0, text=ev.text, finish_reason=ev.finish_reason)
                    ],
                )
            else:
                out = ChatResponse(
                    id=rid,
                    created=created,
                    model=core.model_id,
                    usage=usage,
                    backtrack=backtrack,
                    choices=[
                        ChatChoice(
                            index=0,
                            message=AssistantMessage(content=ev.text),
                            finish_reason=ev.finish_reason,
                        )
                    ],
                )
            return JSONResponse(out.model_dump())
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _stream(job, rid, created, kind, t_arrive, queue_s, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(
        job: Job,
        rid: str,
        created: int,
        kind: Literal["text", "chat"],
        t_arrive: float,
        queue_s: float,
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        obj = "text_completion" if kind == "text" else "chat.completion.chunk"
        head = {"id": rid, "object": obj, "created": created, "model": core.model_id}

        def choice(text: str | None, finish: str | None, role: bool = False) -> dict[str, Any]:
            if kind == "text":
                return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
            delta: dict[str, str] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        first_token = True
        try:
            if kind == "chat":
                yield _sse({**head, "choices": [choice("", None, role=True)]})
            while True:
                ev = await job.next_event()
                if isinstance(ev, Chunk):
                    if first_token:
                        first_token = False
                        core.metrics.ttft.observe(time.monotonic() - t_arrive)
                    yield _sse({**head, "choices": [choice(ev.text, None)]})
                elif isinstance(ev, Finished):
                    final = {
                        **head,
                        "choices": [choice(None if kind == "chat" else "", ev.finish_reason)],
                        "backtrack": _backtrack(ev, queue_s).model_dump(),
                    }
                    yield _sse(final)
                    if include_usage:
                        yield _sse({**head, "choices": [], "usage": _usage(ev).model_dump()})
                    break
                elif isinstance(ev, Failed):
                    yield _sse(ev.error.body())
                    break
            yield _sse("[DONE]")
        finally:
            job.cancel.set()  # a client gone mid-stream frees its slot at the next decode

    def _max_tokens(value: int | None, default: int) -> int:
        return value if value is not None else min(default, settings.max_tokens_limit)

    @app.post(
        "/v1/completions",
        response_model=CompletionResponse,
        dependencies=[Depends(auth)],
        responses=_ERRORS,
    )
    async def completions(body: CompletionRequest, request: Request) -> Response:
        """Continue a prompt (raw text, no chat template). ``stream`` sends SSE chunks."""
        core.require_ready()
        core.check_model(body.model)
        if body.echo:
            raise APIError(400, "echo is not supported; prepend the prompt yourself", param="echo")
        if body.logprobs is not None:
            raise APIError(400, "logprobs are not supported", param="logprobs")
        if body.suffix:
            raise APIError(400, "suffix (fill-in-the-middle) is not supported", param="suffix")
        tokens = _prompt_from_completion(body)
        gen = _generation_request(body, tokens, _max_tokens(body.max_tokens, 16), "code")
        return await _run(request, body, gen, "text")

    @app.post(
        "/v1/chat/completions",
        response_model=ChatResponse,
        dependencies=[Depends(auth)],
        responses=_ERRORS,
    )
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        """Answer a conversation (the GGUF's chat template). ``stream`` sends SSE chunks."""
        core.require_ready()
        core.check_model(body.model)
        if body.logprobs:
            raise APIError(400, "logprobs are not supported", param="logprobs")
        if body.tools:
            raise APIError(400, "tools are not supported", param="tools")
        tokens = _prompt_from_chat(body)
        limit = body.max_completion_tokens if body.max_tokens is None else body.max_tokens
        gen = _generation_request(
            body, tokens, _max_tokens(limit, settings.max_tokens_limit), "fenced"
        )
        return await _run(request, body, gen, "chat")

    app.openapi()  # build the schema now: a broken schema fails at startup, not on first use
    return app
