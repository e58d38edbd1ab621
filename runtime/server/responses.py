"""Answering a generation: wait for a slot, then one JSON body or a stream of SSE chunks.

Only committed text is ever sent; a client that goes away (while queued, or mid-stream) frees
its slot and is answered 499 in the metrics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from runtime.server.engine import ServerCore
from runtime.server.jobs import Chunk, ClientGone, Failed, Finished, GenerationRequest, Job
from runtime.server.schemas import (
    AssistantMessage,
    Backtrack,
    ChatChoice,
    ChatLogprobs,
    ChatRequest,
    ChatResponse,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    ContentLogprob,
    PromptTokensDetails,
    TopLogprob,
    Usage,
)


def sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def backtrack_of(fin: Finished, queue_s: float) -> Backtrack:
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


def _piece(core: ServerCore, token: int) -> tuple[str, list[int]]:
    assert core.model is not None
    raw = core.model.piece(token)
    return raw.decode("utf-8", "replace"), list(raw)


def chat_logprobs(core: ServerCore, fin: Finished) -> ChatLogprobs | None:
    if fin.logprobs is None:
        return None
    content = []
    for lp in fin.logprobs:
        text, raw = _piece(core, lp.token)
        top = [
            TopLogprob(token=t, logprob=v, bytes=b)
            for (t, b), v in ((_piece(core, tok), v) for tok, v in lp.top)
        ]
        content.append(ContentLogprob(token=text, logprob=lp.logprob, bytes=raw, top_logprobs=top))
    return ChatLogprobs(content=content)


def completion_logprobs(core: ServerCore, fin: Finished) -> CompletionLogprobs | None:
    if fin.logprobs is None:
        return None
    tokens, offsets, top = [], [], []
    at = 0
    for lp in fin.logprobs:
        text, _ = _piece(core, lp.token)
        tokens.append(text)
        offsets.append(at)
        at += len(text)
        top.append({_piece(core, t)[0]: v for t, v in lp.top})
    return CompletionLogprobs(
        tokens=tokens,
        token_logprobs=[lp.logprob for lp in fin.logprobs],
        top_logprobs=top,
        text_offset=offsets,
    )


def usage_of(fins: list[Finished]) -> Usage:
    """One request's usage: its prompt once, the completions of all its choices."""
    t = fins[0].trace
    completion = sum(f.trace.emitted_tokens for f in fins)
    return Usage(
        prompt_tokens=t.prompt_tokens,
        completion_tokens=completion,
        total_tokens=t.prompt_tokens + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=t.cached_prompt_tokens),
    )


@dataclass
class Started:
    """A request's job that has its slot and has evaluated its prompt."""

    job: Job
    t_arrive: float  # time.monotonic() when the request came
    queue_s: float  # seconds it waited for a slot


async def start_job(core: ServerCore, request: Request, gen: GenerationRequest) -> Started:
    """Wait for a slot, start the generation and wait until its prompt is evaluated; raises
    :class:`ClientGone` when the client leaves meanwhile."""
    t_arrive = time.monotonic()
    disconnected: Callable[[], Awaitable[bool]] = request.is_disconnected
    slot = await core.acquire(
        gen.deadline, disconnected, gen.prompt_tokens if gen.cache_prompt else ()
    )
    queue_s = time.monotonic() - t_arrive
    core.metrics.queue_wait.observe(queue_s)
    job = core.start(gen, slot)
    first = await job.next_event(disconnected)
    if isinstance(first, Failed):
        raise first.error
    return Started(job, t_arrive, queue_s)


async def finished(job: Job, request: Request) -> Finished:
    """The job's end (non-streaming); raises :class:`ClientGone` when the client leaves."""
    while True:
        ev = await job.next_event(request.is_disconnected)
        if isinstance(ev, Failed):
            raise ev.error
        if isinstance(ev, Finished):
            return ev


