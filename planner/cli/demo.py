"""``backplan demo``: the main job on the default model.

1. one generation streamed with the Python-syntax verifier and threshold backtracking, with
   its trace;
2. ``profile --quick``: every configuration side by side, the profile written to
   ``OUT_DIR/profile.json``.

The planner issue grows this into profile -> plan -> report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

DEMO_PROMPT = (
    "Write a Python function `is_palindrome(s)` that returns True when the string s "
    "reads the same backwards, ignoring case."
)


@click.command()
@click.option(
    "--model",
    "-m",
    default="smollm2-135m",
    show_default=True,
    help="Model (default: the embedded SmolLM2-135M).",
)
@click.option("--prompt", default=DEMO_PROMPT, help="Prompt for the sample generation.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Where the profile and traces are written.",
)
@click.option("--skip-profile", is_flag=True, help="Only the sample generation.")
def demo(model: str, prompt: str, out_dir: Path, skip_profile: bool) -> None:
    """Generate with a verifier, then profile every configuration on this machine."""
    from rich.console import Console

    from planner.cli.profile import run_with_progress
    from planner.profiler.report import print_profile
    from planner.profiler.runner import ProfileRequest
    from runtime.atomic import write_json_atomic
    from runtime.generation import Runtime, RuntimeSettings

    console = Console(stderr=True)
    console.rule(f"1. {model}: syntax verifier + threshold backtracking")
    settings = RuntimeSettings(model=model, strategy="threshold", verifier="syntax")
    with Runtime(settings) as rt:
        stream = rt.stream(rt.prompt_tokens(prompt), max_tokens=160, seed=0)
        for chunk in stream:
            sys.stdout.write(chunk)
            sys.stdout.flush()
        sys.stdout.write("\n")
    assert stream.result is not None
    trace = stream.result.trace
    console.print(
        f"trace: {trace.emitted_tokens} tokens at {trace.decode_tok_s:.1f} tok/s, "
        f"{trace.rollbacks} rollbacks, {trace.rejected_tokens} rejected, "
        f"{trace.verifier_calls} verifier calls, "
        f"{trace.forward_per_emitted:.2f} forward evaluations per token, "
        f"finish: {trace.finish_reason}"
    )
    write_json_atomic(
        out_dir / "demo_trace.json",
        {"prompt": prompt, "text": stream.result.text, "trace": trace.summary()},
    )
    if skip_profile:
        return
    console.rule(f"2. profile --quick on {model}: every configuration side by side")
    profile = run_with_progress(ProfileRequest(model=model, quick=True))
    path = profile.save(out_dir / "profile.json")
    print_profile(profile, Console())
    console.print(f"profile written to {path} ({profile.elapsed_s:.0f} s)")
