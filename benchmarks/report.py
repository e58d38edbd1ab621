"""What every benchmark report carries, and how it is written (run from ``benchmarks/``)."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def machine_meta() -> dict[str, Any]:
    """When and where a benchmark ran: its report's first fields."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def publish(report: dict[str, Any], markdown: str, results: Path | None, stem: str) -> None:
    """Print the markdown; with ``results``, write ``STEM.json`` and ``STEM.md`` there, each
    whole or not at all."""
    from runtime.atomic import write_json_atomic, write_text_atomic

    print(markdown)
    if results is not None:
        write_json_atomic(results / f"{stem}.json", report)
        write_text_atomic(results / f"{stem}.md", markdown)


def three(v: float | None) -> str:
    """A score to three decimals, ``-`` where there is none."""
    return "-" if v is None else f"{v:.3f}"
