"""``backplan profile``: measure each runtime configuration side by side on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from backplan.options import field_help, model_option, threads_option, validated
from backplan.progress import job_progress
from planner.profiler.runner import CONFIGS, ProfileRequest
from runtime.models.registry import DEFAULT_MODEL


@click.command()
@model_option(DEFAULT_MODEL, field_help(ProfileRequest, "model"))
@click.option(
    "--configs",
    default=",".join(CONFIGS),
    show_default=True,
    help="Comma-separated configurations: " + ", ".join(CONFIGS) + ".",
)
@click.option(
    "--head", default="shipped", show_default=True, help=field_help(ProfileRequest, "head")
)
@click.option(
    "--quick",
    is_flag=True,
    help="One prompt, 32 tokens, 3 repeats (about a minute on 2 cores, SmolLM2-135M).",
)
@click.option(
    "--repeats", type=int, default=3, show_default=True, help=field_help(ProfileRequest, "repeats")
)
@click.option(
    "--max-tokens", "-n", type=int, default=None, help=field_help(ProfileRequest, "max_tokens")
)
@click.option(
    "--prompts", "n_prompts", type=int, default=None, help=field_help(ProfileRequest, "n_prompts")
)
@click.option(
    "--quality",
    type=click.IntRange(1, 164),
    default=None,
    help=field_help(ProfileRequest, "quality"),
)
@threads_option()
@click.option("--cpu-only", is_flag=True, help="Do not look for a GPU.")
@click.option(
    "--watts-per-core", type=float, default=None, help=field_help(ProfileRequest, "watts_per_core")
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Profile JSON to write (default: the home's profiles/profile.json, which the "
    "dashboard shows).",
)
def profile(
    model: str,
    configs: str,
    head: str,
    quick: bool,
    repeats: int,
    max_tokens: int | None,
    n_prompts: int | None,
    quality: int | None,
    threads: int | None,
    cpu_only: bool,
    watts_per_core: float | None,
    out: Path | None,
) -> None:
    """Profile plain decoding and each backtracking configuration on this machine."""
    from backplan.printers.profile import print_profile
    from runtime.atomic import prepare_output
    from runtime.home import home

    out = out or home().profile
    req = validated(
        ProfileRequest,
        model=model,
        head=head,
        quick=quick,
        repeats=repeats,
        configs=[c.strip() for c in configs.split(",") if c.strip()],
        max_tokens=max_tokens,
        n_prompts=n_prompts,
        n_threads=threads,
        quality=quality,
        prefer_gpu=not cpu_only,
        watts_per_core=watts_per_core,
    )
    prepare_output(out)  # a path it could not write is refused before minutes of measuring
    result = run_with_progress(req)
    result.save(out)
    print_profile(result)
    click.echo(f"profile written to {out}", err=True)


def run_with_progress(req: ProfileRequest):  # type: ignore[no-untyped-def]
    from planner.profiler.runner import run_profile

    with job_progress("profile", transient=True) as update:

        def report(label: str, done: int, total: int) -> None:
            if total > 0:
                update(done, total, label)
            else:  # a phase without a count (quality runs): only say what is happening
                update(note=label)

        return run_profile(req, report)
