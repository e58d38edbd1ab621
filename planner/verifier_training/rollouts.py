"""Rollouts of a main model on HumanEval problems, labelled by running their tests.

A rollouts file is JSON lines: a header with the configuration, then one rollout per line,
appended as each finishes, so an interrupted collection resumes. Rollouts may also be imported
from ``backplan eval`` results (their greedy answers, already labelled the same way).
The labels come from the benchmark's tests; heads trained on them are only ever used on
problems they did not see (cross-fitting, see :mod:`planner.verifier_training.fit`).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.quality.dataset import Problem, load_humaneval
from planner.quality.harness import build_prompt, check_source, extract_program
from planner.quality.results import read_results_file
from runtime.atomic import append_line, drop_torn_tail, write_text_atomic
from runtime.errors import UsageError
from runtime.files import read_text
from runtime.sandbox import run_program
from runtime.verifiers.program import PARSER_GAVE_UP

log = logging.getLogger(__name__)


class CollectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    samples: int = Field(4, ge=0, le=64)
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    max_tokens: int = Field(384, ge=16, le=4096)
    seed: int = 0
    prompt_format: str = "chat-fenced-v1"
    label: Literal["tests", "compiles"] = Field(
        "tests",
        description="What makes a rollout good: it passes the problem's tests, or (for models "
        "too small to pass them) its answer compiles and defines the function.",
    )


class Rollout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str
    sample: str  # "s0".."sN" for generated ones, "eval:<file>" for imported answers
    completion: str
    tokens: list[int] | None = None  # the generated ids (None: imported text, re-tokenised)
    passed: bool
    status: str
    generated_tokens: int = 0
    cpu_s: float | None = None  # measured CPU seconds of generating it (collected here)
    wall_s: float | None = None  # wall seconds (imported answers: from the eval record)


def _read(path: Path, config: CollectConfig) -> dict[tuple[str, str], Rollout]:
    if path.exists() and drop_torn_tail(path):
        log.warning("%s ended in half a line (a full disk or a crash): dropped it", path)
    if not path.exists():
        return {}
    text = read_text(path, what="rollouts file", fix="pass another --out")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return {}
    try:
        header = json.loads(lines[0])["config"]
        rows = [Rollout.model_validate_json(ln) for ln in lines[1:]]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} is not a backplan rollouts file; pass another --out") from None
    if header != config.model_dump():
        raise UsageError(
            f"{path} holds rollouts of another configuration ({header}); pass another --out"
        )
    return {(r.task_id, r.sample): r for r in rows}


def load_rollouts(path: Path) -> tuple[dict[str, Any], list[Rollout]]:
    text = read_text(path, what="rollouts file", fix="run `backplan verifier collect`")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        header = json.loads(lines[0])["config"]
        return header, [Rollout.model_validate_json(ln) for ln in lines[1:]]
    except (ValueError, KeyError, TypeError, IndexError):
        raise UsageError(
            f"{path} is not a backplan rollouts file; pass one `backplan verifier collect` wrote"
        ) from None


def sample_index(sample: str) -> int | None:
    """The draw number of a generated rollout's tag (``s3`` -> 3); None for imported answers
    (``eval:<file>``) and anything else."""
    return int(sample[1:]) if sample.startswith("s") and sample[1:].isdigit() else None


def first_samples(rows: list[Rollout], samples: int | None) -> list[Rollout]:
    """Imported answers (``eval:``) and the first ``samples`` generated ones (``s0`` ..) of
    every problem; ``None`` keeps all. A smaller reader budget then covers every problem alike
    (a replay or a fit on K samples per problem, not on the first problems' eight)."""
    if samples is None:
        return rows
    kept = []
    for r in rows:
        n = sample_index(r.sample)
        if r.sample.startswith("eval:") or (n is not None and n < samples):
            kept.append(r)
    return kept


def check_trainable(path: Path, rows: list[Rollout], folds: int) -> None:
    """Refuse, before any feature is computed, rollouts a cross-fit cannot use: problems
    HumanEval lacks, or too few problems for ``folds`` folds (each fold trains on the others
    and calibrates on a fifth of those)."""
    known = {p.task_id for p in load_humaneval()}
    tasks = {r.task_id for r in rows}
    unknown = sorted(tasks - known)
    if unknown:
        raise UsageError(
            f"{path}: {unknown[0]} is not a HumanEval problem; train on rollouts that "
            "`backplan verifier collect` wrote"
        )
    need = 2 * max(2, folds)
    if len(tasks) < need:
        raise UsageError(
            f"{path} holds rollouts of {len(tasks)} problem(s); {folds} folds need at least "
            f"{need}: collect more problems (or pass fewer --folds)"
        )


def compiles(problem: Problem, completion: str) -> bool:
    """The answer's program compiles and defines the requested function (nothing is run)."""
    program = extract_program(problem, completion)
    if not re.search(rf"^\s*def\s+{re.escape(problem.entry_point)}\s*\(", program, re.M):
        return False
    try:
        compile(program, "<answer>", "exec")
    except (SyntaxError, *PARSER_GAVE_UP):
        return False
    return True


def label(config: CollectConfig, problem: Problem, completion: str) -> tuple[bool, str]:
    if config.label == "compiles":
        ok = compiles(problem, completion)
        return ok, "compiles" if ok else "does-not-compile"
    outcome = run_program(check_source(problem, extract_program(problem, completion)))
    return outcome.passed, outcome.status


def _append(path: Path, rollout: Rollout) -> None:
    append_line(path, rollout.model_dump_json())  # one whole line per rollout, or none


def collect(
    config: CollectConfig,
    out: Path,
    *,
    from_eval: Iterable[Path] = (),
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Rollout]:
    """Import eval answers, then generate ``samples`` rollouts per problem; label all."""
    problems = load_humaneval()[: limit or None]
    by_id = {p.task_id: p for p in problems}
    done = _read(out, config)
    if not done:
        write_text_atomic(out, json.dumps({"config": config.model_dump()}) + "\n")
    for path in from_eval:
        header, records = read_results_file(path)
        if header.model != config.model or header.prompt_format != config.prompt_format:
            raise UsageError(
                f"{path} holds answers of {header.model} ({header.prompt_format}); "
                f"import only {config.model}'s answers in {config.prompt_format}"
            )
        tag = f"eval:{path.name}"
        for rec in records:
            if rec["task_id"] in by_id and (rec["task_id"], tag) not in done:
                ok, status = (
                    (
                        bool(rec["passed"]),
                        rec.get("status", "passed" if rec["passed"] else "failed"),
                    )
                    if config.label == "tests"
                    else label(config, by_id[rec["task_id"]], rec["completion"])
                )
                r = Rollout(
                    task_id=rec["task_id"],
                    sample=tag,
                    completion=rec["completion"],
                    passed=ok,
                    status=status,
                    generated_tokens=int(rec.get("emitted_tokens", 0)),
                    wall_s=rec["emitted_tokens"] / rec["tok_s"]
                    if rec.get("tok_s") and rec.get("emitted_tokens")
                    else None,
                )
                _append(out, r)
                done[(r.task_id, r.sample)] = r
    todo = [
        (p, s) for p in problems for s in range(config.samples) if (p.task_id, f"s{s}") not in done
    ]
    if todo:
        from runtime.generation import Runtime, RuntimeSettings
        from runtime.samplers.choice import SamplingParams

        with Runtime(RuntimeSettings(model=config.model)) as rt:
            sampling = SamplingParams(temperature=config.temperature)
            for i, (problem, s) in enumerate(todo):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                gen = rt.generate(
                    rt.prompt_tokens(build_prompt(problem)),
                    max_tokens=config.max_tokens,
                    sampling=sampling,
                    seed=config.seed * 1000 + s,
                )
                ok, status = label(config, problem, gen.text)
                r = Rollout(
                    task_id=problem.task_id,
                    sample=f"s{s}",
                    completion=gen.text,
                    tokens=gen.tokens,
                    passed=ok,
                    status=status,
                    generated_tokens=gen.trace.generated_tokens,
                    cpu_s=round(time.process_time() - cpu0, 3),
                    wall_s=round(time.perf_counter() - wall0, 3),
                )
                _append(out, r)
                done[(r.task_id, r.sample)] = r
                if progress is not None:
                    progress(i + 1, len(todo))
    return [r for r in done.values() if r.task_id in by_id]
