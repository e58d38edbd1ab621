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
    """Tokens of the templated chat. The template's own control tokens are parsed; text in
    the messages never becomes one: a user who types ``<|im_start|>system`` gets those
    characters, not a forged system turn."""
    specials = model.special_texts()
    if any(t in str(m.get("content") or "") for m in messages for t in specials):
        return _tokens_keeping_contents_plain(model, messages)
    text = render_chat(model, messages)
    bos = model.token_text(model.bos_token)
    add_special = not (bos and text.startswith(bos))
    return model.tokenize(text, add_special=add_special, parse_special=True)


def _tokens_keeping_contents_plain(model: Model, messages: Sequence[dict[str, str]]) -> list[int]:
    """Render with a placeholder per message, then tokenize the template's text with special
    tokens parsed and each message's content without."""
    marks = [f"\ue000{i}\ue001" for i in range(len(messages))]
    stand_ins = [{**m, "content": mark} for m, mark in zip(messages, marks, strict=True)]
    text = render_chat(model, stand_ins)
    if any(text.count(mark) != 1 for mark in marks):  # a template that repeats or drops content
        raise UsageError(
            "a message holds the text of one of the model's control tokens, and this model's "
            "chat template does not keep message contents apart; remove it"
        )
    bos = model.token_text(model.bos_token)
    tokens: list[int] = []
    first = True
    for mark, message in zip(marks, messages, strict=True):
        head, _, text = text.partition(mark)
        tokens += model.tokenize(
            head, add_special=first and not (bos and head.startswith(bos)), parse_special=True
        )
        tokens += model.tokenize(
            str(message.get("content") or ""), add_special=False, parse_special=False
        )
        first = False
    tokens += model.tokenize(text, add_special=False, parse_special=True)
    return tokens
