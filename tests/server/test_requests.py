"""Request parsing on its own (runtime/server/requests.py): no app, no server process.

A :class:`ServerCore` with the real SmolLM2-135M tokenizer (no engine started: the slot
context size is all that parsing reads of it).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from runtime.server.engine import ServerCore
from runtime.server.errors import APIError
from runtime.server.requests import (
    generation_request,
    max_tokens_for,
    prompt_from_chat,
    prompt_from_completion,
)
from runtime.server.schemas import ChatRequest, CompletionRequest
from runtime.server.settings import ServerSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def core(smol: Any) -> ServerCore:
    c = ServerCore(ServerSettings(max_messages=4, max_tokens_limit=64, max_prompt_tokens=100))
    c.model = smol
    c.engine = SimpleNamespace(n_ctx_per_slot=256)  # type: ignore[assignment]
    return c


def _chat(**body: Any) -> ChatRequest:
    return ChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], **body})


def test_a_prompt_becomes_tokens(core: ServerCore, smol: Any) -> None:
    tokens = prompt_from_completion(core, CompletionRequest(prompt="def add(a, b):"))
    assert tokens == smol.tokenize("def add(a, b):", add_special=True, parse_special=False)
    ids = prompt_from_completion(core, CompletionRequest(prompt=[1, 2, 3]))
    assert ids == [1, 2, 3]


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"prompt": [10**9]}, 400, "outside the vocabulary"),
        ({"prompt": ["a", "b"]}, 400, "one prompt per request"),
        ({"prompt": "   "}, 400, "empty"),
    ],
)
def test_bad_prompts(core: ServerCore, body: dict[str, Any], code: int, needle: str) -> None:
    with pytest.raises(APIError) as err:
        prompt_from_completion(core, CompletionRequest.model_validate(body))
    assert err.value.status == code and needle in str(err.value)


def test_too_many_messages(core: ServerCore) -> None:
    body = ChatRequest.model_validate({"messages": [{"role": "user", "content": "x"}] * 5})
    with pytest.raises(APIError, match="at most 4"):
        prompt_from_chat(core, body)


def test_generation_request_fields_and_limits(core: ServerCore) -> None:
    tokens = prompt_from_chat(core, _chat())
    gen = generation_request(core, _chat(temperature=0, stop="\n\n"), tokens, 32, "fenced")
    assert gen.prompt_tokens == tokens and gen.max_tokens == 32 and gen.stop == ["\n\n"]
    assert gen.sampling.temperature == 0 and gen.verifier == "none"
    assert max_tokens_for(core.settings, None, 1000) == 64  # capped by --max-tokens-limit
    with pytest.raises(APIError, match="max-tokens-limit"):
        generation_request(core, _chat(), tokens, 65, "fenced")
    with pytest.raises(APIError, match="--max-prompt-tokens"):
        generation_request(core, _chat(), list(range(101)), 8, "fenced")
    with pytest.raises(APIError, match="at most 16 stop"):
        generation_request(core, _chat(stop=[str(i) for i in range(17)]), tokens, 8, "fenced")


@pytest.mark.parametrize(
    ("backplan", "needle"),
    [
        ({"verifier": "examples"}, "--allow-code-execution"),
        ({"verifier": "syntax", "tests": ["assert True"]}, "only by the tests verifier"),
        ({"verifier": "sytax"}, "did you mean syntax"),
        ({"verifier": "latent=constant"}, "reads no hidden states"),
        ({"verifier": "model:smollm2-135m=constant"}, "did not load"),
    ],
)
def test_verifier_requests_are_checked(
    core: ServerCore, backplan: dict[str, Any], needle: str
) -> None:
    tokens = prompt_from_chat(core, _chat())
    with pytest.raises(APIError) as err:
        generation_request(core, _chat(backplan=backplan), tokens, 8, "fenced")
    assert err.value.status == 400 and needle in str(err.value)
