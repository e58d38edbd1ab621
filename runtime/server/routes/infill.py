"""Fill-in-the-middle: llama-server's ``POST /infill`` and ``suffix`` on ``/v1/completions``.

The prompt is built from the GGUF's FIM tokens (:mod:`runtime.engine.fim`, llama-server's
layout); a model without them gets a 400 that says so. The syntax verifier judges the middle
in its file (``fim`` mode: the code before + the middle + the code after must parse). The
answer of ``/infill`` is llama-server's (``content``, ``tokens_cached``, ``timings`` ...) plus
``backtrack``; streamed, it is llama-server's SSE chunks (``content``, ``stop``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from runtime.engine.fim import ContextFile
from runtime.server.deps import ERRORS, Authorized, Core
from runtime.server.engine import ServerCore
from runtime.server.jobs import Chunk, ClientGone, Failed, Finished
from runtime.server.requests import generation_request, max_tokens_for, prompt_from_fim
from runtime.server.responses import Started, backtrack_of, finished, sse, start_job
from runtime.server.schemas import InfillRequest, InfillResponse, InfillTimings

router = APIRouter()

_STOP_TYPE = {"stop": "eos", "length": "limit", "cancelled": "none"}


def infill_response(
    core: ServerCore, started: Started, fin: Finished, truncated: bool, content: str
) -> InfillResponse:
    t = fin.trace
    evaluated = t.prompt_tokens - t.cached_prompt_tokens
    prompt_ms = t.seconds.prefill_s * 1000
    predicted_ms = max(t.seconds.total_s - t.seconds.prefill_s, 0.0) * 1000
    return InfillResponse(
        content=content,
        id_slot=started.job.slot,
        model=core.model_id,
        tokens_predicted=t.emitted_tokens,
        tokens_evaluated=t.prompt_tokens,
        tokens_cached=t.cached_prompt_tokens,
        truncated=truncated,
        stop_type="word" if fin.stop_word else _STOP_TYPE.get(fin.finish_reason, "none"),  # type: ignore[arg-type]
        stopping_word=fin.stop_word,
        has_new_line="\n" in fin.text,
        timings=InfillTimings(
            cache_n=t.cached_prompt_tokens,
            prompt_n=evaluated,
            prompt_ms=round(prompt_ms, 3),
            prompt_per_second=round(evaluated / prompt_ms * 1000, 2) if prompt_ms else 0.0,
            predicted_n=t.emitted_tokens,
            predicted_ms=round(predicted_ms, 3),
            predicted_per_second=(
                round(t.emitted_tokens / predicted_ms * 1000, 2) if predicted_ms else 0.0
            ),
        ),
        backtrack=backtrack_of(fin, started.queue_s),
    )


@router.post("/infill", response_model=InfillResponse, dependencies=Authorized, responses=ERRORS)
async def infill(body: InfillRequest, request: Request, core: Core) -> Response:
    """Fill the gap between ``input_prefix`` and ``input_suffix`` (``input_extra``: other
    files as context; ``prompt``: the start of the middle), as llama-server's ``/infill``."""
    core.require_ready()
    limit = max_tokens_for(
        core.settings,
        None if body.n_predict < 0 else body.n_predict,
        core.settings.max_tokens_limit,
    )
    files = [ContextFile(f.filename, f.text) for f in body.input_extra]
    fim = await run_in_threadpool(
        prompt_from_fim,
        core,
        body.input_prefix,
        body.input_suffix,
        limit,
        files,
        body.prompt,
        param="input_prefix",
    )
    gen = generation_request(core, body, fim.tokens, limit, "fim")
    gen.code_before, gen.code_after = body.input_prefix + body.prompt, body.input_suffix
    gen.cache_prompt = gen.cache_prompt and body.cache_prompt
    try:
        started = await start_job(core, request, gen)
        if not gen.stream:
            fin = await finished(started.job, request)
            out = infill_response(core, started, fin, fim.truncated, fin.text)
            return JSONResponse(out.model_dump())
    except ClientGone:
        return Response(status_code=499)
    return StreamingResponse(
        _stream(core, started, fim.truncated),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(core: ServerCore, started: Started, truncated: bool) -> AsyncIterator[bytes]:
    job = started.job
    first = True
    try:
        while True:
            ev = await job.next_event()
            if isinstance(ev, Chunk):
                if first:
                    first = False
                    core.metrics.ttft.observe(time.monotonic() - started.t_arrive)
                yield sse({"index": 0, "content": ev.text, "stop": False, "id_slot": job.slot})
            elif isinstance(ev, Finished):
                final = infill_response(core, started, ev, truncated, "")
                yield sse(json.loads(final.model_dump_json()))
                break
            elif isinstance(ev, Failed):
                yield sse(ev.error.body())
                break
    finally:
        job.cancel.set()  # a client gone mid-stream frees its slot at the next decode
