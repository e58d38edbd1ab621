"""Chat prompts rendered with the model's own template (stored in the GGUF), via jinja2."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from runtime.engine.llama import Model
from runtime.errors import UsageError


@lru_cache(maxsize=8)
def _compile(template: str) -> Any:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise UsageError(f"the model's chat template refused the messages: {message}")

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def render_chat(model: Model, messages: Sequence[dict[str, str]]) -> str:
    """The prompt text for ``messages`` (``role``/``content``), ready for the assistant's turn."""
    template = model.chat_template()
    if not template:
        raise UsageError("this model has no chat template; pass --raw to send the prompt as is")
    return str(
        _compile(template).render(
            messages=list(messages),
            add_generation_prompt=True,
            bos_token=model.token_text(model.bos_token),
            eos_token=model.token_text(model.eos_token),
        )
    )


def chat_prompt_tokens(model: Model, messages: Sequence[dict[str, str]]) -> list[int]:
    text = render_chat(model, messages)
    bos = model.token_text(model.bos_token)
    add_special = not (bos and text.startswith(bos))
    return model.tokenize(text, add_special=add_special, parse_special=True)
