"""``backplan generate``: one generation, streamed, with its trace."""

from __future__ import annotations

import json
import sys

import click

from planner.cli.options import field_help, validated
from runtime.errors import UsageError
from runtime.samplers.choice import SamplingParams
from runtime.samplers.strategies import ThresholdParams, VGBParams


@click.command()
@click.argument("prompt")
@click.option(
    "--model", "-m", default=None, help="Registry name, path to a .gguf, or hf:OWNER/REPO/FILE."
)
@click.option(
    "--verifier",
    default="none",
    show_default=True,
    help="none | syntax | examples[=N] | latent[=HEAD] | model:NAME[=HEAD]; '+' stacks; HEAD "
    "is a head file, 'shipped' (the default: the head shipped for the model) or 'constant' "
    "(never rejects: cost only); examples runs the prompt's examples on each finished answer "
    "in a sandbox, rejecting at most N (default 3).",
)
@click.option(
    "--strategy",
    type=click.Choice(["plain", "threshold", "vgb"]),
    default="plain",
    show_default=True,
)
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
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    default=None,
    help="Makes sampling and the walk reproducible.",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Send PROMPT as is (no chat template); the syntax "
    "verifier then treats the whole output as code.",
)
@click.option("--system", default=None, help="System message for the chat template.")
@click.option("--n-ctx", type=click.IntRange(64, 131072), default=2048, show_default=True)
@click.option(
    "--threads", type=click.IntRange(1, 512), default=None, help="CPU threads (default: all cores)."
)
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {text, trace} as JSON at the end instead of streaming text.",
)
def generate(
    prompt: str,
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
    as_json: bool,
) -> None:
    """Generate a reply to PROMPT with a verifier and a backtracking strategy."""
    from runtime.generation import Runtime, RuntimeSettings

    if raw and system is not None:
        raise UsageError("--system goes into the chat template, which --raw skips; drop one")
    if temperature is None:
        temperature = 0.7 if strategy == "vgb" else 0.0
    sampling = validated(SamplingParams, temperature=temperature, top_k=top_k, top_p=top_p)
    settings = validated(
        RuntimeSettings,
        model=model,
        verifier=verifier,
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
            f"{t.forward_per_emitted:.2f} forward evals/token, seed {t.seed}",
            err=True,
        )
