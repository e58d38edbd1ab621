"""The prompt's own examples run on every stored rollout: the signal a head is stacked with.

The ``examples`` verifier (:mod:`runtime.verifiers.examples`) judges an answer by the examples
its prompt states (doctest lines, ``f(2) == 4`` prose...), never the benchmark's hidden tests.
Replaying a rule that stacks it with a learned head ("examples decide first, the head ranks
the answers that tie and decides alone where the prompt states none") needs that verdict for
every rollout: this runs the same check, in the same sandbox (the jail where it exists), on the
answer's definitions, and caches the result per rollout (its problem, sample and answer text),
so a replay after the first costs nothing. No model is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from planner.quality.dataset import load_humaneval
from planner.quality.harness import build_prompt
from planner.verifier_training.answers import rollout_key
from planner.verifier_training.rollouts import Rollout
from runtime.atomic import write_text_atomic
from runtime.errors import UsageError
from runtime.files import read_text
from runtime.sandbox import Limits, run_program
from runtime.verifiers.examples import (
    Example,
    assemble_program,
    check_program,
    failed_examples,
    parse_examples,
    prompt_code,
)
from runtime.verifiers.program import definitions_only, parseable_prefix
from runtime.verifiers.syntax import extract_code

#: What a rollout's check records: the examples its prompt states, and how many it failed
#: (``n_examples + 1`` when the program crashed or did not define the function).
CHECK_FIELDS = ("n_examples", "failed")


@dataclass(frozen=True)
class ExampleCheck:
    n_examples: int
    failed: int

    @property
    def passed(self) -> bool:
        """Every stated example holds (False where the prompt states none)."""
        return self.n_examples > 0 and self.failed == 0


def answer_code(completion: str) -> str:
    """The definitions the examples verifier judges at an answer's end: the fenced block's
    longest parsable prefix, without the model's own prints and asserts."""
    code, _closed = extract_code(completion, "fenced")
    if not code and "```" not in completion:
        code = completion
    found = parseable_prefix(code)
    return definitions_only(found[0]) if found is not None else ""


def check_rollout(
    prompt_src: str, examples: Sequence[Example], completion: str, limits: Limits
) -> ExampleCheck:
    """``examples``: those ``prompt_src`` states (:func:`parse_examples`)."""
    if not examples:
        return ExampleCheck(0, 0)
    code = answer_code(completion)
    if not code.strip():
        return ExampleCheck(len(examples), len(examples) + 1)
    outcome = run_program(check_program(assemble_program(prompt_src, code), examples), limits)
    failed = 0 if outcome.passed else failed_examples(outcome.detail, len(examples))
    return ExampleCheck(len(examples), failed)


def _load(cache: Path) -> dict[str, ExampleCheck]:
    try:
        raw = json.loads(read_text(cache, what="example checks", fix="pass another --checks"))
        return {k: ExampleCheck(*v) for k, v in raw["checks"].items()}
    except (ValueError, KeyError, TypeError):
        raise UsageError(
            f"{cache} is not a backplan example-checks file; pass another one (or delete it)"
        ) from None


def _save(cache: Path, checks: dict[str, ExampleCheck]) -> None:
    rows = {k: [c.n_examples, c.failed] for k, c in checks.items()}
    body = {"fields": CHECK_FIELDS, "checks": rows}
    write_text_atomic(cache, json.dumps(body) + "\n")


def cached_example_checks(
    rollouts: Sequence[Rollout],
    cache: Path | None,
    *,
    chunk: int = 50,
    limits: Limits | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ExampleCheck]:
    """Every rollout's check, in order, running only those ``cache`` lacks (saved after each
    chunk, so an interrupted pass resumes)."""
    limits = limits or Limits(wall_s=5.0, cpu_s=5)
    have = _load(cache) if cache is not None and cache.is_file() else {}
    keys = [rollout_key(r) for r in rollouts]
    missing = [i for i, k in enumerate(keys) if k not in have]
    checks: dict[str, tuple[str, list[Example]]] = {}  # per problem: its code and examples
    if missing:
        for p in load_humaneval():
            src = prompt_code(build_prompt(p))
            checks[p.task_id] = (src, parse_examples(src))
    for n, i in enumerate(missing, 1):
        r = rollouts[i]
        have[keys[i]] = check_rollout(*checks[r.task_id], r.completion, limits)
        if cache is not None and (n % chunk == 0 or n == len(missing)):
            _save(cache, have)
        if progress is not None:
            progress(len(rollouts) - len(missing) + n, len(rollouts))
    return [have[k] for k in keys]
