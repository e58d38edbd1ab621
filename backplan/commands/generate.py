"""``backplan generate``: one generation, streamed, with its trace."""

from __future__ import annotations

import json
import sys

import click

from backplan.options import (
    field_help,
    model_option,
    seed_option,
    strategy_option,
    threads_option,
    validated,
    verifier_option,
)
from runtime.errors import UsageError
from runtime.models.registry import DEFAULT_MODEL
from runtime.samplers.choice import SamplingParams
from runtime.samplers.regenerate import RegenerateParams
from runtime.samplers.strategies import ThresholdParams, VGBParams


@click.command()
@click.argument("prompt")
@click.option(
    "--test",
    "tests",
    multiple=True,
    help="A test the tests verifier runs against the answer in the jail (repeatable), e.g. "
    "--test 'assert add(1, 2) == 3'; use with --verifier tests (or syntax+tests).",
)
@model_option(DEFAULT_MODEL)
@verifier_option(
    ". examples and tests run the answer in the jail, rejecting at most N answers (default 3)."
)
@strategy_option()
@click.option("--max-tokens", "-n", type=click.IntRange(1, 32768), default=128, show_default=True)
@click.option(
    "--temperature",
    "-t",
    type=float,
    default=None,
    help="0 = greedy. Default: 0 for plain/threshold, 0.7 for vgb.",
)
@click.option("--top-k", type=int, default=None, help=field_help(SamplingParams, "top_k"))
@click.option("--top-p", type=float, default=None, help=field_help(SamplingParams, "top_p"))
@seed_option(None, "Makes sampling and the walk reproducible.")
@click.option(
    "--raw",
    is_flag=True,
    help="Send PROMPT as is (no chat template); the syntax "
    "verifier then treats the whole output as code.",
)
@click.option("--system", default=None, help="System message for the chat template.")
@click.option("--n-ctx", type=click.IntRange(64, 131072), default=2048, show_default=True)
@threads_option()
@click.option(
    "--threshold",
    "reject_below",
    type=float,
    default=None,
    help=field_help(ThresholdParams, "threshold"),
)
@click.option(
    "--rollback",
    "rollback_tokens",
    type=int,
    default=None,
    help=field_help(ThresholdParams, "rollback_tokens"),
)
@click.option(
    "--budget",
    "max_backtracks",
    type=int,
    default=None,
    help=field_help(ThresholdParams, "max_backtracks"),
)
@click.option("--block", type=int, default=None, help=field_help(ThresholdParams, "block"))
@click.option(
    "--action-tokens", type=int, default=None, help=field_help(VGBParams, "action_tokens")
)
@click.option("--window", type=int, default=None, help=field_help(VGBParams, "window"))
@click.option(
    "--token-budget", type=float, default=None, help=field_help(VGBParams, "token_budget")
)
@click.option("--attempts", type=int, default=None, help=field_help(RegenerateParams, "attempts"))
@click.option(
    "--accept",
    type=click.Choice(["threshold", "value"]),
    default=None,
    help=field_help(RegenerateParams, "accept"),
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {text, trace} as JSON at the end instead of streaming text.",
)
def generate(
    prompt: str,
    tests: tuple[str, ...],
    model: str | None,
    verifier: str,
    strategy: str,
    max_tokens: int,
    temperature: float | None,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    raw: bool,
    system: str | None,
    n_ctx: int,
    threads: int | None,
    reject_below: float | None,
    rollback_tokens: int | None,
    max_backtracks: int | None,
    block: int | None,
    action_tokens: int | None,
    window: int | None,
    token_budget: float | None,
    attempts: int | None,
    accept: str | None,
    as_json: bool,
) -> None:
    """Generate a reply to PROMPT (- reads it from standard input) with a verifier and a
    backtracking strategy."""
    from runtime.generation import Runtime, RuntimeSettings
    from runtime.verifiers.request_tests import check_tests
    from runtime.verifiers.spec import VerifierSpec

    if prompt == "-":
        prompt = sys.stdin.read()
    spec = VerifierSpec.parse(verifier)
    if tests and spec.part("tests") is None:
        raise UsageError("--test is run only by the tests verifier; add tests to --verifier")
    if spec.part("tests") is not None:
        if not tests:
            raise UsageError("--verifier tests needs the tests to run: --test 'assert f(1) == 2'")
        check_tests(list(tests))
    if raw and system is not None:
        raise UsageError("--system goes into the chat template, which --raw skips; drop one")
    if temperature is None:
        temperature = 0.7 if strategy == "vgb" else 0.0
    sampling = validated(SamplingParams, temperature=temperature, top_k=top_k, top_p=top_p)
    settings = validated(
        RuntimeSettings,
        model=model,
        verifier=verifier,
        tests=list(tests),
        strategy=strategy,
        n_ctx=n_ctx,
        n_threads=threads,
        syntax_mode="code" if raw else "fenced",
        threshold=validated(
            ThresholdParams,
            threshold=reject_below,
            rollback_tokens=rollback_tokens,
            max_backtracks=max_backtracks,
            block=block,
        ),
        vgb=validated(
            VGBParams, action_tokens=action_tokens, window=window, token_budget=token_budget
        ),
        regenerate=validated(
            RegenerateParams, attempts=attempts, threshold=reject_below, accept=accept
        ),
    )
    with Runtime(settings) as rt:
        tokens = rt.prompt_tokens(prompt, chat=not raw, system=system)
        stream = rt.stream(tokens, max_tokens=max_tokens, sampling=sampling, seed=seed)
        if as_json:
            result = stream.collect()
            click.echo(json.dumps({"text": result.text, "trace": result.trace.summary()}, indent=2))
            return
        for chunk in stream:
            sys.stdout.write(chunk)
            sys.stdout.flush()
        sys.stdout.write("\n")
        assert stream.result is not None
        t = stream.result.trace
        click.echo(
            f"[{t.strategy}/{t.verifier}] {t.emitted_tokens} tokens, "
            f"{t.decode_tok_s:.1f} tok/s, {t.rollbacks} rollbacks, "
            f"{t.forward_per_emitted:.2f} forward evals/token, seed {t.seed}"
            + (f", {t.code_runs} checks ({t.isolation})" if t.code_runs else ""),
            err=True,
        )
