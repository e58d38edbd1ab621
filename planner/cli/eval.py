"""``backplan eval``: HumanEval pass@1 of a configuration, and paired comparisons."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="eval")
def eval_group() -> None:
    """Measure quality: HumanEval pass@1, sandboxed, resumable."""


@eval_group.command()
@click.option("--model", "-m", default="qwen2.5-coder-0.5b", show_default=True)
@click.option("--verifier", default="none", show_default=True)
@click.option(
    "--strategy",
    type=click.Choice(["plain", "threshold", "vgb"]),
    default="plain",
    show_default=True,
)
@click.option(
    "--limit", type=click.IntRange(1, 164), default=None, help="Only the first N problems."
)
@click.option("--max-tokens", type=click.IntRange(16, 4096), default=384, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Per-problem results (JSON lines; resumes). Default: out/eval/<config>.jsonl",
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
    help="Also add this run to a results list (e.g. benchmarks/results/humaneval.json).",
)
def humaneval(
    model: str,
    verifier: str,
    strategy: str,
    limit: int | None,
    max_tokens: int,
    out: Path | None,
    server: str | None,
    concurrency: int,
    summary: Path | None,
) -> None:
    """pass@1 on HumanEval's 164 problems (greedy), with a 95% confidence interval."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from planner.quality.harness import (
        EvalConfig,
        record_summary,
        run_humaneval,
        run_humaneval_served,
    )

    config = EvalConfig(model=model, verifier=verifier, strategy=strategy, max_tokens=max_tokens)
    if out is None:
        safe = "".join(
            ch if ch.isalnum() or ch in "-._" else "_" for ch in f"{model}_{verifier}_{strategy}"
        )
        out = Path("out/eval") / f"{safe}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    with Progress(
        TextColumn("humaneval {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"{model} {verifier} {strategy}", total=limit or 164)

        def progress(done: int, total: int, passed: int) -> None:
            bar.update(
                task,
                completed=done,
                total=total,
                description=f"{model} {verifier} {strategy}: {passed} passed",
            )

        if server is None:
            result = run_humaneval(config, out, limit=limit, progress=progress)
        else:
            result = run_humaneval_served(
                config, out, server, concurrency=concurrency, limit=limit, progress=progress
            )
    if summary is not None:
        record_summary(summary, result)
    lo, hi = result["ci95"]
    click.echo(
        f"{model} verifier={verifier} strategy={strategy}: pass@1 "
        f"{result['pass_at_1']:.3f} ({result['passed']}/{result['n']}, 95% CI "
        f"{lo:.3f}-{hi:.3f}); {result['tok_s']} tok/s; "
        f"{result['backtracks_per_problem']} backtracks/problem; results in {out}"
    )


@eval_group.command()
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def compare(a: Path, b: Path) -> None:
    """Paired comparison of two results files: which problems flip, McNemar's exact test."""
    from planner.quality.harness import load_results
    from planner.quality.stats import paired

    ra, rb = load_results(a), load_results(b)
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