async def _all_finished(
    core: ServerCore, request: Request, gens: list[GenerationRequest]
) -> list[tuple[Started, Finished]]:
    """Every generation of a request (``n`` choices: one slot each, started together) to its
    end; a failure or a departed client stops them all."""
    started: list[Started] = []
    try:
        starts = await asyncio.gather(
            *(start_job(core, request, g) for g in gens), return_exceptions=True
        )
        started = [s for s in starts if isinstance(s, Started)]
        failed = [s for s in starts if isinstance(s, BaseException)]
        if failed:
            raise failed[0]
        ends = await asyncio.gather(
            *(finished(s.job, request) for s in started), return_exceptions=True
        )
        failed = [e for e in ends if isinstance(e, BaseException)]
        if failed:
            raise failed[0]
        return [(s, e) for s, e in zip(started, ends, strict=True) if isinstance(e, Finished)]
    finally:
        for s in started:
            s.job.cancel.set()  # a no-op for a finished job; frees the slot of a running one


def choices_of(gen: GenerationRequest, n: int) -> list[GenerationRequest]:
    """``n`` copies of ``gen``; with a seed, choice i draws with seed + i."""
    if n == 1:
        return [gen]
    return [
        dataclasses.replace(gen, seed=None if gen.seed is None else (gen.seed + i) % (2**63))
        for i in range(n)
    ]


async def run_generation(
    core: ServerCore,
    request: Request,
    body: CompletionRequest | ChatRequest,
    gen: GenerationRequest,
    kind: Literal["text", "chat"],
) -> Response:
    rid = ("cmpl-" if kind == "text" else "chatcmpl-") + secrets.token_hex(12)
    created = int(time.time())
    if not gen.stream:
        try:
            done = await _all_finished(core, request, choices_of(gen, body.n))
        except ClientGone:
            return Response(status_code=499)
        fins = [ev for _, ev in done]
        backtracks = [backtrack_of(ev, s.queue_s) for s, ev in done]
        usage = usage_of(fins)
        more = backtracks if len(backtracks) > 1 else None
        out: CompletionResponse | ChatResponse
        if kind == "text":
            out = CompletionResponse(
                id=rid,
                created=created,
                model=core.model_id,
                usage=usage,
                backtrack=backtracks[0],
                backtrack_choices=more,
                choices=[
                    CompletionChoice(
                        index=i,
                        text=ev.text,
                        logprobs=completion_logprobs(core, ev),
                        finish_reason=ev.finish_reason,
                    )
                    for i, ev in enumerate(fins)
                ],
            )
        else:
            out = ChatResponse(
                id=rid,
                created=created,
                model=core.model_id,
                usage=usage,
                backtrack=backtracks[0],
                backtrack_choices=more,
                choices=[
                    ChatChoice(
                        index=i,
                        message=AssistantMessage(content=ev.text),
                        logprobs=chat_logprobs(core, ev),
                        finish_reason=ev.finish_reason,
                    )
                    for i, ev in enumerate(fins)
                ],
            )
        return JSONResponse(out.model_dump())
    try:
        started = await start_job(core, request, gen)
    except ClientGone:
        return Response(status_code=499)
    job, t_arrive, queue_s = started.job, started.t_arrive, started.queue_s
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        _stream(core, job, rid, created, kind, t_arrive, queue_s, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    core: ServerCore,
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
            yield sse({**head, "choices": [choice("", None, role=True)]})
        while True:
            ev = await job.next_event()
            if isinstance(ev, Chunk):
                if first_token:
                    first_token = False
                    core.metrics.ttft.observe(time.monotonic() - t_arrive)
                yield sse({**head, "choices": [choice(ev.text, None)]})
            elif isinstance(ev, Finished):
                final = {
                    **head,
                    "choices": [choice(None if kind == "chat" else "", ev.finish_reason)],
                    "backtrack": backtrack_of(ev, queue_s).model_dump(),
                }
                yield sse(final)
                if include_usage:
                    yield sse({**head, "choices": [], "usage": usage_of([ev]).model_dump()})
                break
            elif isinstance(ev, Failed):
                yield sse(ev.error.body())
                break
        yield sse("[DONE]")
    finally:
        job.cancel.set()  # a client gone mid-stream frees its slot at the next decode
