"""Turning a request body into work: prompt tokens and a :class:`GenerationRequest`.

Plain functions of the server's core and the parsed body, so request handling is tested without
building the app (``tests/server/test_requests.py``); the routes call them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from runtime.engine.fim import ContextFile, FimPrompt, fim_prompt, fim_supported
from runtime.engine.grammar import Grammar, json_object_grammar, json_schema_grammar
from runtime.errors import UsageError
from runtime.samplers.choice import SamplingParams
from runtime.server.engine import ServerCore
from runtime.server.errors import APIError
from runtime.server.jobs import GenerationRequest
from runtime.server.schemas import ChatRequest, CompletionRequest, InfillRequest
from runtime.server.settings import ServerSettings
from runtime.verifiers.syntax import SyntaxMode

Body = CompletionRequest | ChatRequest | InfillRequest

MAX_STOPS = 16
MAX_STOP_CHARS = 256


def checked_text(value: str, param: str) -> str:
    """``value`` if it encodes as UTF-8 (a lone surrogate does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise APIError(
            400, f"{param} is not valid Unicode (a lone surrogate?)", param=param
        ) from None
    return value


def prompt_from_completion(core: ServerCore, body: CompletionRequest) -> list[int]:
    """The prompt's tokens: raw text (special tokens not parsed) or token ids."""
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
        if len(prompt) > core.settings.max_body_bytes:
            raise APIError(413, "the prompt is too long", param="prompt")
        tokens = core.model.tokenize(
            checked_text(prompt, "prompt"), add_special=True, parse_special=False
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


def prompt_from_chat(core: ServerCore, body: ChatRequest) -> list[int]:
    """The conversation templated with the model's chat template, as tokens."""
    from jinja2 import TemplateError

    from runtime.engine.chat import chat_prompt_tokens

    assert core.model is not None
    if len(body.messages) > core.settings.max_messages:
        raise APIError(
            400,
            f"the chat has {len(body.messages)} messages; this server accepts at most "
            f"{core.settings.max_messages} (--max-messages)",
            param="messages",
            code="too_many_messages",
        )
    messages = []
    for msg in body.messages:
        content = msg.content
        if isinstance(content, list):
            content = "".join(part.text for part in content)
        role = "system" if msg.role == "developer" else msg.role
        messages.append({"role": role, "content": checked_text(content or "", "messages")})
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


def prompt_from_fim(
    core: ServerCore,
    prefix: str,
    suffix: str,
    max_tokens: int,
    files: Sequence[ContextFile] = (),
    middle_start: str = "",
    *,
    param: str = "suffix",
) -> FimPrompt:
    """A fill-in-the-middle prompt that leaves ``max_tokens`` of the slot free; a 400 when the
    model cannot infill."""
    assert core.model is not None and core.engine is not None
    problem = fim_supported(core.model)
    if problem:
        raise APIError(400, problem, param=param, code="fim_not_supported")
    check_max_tokens(core.settings, max_tokens)
    for text, name in ((prefix, "prefix"), (suffix, "suffix"), (middle_start, "prompt")):
        checked_text(text, name)
    for f in files:
        checked_text(f.text, "input_extra")
        checked_text(f.filename, "input_extra")
    budget = min(core.settings.max_prompt_tokens, core.engine.n_ctx_per_slot - max_tokens)
    try:
        return fim_prompt(
            core.model, prefix, suffix, budget=budget, files=files, middle_start=middle_start
        )
    except UsageError as exc:
        raise APIError(400, str(exc), param=param, code="context_length_exceeded") from None


def check_max_tokens(settings: ServerSettings, max_tokens: int) -> None:
    if max_tokens > settings.max_tokens_limit:
        raise APIError(
            400,
            f"max_tokens is {max_tokens}; this server allows at most "
            f"{settings.max_tokens_limit} (--max-tokens-limit)",
            param="max_tokens",
            code="max_tokens_exceeded",
        )


def grammar_of(core: ServerCore, body: ChatRequest) -> str | None:
    """The GBNF that ``response_format`` asks the answer to follow (None: free text); a 400
    for a schema that cannot be one."""
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        gbnf = json_object_grammar()
    else:
        schema = fmt.json_schema.schema_ if fmt.json_schema is not None else None
        if schema is None:
            raise APIError(
                400,
                'response_format json_schema needs its schema: {"type": "json_schema", '
                '"json_schema": {"name": "...", "schema": {...}}}',
                param="response_format",
            )
        try:
            gbnf = json_schema_grammar(schema)
        except UsageError as exc:
            raise APIError(400, str(exc), param="response_format") from None
    assert core.model is not None
    try:
        Grammar(core.model, gbnf).close()  # parse it now: a bad one is this request's 400
    except UsageError as exc:
        raise APIError(400, str(exc), param="response_format") from None
    return gbnf


def max_tokens_for(settings: ServerSettings, value: int | None, default: int) -> int:
    """The request's max_tokens, else ``default`` capped at the server's limit."""
    return value if value is not None else min(default, settings.max_tokens_limit)


def generation_request(
    core: ServerCore,
    body: Body,
    tokens: list[int],
    max_tokens: int,
    syntax_mode: SyntaxMode,
) -> GenerationRequest:
    s = core.settings
    check_max_tokens(s, max_tokens)
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
        raise APIError(400, f"stop strings are at most {MAX_STOP_CHARS} characters", param="stop")
    n = getattr(body, "n", 1)
    if n > s.parallel:
        raise APIError(
            400,
            f"n is {n}; each choice takes a slot and this server has {s.parallel} "
            "(--parallel): ask for fewer",
            param="n",
        )
    if n > 1 and body.stream:
        raise APIError(400, "n > 1 is answered whole: send stream: false", param="n")
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
        seed=None if body.seed is None or body.seed == -1 else body.seed % (2**63),
        verifier=verifier,
        strategy=strategy,
        syntax_mode=syntax_mode,
        tests=tests,
        stop=stops,
        stream=body.stream,
        deadline=time.monotonic() + s.timeout_s,
        cache_prompt=not ext or ext.cache_prompt,
        logprobs=logprobs_asked(body),
    )


def logprobs_asked(body: Body) -> int | None:
    """Alternatives per output token the request asks for (None: no logprobs)."""
    if isinstance(body, InfillRequest):
        return None
    if isinstance(body, ChatRequest):
        if body.top_logprobs is not None and not body.logprobs:
            raise APIError(400, "top_logprobs needs logprobs: true; add it", param="top_logprobs")
        asked = (body.top_logprobs or 0) if body.logprobs else None
        param = "logprobs"
    else:
        asked, param = body.logprobs, "logprobs"
    if asked is not None and body.stream:
        raise APIError(
            400,
            "logprobs are returned with the whole answer; send stream: false to get them",
            param=param,
        )
    return asked
