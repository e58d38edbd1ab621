"""Fill-in-the-middle prompts from a GGUF's FIM tokens, laid out as llama-server's ``/infill``
lays them (its ``format_prompt_infill``), so an editor plugin gets the same prompt from both:

    [FIM_REP]myproject\\n [FIM_SEP]file0\\n text0 ... [FIM_SEP]filename\\n
    [FIM_PRE]prefix [start of the middle] [FIM_SUF]suffix [FIM_MID]

(repository-level context, arXiv 2409.12186, only where the model has those tokens). What does
not fit the budget is cut as llama-server cuts it: the prefix keeps its end, the suffix its
start, in a 3:1 share of the room, and the context files fill what is left, keeping their end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runtime.engine.llama import Model
from runtime.errors import ContextOverflowError, UsageError

#: The tokens a model needs to infill at all.
REQUIRED = ("pre", "suf", "mid")


@dataclass(frozen=True)
class ContextFile:
    """A file the editor sends as context (llama-server's ``input_extra`` chunk)."""

    filename: str
    text: str


@dataclass(frozen=True)
class FimPrompt:
    tokens: list[int]
    truncated: bool  # part of the prefix, suffix or context files did not fit


def fim_supported(model: Model) -> str | None:
    """None when ``model`` can infill; else what it lacks, in words."""
    have = model.fim_tokens()
    missing = [k for k in REQUIRED if k not in have]
    if not missing:
        return None
    return (
        f"the model {model.path.name} has no fill-in-the-middle tokens "
        f"({', '.join('FIM_' + k.upper() for k in missing)} missing): it was not trained to "
        "infill; serve a model that was (e.g. qwen2.5-coder-0.5b)"
    )


def fim_prompt(
    model: Model,
    prefix: str,
    suffix: str,
    *,
    budget: int,
    files: Sequence[ContextFile] = (),
    middle_start: str = "",
) -> FimPrompt:
    """The prompt's tokens, at most ``budget`` of them; ``middle_start``: the start of the
    middle already typed (llama-server's ``prompt``)."""
    problem = fim_supported(model)
    if problem:
        raise UsageError(problem)
    fim = model.fim_tokens()

    def tok(text: str) -> list[int]:
        return model.tokenize(text, add_special=False, parse_special=False) if text else []

    pre, suf, start = tok(prefix), tok(suffix), tok(middle_start)
    extra: list[int] = []
    if "rep" in fim:
        extra += [fim["rep"], *tok("myproject\n")]
    for f in files:
        if "sep" in fim:
            extra += [fim["sep"], *tok(f.filename + "\n")]
        else:
            extra += tok("\n\n--- snippet ---\n\n")
        extra += tok(f.text)
    if "sep" in fim:
        extra += [fim["sep"], *tok("filename\n")]
    head = [model.bos_token] if model.add_bos and model.bos_token >= 0 else []
    room = budget - len(head) - len(REQUIRED) - len(start)
    if room < 1:
        raise ContextOverflowError(
            f"the start of the middle has {len(start)} tokens and the prompt may hold "
            f"{budget}; shorten it, ask for fewer tokens, or raise the context (--n-ctx)"
        )
    n_suf = min(len(suf), room // 4)
    n_pre = min(len(pre), room - n_suf)
    n_suf = min(len(suf), room - n_pre)  # a short prefix leaves the suffix more
    n_extra = min(len(extra), room - n_pre - n_suf)
    tokens = [
        *head,
        *extra[len(extra) - n_extra :],
        fim["pre"],
        *pre[len(pre) - n_pre :],
        *start,
        fim["suf"],
        *suf[:n_suf],
        fim["mid"],
    ]
    truncated = n_pre < len(pre) or n_suf < len(suf) or bool(files and n_extra < len(extra))
    return FimPrompt(tokens, truncated)
