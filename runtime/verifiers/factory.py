"""Build a verifier from its command-line spelling.

Grammar: ``none`` | ``syntax`` | ``examples[=N]`` | ``latent[=HEAD]`` | ``model:NAME[=HEAD]``,
joined with ``+`` to stack several (values multiply). HEAD is a head file, ``shipped`` (the
default: the head shipped for this model, see ``runtime/verifiers/heads/``), or ``constant``
for a head that never rejects (to measure cost alone). ``examples`` runs the prompt's own examples
against each finished answer in a sandboxed process, rejecting at most N answers (default 3).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from runtime.engine.llama import Model
from runtime.errors import HeadError, UsageError
from runtime.verifiers.base import Verifier
from runtime.verifiers.examples import DocExamplesVerifier
from runtime.verifiers.head import ValueHead
from runtime.verifiers.latent import LatentVerifier
from runtime.verifiers.separate import SeparateModelVerifier
from runtime.verifiers.stack import StackedVerifier
from runtime.verifiers.syntax import PythonSyntaxVerifier

SPEC_HELP = (
    "none | syntax | examples[=N] | latent[=HEAD] | model:NAME[=HEAD], '+' to stack; HEAD is "
    "a head file, 'shipped' (default: the head shipped for the model) or 'constant' (never "
    "rejects: measures cost only); examples runs the "
    "prompt's examples on each finished answer in a sandbox, rejecting at most N (default 3)"
)


def _count(ref: str | None, default: int) -> int:
    if ref is None:
        return default
    if not (ref.isascii() and ref.isdigit()) or not 0 <= int(ref) <= 64:
        raise UsageError(f"examples={ref}: N must be a whole number of rejections from 0 to 64")
    return int(ref)


HEADS_DIR = Path(__file__).parent / "heads"


def _registry_name(model: Model) -> str | None:
    from runtime.models.registry import registry_name

    return registry_name(model.path)


def shipped_head_path(main: Model, reader: Model | None = None) -> Path | None:
    """The head shipped for ``main``'s tokens read by ``reader`` (None: ``main`` itself).

    A reader with the main model's own weights gives the latent head's scores (the same
    hidden states), so it uses the latent head.
    """
    if reader is None or reader.path == main.path:
        return shipped_head_for(_registry_name(main))
    reader_name = _registry_name(reader)
    return shipped_head_for(_registry_name(main), reader_name) if reader_name else None


def shipped_head_for(main_name: str | None, reader_name: str | None = None) -> Path | None:
    """By registry names: ``<main>-latent.npz`` or ``<main>-by-<reader>.npz`` if shipped."""
    if main_name is None:
        return None
    if reader_name is None or reader_name == main_name:
        stem = f"{main_name}-latent"
    else:
        stem = f"{main_name}-by-{reader_name}"
    path = HEADS_DIR / f"{stem}.npz"
    return path if path.is_file() else None


def _head(ref: str | None, n_embd: int, what: str, shipped: Path | None = None) -> ValueHead:
    if ref is None or ref == "shipped":
        if shipped is None:
            raise HeadError(
                f"no trained head is shipped for {what} on this model; pass one as "
                f"'{what}=PATH.npz' (backplan verifier train makes one), or "
                f"'{what}=constant' to measure cost without rejecting"
            )
        ref = str(shipped)
    if ref == "constant":
        return ValueHead.constant(n_embd)
    head = ValueHead.load(Path(ref))
    head.check_model(n_embd)
    return head


def build_verifier(
    spec: str,
    main: Model,
    *,
    n_ctx: int,
    n_threads: int | None = None,
    syntax_mode: Literal["code", "fenced"] = "fenced",
    prefix_code: str = "",
    block: int = 16,
    load_model: Callable[[str], Model] | None = None,
) -> Verifier | None:
    """The verifier ``spec`` names, wired to ``main``; None for ``none``."""
    spec = spec.strip()
    if not spec or spec == "none":
        return None
    parts = [s.strip() for s in spec.split("+") if s.strip()]
    if not parts:
        raise UsageError(f"verifier {spec!r} names no verifier; use {SPEC_HELP}")
    built: list[Verifier] = []
    for part in parts:
        name, _, head_ref = part.partition("=")
        head_ref_opt = head_ref or None
        if name == "syntax":
            built.append(
                PythonSyntaxVerifier(main.piece, prefix_code=prefix_code, mode=syntax_mode)
            )
        elif name == "examples":
            if syntax_mode != "fenced":
                raise UsageError(
                    "the examples verifier judges an answer's fenced code block; use it "
                    "with chat prompts (not raw completions)"
                )
            built.append(DocExamplesVerifier(main.piece, max_rejections=_count(head_ref_opt, 3)))
        elif name == "latent":
            shipped = shipped_head_path(main)
            built.append(LatentVerifier(_head(head_ref_opt, main.n_embd, "latent", shipped)))
        elif name.startswith("model:"):
            ref = name[len("model:") :]
            if not ref:
                raise UsageError("model: needs a model name, e.g. model:smollm2-135m")
            if load_model is None:
                raise UsageError("separate verifier models need a model loader")
            vmodel = load_model(ref)
            head = _head(head_ref_opt, vmodel.n_embd, name, shipped_head_path(main, vmodel))
            built.append(
                SeparateModelVerifier(
                    vmodel,
                    head,
                    n_ctx=n_ctx,
                    block=block,
                    n_threads=n_threads,
                    main_vocab=main.n_vocab,
                    label=ref,
                )
            )
        else:
            raise UsageError(f"unknown verifier {part!r}; use {SPEC_HELP}")
    return built[0] if len(built) == 1 else StackedVerifier(built)
