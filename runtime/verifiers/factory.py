"""Build a verifier from its spelling: parse it (:mod:`runtime.verifiers.spec`), then build each
part with its kind's builder (:mod:`runtime.verifiers.registry`); stacked parts multiply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from runtime.verifiers.registry import KINDS, SPEC_HELP, BuildContext
from runtime.verifiers.shipped import shipped_head_for, shipped_head_path
from runtime.verifiers.spec import VerifierSpec

if TYPE_CHECKING:
    from runtime.engine.llama import Model
    from runtime.sandbox import Limits
    from runtime.verifiers.base import Verifier
    from runtime.verifiers.syntax import SyntaxMode


def build_verifier(
    spec: str | VerifierSpec,
    main: Model,
    *,
    n_ctx: int,
    n_threads: int | None = None,
    syntax_mode: SyntaxMode = "fenced",
    prefix_code: str = "",
    suffix_code: str = "",
    block: int = 16,
    load_model: Callable[[str], Model] | None = None,
    checks: Sequence[str] = (),
    limits: Limits | None = None,
) -> Verifier | None:
    """The verifier ``spec`` names, wired to ``main``; None for ``none``."""
    from runtime.verifiers.stack import StackedVerifier

    parsed = VerifierSpec.parse(spec)
    if parsed.is_none:
        return None
    ctx = BuildContext(
        main=main,
        n_ctx=n_ctx,
        n_threads=n_threads,
        syntax_mode=syntax_mode,
        prefix_code=prefix_code,
        suffix_code=suffix_code,
        block=block,
        load_model=load_model,
        checks=tuple(checks),
        limits=limits,
    )
    built = [KINDS[part.kind].build(part, ctx) for part in parsed.parts]
    return built[0] if len(built) == 1 else StackedVerifier(built)


__all__ = ["SPEC_HELP", "build_verifier", "shipped_head_for", "shipped_head_path"]
