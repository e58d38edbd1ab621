"""``backplan eval``: HumanEval pass@1 of a configuration, and paired comparisons."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from backplan.options import model_option, seed_option, strategy_option, verifier_option
from backplan.progress import job_progress
from planner.quality.results import EVAL_MODEL


@contextmanager
def _progress_bar(label: str, total: int) -> Iterator[Callable[[int, int, int], None]]:
    """Progress on stderr; yields the harness's ``progress(done, total, passed)``."""
    with job_progress(f"humaneval {label}", every_s=0.0) as update:
        update(0, total)

        def report(done: int, n: int, passed: int) -> None:
            update(done, n, f"{passed} passed")

        yield report


@click.group(name="eval")
def eval_group() -> None:
    """Measure quality: HumanEval pass@1, sandboxed, resumable."""


@eval_group.command()
@model_option(EVAL_MODEL)
@verifier_option()
@strategy_option()
@click.option(
    "--limit", type=click.IntRange(1, 164), default=None, help="Only the first N problems."
)
@click.option("--max-tokens", type=click.IntRange(16, 4096), default=384, show_default=True)
@click.option(
    "--temperature",
    type=click.FloatRange(0.0, 5.0),
    default=0.0,
    show_default=True,
    help="0: greedy. VGB needs sampling (> 0): under greedy decoding its walk proposes the "
    "same continuation again after each step back.",
)
@seed_option(0, "Sampling seed (the same for every problem); with it a sampled run repeats.")
@click.option(
    "--attempts",
    type=click.IntRange(1, 64),
    default=None,
    help="With --strategy regenerate: most whole answers per problem (default: the "
    "strategy's own).",
)
@click.option(
    "--accept",
    type=click.Choice(["threshold", "value"]),
    default=None,
    help="With --strategy regenerate: keep an answer at the threshold (default), or 'value': "
    "VGB over whole answers (every answer sampled at --temperature, kept with probability "
    "equal to its value).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Per-problem results (JSON lines; resumes). Default: the home's "
    "results/eval/<config>.jsonl.",
)
@click.option(
    "--server",
    default=None,
    help="Generate through this running `backplan serve` (e.g. http://127.0.0.1:8000): its "
    "parallel slots decode several problems together. It must serve --model.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="With --server: requests in flight.",
)
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Add this run to this runs list (e.g. benchmarks/results/humaneval.json). Default: "
    "a run of all 164 problems is added to the home's results/humaneval.json, which plans "
    "read.",
)
@click.option("--no-summary", is_flag=True, help="Record the run in no runs list.")
def humaneval(
    model: str,
    verifier: str,
    strategy: str,
    limit: int | None,
    max_tokens: int,
    temperature: float,
    seed: int,
    attempts: int | None,
    accept: str | None,
    out: Path | None,
    server: str | None,
    concurrency: int,
    summary: Path | None,
    no_summary: bool,
) -> None:
    """pass@1 on HumanEval's 164 problems (greedy by default), with a 95% confidence interval."""
    from planner.quality.harness import results_stem, run_humaneval, run_humaneval_served
    from planner.quality.results import EvalConfig, read_runs, record_summary
    from runtime.errors import UsageError
    from runtime.home import home

    for flag, value in (("--attempts", attempts), ("--accept", accept)):
        if value is not None and strategy != "regenerate":
            raise UsageError(f"{flag} applies to --strategy regenerate only; drop it or add that")
        if value is not None and server is not None:
            raise UsageError(
                f"with --server the server's own regenerate settings decide; drop {flag} (or "
                "evaluate in-process, without --server)"
            )
    if accept == "value" and temperature == 0:
        raise UsageError(
            "--accept value samples every answer at --temperature; pass one above 0 (the "
            "rollouts were drawn at 0.8)"
        )
    config = EvalConfig(
        model=model,
        verifier=verifier,
        strategy=strategy,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        attempts=attempts,
        accept=accept,  # type: ignore[arg-type]
    )
    if strategy == "vgb" and temperature == 0:
        click.echo(
            "warning: VGB under greedy decoding proposes the same continuation after each step "
            "back; pass --temperature (e.g. 0.7) to let its walk explore",
            err=True,
        )
    if summary is None and not no_summary and limit is None:
        summary = home().runs_list  # a whole run is what plans read
    if no_summary:
        summary = None
    if summary is not None:
        read_runs(summary)  # a list it cannot be recorded in is refused now, not after hours
    if out is None:
        out = home().eval_dir / f"{results_stem(config)}.jsonl"
    with _progress_bar(f"{model} {verifier} {strategy}", limit or 164) as progress:
        if server is None:
            result = run_humaneval(config, out, limit=limit, progress=progress)
        else:
            result = run_humaneval_served(
                config, out, server, concurrency=concurrency, limit=limit, progress=progress
            )
    if summary is not None:
        record_summary(summary, result)
        click.echo(f"recorded in {summary}", err=True)
    lo, hi = result["ci95"]
    click.echo(
        f"{model} verifier={verifier} strategy={strategy}: pass@1 "
        f"{result['pass_at_1']:.3f} ({result['passed']}/{result['n']}, 95% CI "
        f"{lo:.3f}-{hi:.3f}); {result['tok_s']} tok/s; "
        f"{result['backtracks_per_problem']} backtracks/problem; results in {out}"
    )


@eval_group.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also replace this run in a results list (e.g. benchmarks/results/humaneval.json).",
)
def rescore(results: Path, summary: Path | None) -> None:
    """Test a results file's stored completions again under the current scoring (no
    generation): e.g. after the harness learned to ignore a model's own test scaffolding."""
    from planner.quality.harness import rescore as rescore_file
    from planner.quality.results import read_results_file, read_runs, record_summary

    loaded = read_results_file(results)  # a bad file fails here, before the progress bar
    if summary is not None:
        read_runs(summary)  # and a bad runs list before the results file is rewritten
    with _progress_bar(f"rescore {results.name}", len(loaded[1])) as progress:
        config, result = rescore_file(results, loaded, progress=progress)
    if summary is not None:
        record_summary(summary, result)
    click.echo(f"{results}: {result['passed']}/{result['n']} passed under scoring {config.scoring}")


@eval_group.command()
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def compare(a: Path, b: Path) -> None:
    """Paired comparison of two results files: which problems flip, McNemar's exact test."""
    from planner.quality.results import load_results
    from planner.quality.stats import paired
    from runtime.errors import UsageError

    ra, rb = load_results(a), load_results(b)
    if not set(ra) & set(rb):
        raise UsageError(
            f"{a} and {b} share no problem ({len(ra)} and {len(rb)} results); "
            "compare two runs over the same problems"
        )
    p = paired(ra, rb)
    click.echo(
        f"{p.n} problems in both: A {p.a_only + p.both} passed, B {p.b_only + p.both}; "
        f"A only {p.a_only}, B only {p.b_only}, both {p.both}, neither {p.neither}; "
        f"McNemar exact p = {p.p_value:.4f}"
    )
    flips_a = sorted(t for t in ra if t in rb and ra[t] and not rb[t])
    flips_b = sorted(t for t in rb if t in ra and rb[t] and not ra[t])
    if flips_a:
        click.echo("A only: " + ", ".join(flips_a))
    if flips_b:
        click.echo("B only: " + ", ".join(flips_b))
