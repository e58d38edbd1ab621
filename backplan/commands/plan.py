"""``backplan plan``: a ranked hardware recommendation for a workload."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from backplan.options import catalog_option, field_help
from planner.recommend.workload import Workload


@click.command()
@click.option(
    "--workload",
    "workload_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Workload YAML (see the README); flags below override it.",
)
@click.option("--developers", type=int, default=None, help=field_help(Workload, "developers"))
@click.option(
    "--tokens-per-day", type=float, default=None, help=field_help(Workload, "tokens_per_day")
)
@click.option(
    "--concurrency",
    "peak_concurrency",
    type=int,
    default=None,
    help=field_help(Workload, "peak_concurrency"),
)
@click.option(
    "--context",
    "context_tokens",
    type=int,
    default=None,
    help=field_help(Workload, "context_tokens"),
)
@click.option(
    "--min-tok-s",
    "min_tok_s_per_stream",
    type=float,
    default=None,
    help=field_help(Workload, "min_tok_s_per_stream"),
)
@click.option(
    "--min-pass",
    "min_pass_at_1",
    type=float,
    default=None,
    help=field_help(Workload, "min_pass_at_1"),
)
@click.option(
    "--budget", "budget_usd", type=float, default=None, help=field_help(Workload, "budget_usd")
)
@click.option(
    "--power-cap", "power_cap_w", type=float, default=None, help=field_help(Workload, "power_cap_w")
)
@click.option("--region", default=None, help=field_help(Workload, "region"))
@click.option("--pue", default=None, help=field_help(Workload, "pue"))
@click.option("--years", type=float, default=None, help=field_help(Workload, "years"))
@catalog_option
@click.option(
    "--profile",
    "profile_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A profile whose counts set the verifiers' overheads.",
)
@click.option(
    "--quality",
    "quality_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also read this runs list of `backplan eval` (it wins over the shipped measurements "
    "and the home's runs list, which are always read).",
)
@click.option("--top", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the plan JSON here.",
)
def plan(
    workload_file: Path | None,
    catalog_dir: Path | None,
    profile_file: Path | None,
    quality_file: Path | None,
    top: int,
    as_json: bool,
    out: Path | None,
    **flags: object,
) -> None:
    """Recommend GPU, count, model, quantisation and verifier for a workload."""
    from backplan.printers.plan import print_plan
    from planner.profiler.schema import load_profile
    from planner.recommend.plan import make_plan
    from planner.recommend.quality import runs_files
    from planner.recommend.workload import load_workload, make_workload
    from runtime.atomic import write_text_atomic
    from runtime.errors import UsageError
    from runtime.home import catalog_overlay

    given = {k: v for k, v in flags.items() if v is not None}
    if isinstance(given.get("pue"), str):
        with contextlib.suppress(ValueError):  # a number, else a preset's name
            given["pue"] = float(given["pue"])  # type: ignore[arg-type]
    workload = (
        load_workload(workload_file, **given)
        if workload_file
        else make_workload(given, where="flags")
    )
    profile = load_profile(profile_file) if profile_file else None
    if quality_file is not None and not quality_file.exists():
        raise UsageError(
            f"--quality {quality_file} does not exist; pass a runs list that "
            "`backplan eval humaneval --summary` wrote, or leave it out"
        )
    result = make_plan(
        workload,
        catalog_dir=catalog_dir or catalog_overlay(),
        profile=profile,
        runs=runs_files(quality_file),
        top=top,
    )
    text = result.model_dump_json(indent=2)
    if out is not None:
        write_text_atomic(out, text + "\n")
    if as_json:
        click.echo(text)
        return
    print_plan(result)
