"""``backplan demo``: the main job on the default model.

1. one generation streamed with the Python-syntax verifier and threshold backtracking, with
   its trace;
2. ``profile --quick``: every configuration side by side, the profile written to
   ``OUT_DIR/profile.json``;
3. a plan for the example workload (``planner/recommend/example_workload.yaml``) with that
   profile's verifier overheads: the ranked shortlist;
4. a report, ``OUT_DIR/report.md`` and ``report.html``, with charts;
5. this machine: the profile's plain decode speed against the roofline's prediction from the
   CPU figures measured with the profile, and against a random-weight clone of the model's
   shape timed here (``OUT_DIR/local_prediction.json``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from backplan.options import model_option
from runtime.models.registry import DEFAULT_MODEL

DEMO_PROMPT = (
    "Write a Python function `is_palindrome(s)` that returns True when the string s "
    "reads the same backwards, ignoring case."
)


@click.command()
@model_option(DEFAULT_MODEL, "Model (default: the embedded SmolLM2-135M).")
@click.option("--prompt", default=DEMO_PROMPT, help="Prompt for the sample generation.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the trace, profile, plan and report are written (default: the home's demo "
    "folder, ~/.local/share/backplan/demo; BACKPLAN_HOME moves it).",
)
@click.option(
    "--workload",
    "workload_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Workload to plan for (default: the example workload).",
)
@click.option("--skip-profile", is_flag=True, help="Only the sample generation.")
def demo(
    model: str, prompt: str, out_dir: Path | None, workload_file: Path | None, skip_profile: bool
) -> None:
    """Generate with a verifier, profile every configuration here, plan, and report."""
    from runtime.home import home

    out_dir = out_dir or home().demo
    from rich.console import Console

    from backplan.commands.profile import run_with_progress
    from backplan.printers.profile import print_profile
    from planner.profiler.runner import ProfileRequest
    from runtime.atomic import write_json_atomic, write_text_atomic
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

    from importlib import resources

    from backplan.printers.plan import print_plan
    from planner.recommend.plan import make_plan
    from planner.recommend.workload import load_workload
    from planner.report import write_report

    if workload_file is None:
        ref = resources.files("planner.recommend") / "example_workload.yaml"
        with resources.as_file(ref) as example:
            workload = load_workload(example)
    else:
        workload = load_workload(workload_file)
    console.rule("3. plan for the example workload (verifier overheads from this profile)")
    # as `backplan plan` does: pass@1 measured here (if committed results are at hand)
    # overrides published figures
    plan = make_plan(workload, profile=profile)
    write_text_atomic(out_dir / "plan.json", plan.model_dump_json(indent=2) + "\n")
    print_plan(plan, Console())
    paths = write_report(out_dir, profile, plan)
    console.rule("4. report")
    console.print(f"report written to {paths['markdown']} and {paths['html']}")

    from hardware_catalog import load_catalog
    from planner.capacity.prediction import predict_from_profile, probe_for

    console.rule("5. this machine: predicted vs measured plain decode")
    with console.status("timing a random-weight clone of the model's shape") as status:
        costs = probe_for(profile, on_step=status.update)
    local = predict_from_profile(profile, load_catalog(), probe=costs)
    write_json_atomic(out_dir / "local_prediction.json", local)
    console.print(
        f"{local['model']} on {local['cpu']}: measured {local['measured_decode_tok_s']} tok/s; "
        f"roofline from the CPU figures {local['predicted_decode_tok_s']} tok/s "
        f"({local['error_pct']:+.1f}%); random-weight clone timed here "
        f"{local['probed_decode_tok_s']} tok/s ({local['probed_error_pct']:+.1f}%)"
    )
