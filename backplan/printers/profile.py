"""Print a profile as tables: the seed's three overhead figures per configuration, then detail."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from planner.profiler.schema import Profile


def print_profile(profile: Profile, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 130)
    m = profile.model
    title = (
        f"{m.name}: {profile.settings.max_tokens} tokens x "
        f"{len(profile.settings.prompts)} prompt(s), median of {profile.settings.repeats}, "
        f"{profile.meter.get('device', 'cpu')}"
    )
    t = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        caption="x = ratio to plain; fwd = forward "
        "evaluations per emitted token; rb = rollbacks per 100 tokens",
    )
    for col in (
        "config",
        "memory x",
        "compute x",
        "decode x",
        "tok/s",
        "+-%",
        "TTFT s",
        "fwd",
        "rb",
        "peak GB",
        "J/tok",
    ):
        t.add_column(col, justify="left" if col == "config" else "right", no_wrap=True)
    for c in profile.configs:
        energy = f"{c.energy.j_per_token.median:.3f}" + ("*" if c.energy.is_estimate else "")
        t.add_row(
            c.name,
            f"{c.memory_ratio:.2f}",
            f"{c.compute_ratio:.2f}",
            f"{c.decode_ratio:.2f}",
            f"{c.decode.tok_s.median:.1f}",
            f"{c.decode.tok_s.spread_pct:.0f}",
            f"{c.decode.ttft_s.median:.2f}",
            f"{c.compute.forward_per_emitted:.2f}",
            f"{c.backtracking.rollbacks_per_100:.1f}",
            f"{c.memory.peak_gb:.3f}",
            energy,
        )
    console.print(t)
    if any(c.energy.is_estimate for c in profile.configs):
        console.print("* energy estimated from CPU time (no energy counter readable here)")
    for w in profile.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
