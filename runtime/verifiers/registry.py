"""Every verifier kind backplan knows, in one table: how it is spelled, what its argument is,
what it needs, and how it is built. Adding a verifier is one entry here (and its class).

The grammar that reads these spellings is :mod:`runtime.verifiers.spec`; the properties below
are what ``serve`` (code execution, hidden states, second models), the profiler and the planner
decide by. Builders import their classes when called, so reading the table is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from runtime.errors import UsageError
from runtime.verifiers.shipped import load_head, shipped_head_path

if TYPE_CHECKING:
    from runtime.engine.llama import Model
    from runtime.sandbox import Limits
    from runtime.verifiers.base import Verifier
    from runtime.verifiers.spec import VerifierPart
    from runtime.verifiers.syntax import SyntaxMode

#: ``model:self``: a verifier model with the main model's own weights (an equal-size copy).
SELF = "self"


@dataclass(frozen=True)
class BuildContext:
    """What building a verifier may use: the main model and the run's settings."""

    main: Model
    n_ctx: int
    n_threads: int | None = None
    syntax_mode: SyntaxMode = "fenced"
    prefix_code: str = ""  # code before the generated text (and, in fim mode, after it:)
    suffix_code: str = ""
    block: int = 16
    load_model: Callable[[str], Model] | None = None
    checks: Sequence[str] = ()
    limits: Limits | None = None


@dataclass(frozen=True)
class VerifierKind:
    """One kind of verifier, as the grammar, the server and the planner see it."""

    name: str
    summary: str
    build: Callable[[VerifierPart, BuildContext], Verifier]
    arg: Literal["none", "count", "head"] = "none"
    default_count: int | None = None
    max_count: int = 64
    runs_code: bool = False
    needs_hidden: bool = False
    request_checks: bool = False

    @property
    def spelling(self) -> str:
        if self.name == "model":
            return "model:NAME[=HEAD]"
        return {"none": self.name, "count": f"{self.name}[=N]", "head": f"{self.name}[=HEAD]"}[
            self.arg
        ]


def _syntax(part: VerifierPart, ctx: BuildContext) -> Verifier:
    from runtime.verifiers.syntax import PythonSyntaxVerifier

    return PythonSyntaxVerifier(
        ctx.main.piece,
        prefix_code=ctx.prefix_code,
        suffix_code=ctx.suffix_code,
        mode=ctx.syntax_mode,
        tokenize=lambda text: ctx.main.tokenize(text, add_special=False, parse_special=False),
    )


def _fenced_only(name: str, ctx: BuildContext) -> None:
    if ctx.syntax_mode != "fenced":
        raise UsageError(
            f"the {name} verifier judges an answer's fenced code block; use it with chat "
            "prompts (not raw completions)"
        )


def _examples(part: VerifierPart, ctx: BuildContext) -> Verifier:
    from runtime.verifiers.examples import DocExamplesVerifier

    _fenced_only("examples", ctx)
    return DocExamplesVerifier(ctx.main.piece, max_rejections=part.count, limits=ctx.limits)


def _tests(part: VerifierPart, ctx: BuildContext) -> Verifier:
    from runtime.verifiers.request_tests import RequestTestsVerifier

    _fenced_only("tests", ctx)
    if not ctx.checks:
        raise UsageError(
            "the tests verifier runs tests that come with the request; give them "
            '(server: "backplan": {"tests": ["assert f(1) == 2"]}; generate: --test)'
        )
    return RequestTestsVerifier(
        ctx.main.piece, tests=ctx.checks, max_rejections=part.count, limits=ctx.limits
    )


def _latent(part: VerifierPart, ctx: BuildContext) -> Verifier:
    from runtime.verifiers.latent import LatentVerifier

    head = load_head(part.head, ctx.main.n_embd, "latent", shipped_head_path(ctx.main))
    return LatentVerifier(head)


def _model(part: VerifierPart, ctx: BuildContext) -> Verifier:
    from runtime.verifiers.separate import SeparateModelVerifier

    assert part.model is not None
    if ctx.load_model is None:
        raise UsageError("separate verifier models need a model loader")
    vmodel = ctx.load_model(part.model)  # the loader resolves SELF to the main model
    name = f"model:{part.model}"
    head = load_head(part.head, vmodel.n_embd, name, shipped_head_path(ctx.main, vmodel))
    return SeparateModelVerifier(
        vmodel,
        head,
        n_ctx=ctx.n_ctx,
        block=ctx.block,
        n_threads=ctx.n_threads,
        main_vocab=ctx.main.n_vocab,
        label=part.model,
    )


KINDS: dict[str, VerifierKind] = {
    k.name: k
    for k in (
        VerifierKind(
            "syntax",
            "the output parses as a prefix of valid Python",
            _syntax,
        ),
        VerifierKind(
            "examples",
            "the prompt's docstring examples run against each finished answer in the "
            "sandbox, rejecting at most N answers (default 3)",
            _examples,
            arg="count",
            default_count=3,
            runs_code=True,
        ),
        VerifierKind(
            "tests",
            "the request's own tests run against each finished answer in the sandbox, "
            "rejecting at most N answers (default 3)",
            _tests,
            arg="count",
            default_count=3,
            runs_code=True,
            request_checks=True,
        ),
        VerifierKind(
            "latent",
            "a value head on the main model's own last hidden state",
            _latent,
            arg="head",
            needs_hidden=True,
        ),
        VerifierKind(
            "model",
            "a separate verifier model (same tokenizer; 'self' for a copy of the main "
            "model) with its own context, KV cache and head",
            _model,
            arg="head",
        ),
    )
}


def spec_help(*, short: bool = False) -> str:
    """One line of help for ``--verifier``, from the table (``short``: the spellings only)."""
    kinds = "none | " + " | ".join(k.spelling for k in KINDS.values()) + ", '+' to stack"
    if short:
        return kinds
    return (
        f"{kinds}; HEAD is a head file, 'shipped' (default: the head shipped for the model) "
        "or 'constant' (never rejects: measures cost only); NAME 'self' is a copy of the "
        "main model"
    )


SPEC_HELP = spec_help()

__all__ = ["KINDS", "SELF", "SPEC_HELP", "BuildContext", "VerifierKind", "spec_help"]
