"""Results files of ``backplan eval humaneval`` and the runs lists they are summarised into.

A results file is JSON lines: a header ``{"config": {...}}`` (an :class:`EvalConfig`), then
one :class:`ResultRecord` per problem. A runs list (``benchmarks/results/humaneval.json``) is
a JSON list of :func:`summarise` outputs, one per configuration. Reading either checks it is
one: a file that is not gets one :class:`~runtime.errors.UsageError` naming it and the line,
before any work starts, never a traceback.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from planner.quality.dataset import load_humaneval
from planner.quality.stats import wilson_interval
from runtime.atomic import write_text_atomic
from runtime.errors import UsageError, first_problem
from runtime.files import read_text
from runtime.verifiers.spec import VerifierSpec

#: The model the harness measures unless told otherwise (eval and verifier training).
EVAL_MODEL = "qwen2.5-coder-0.5b"

#: How a reply is turned into the program the hidden tests run: ``definitions-v1`` keeps the
#: code block's definitions (imports, functions, classes, the constants they read).
SCORING = "definitions-v1"
_FROM_EVAL = "pass one `backplan eval humaneval` wrote"


class EvalConfig(BaseModel):
    """What is evaluated; stored as the results file's header so a resume cannot mix runs."""

    model_config = ConfigDict(extra="forbid")

    model: str
    verifier: str = "none"
    strategy: str = "plain"
    max_tokens: int = Field(384, ge=16, le=4096)
    temperature: float = 0.0
    seed: int = 0
    prompt_format: str = "chat-fenced-v1"
    scoring: str = SCORING
    attempts: int | None = Field(
        None,
        ge=1,
        le=64,
        description="The regenerate strategy's most whole answers per problem (None: its default).",
    )
    accept: Literal["threshold", "value"] | None = Field(
        None,
        description="The regenerate strategy's rule for keeping an answer (None: threshold); "
        "value is VGB over whole answers.",
    )

    def header(self) -> dict[str, Any]:
        """What a results file's header stores (unset options left out, so files written
        before an option existed still resume)."""
        return self.model_dump(exclude_none=True)

    @field_validator("verifier")
    @classmethod
    def _spec(cls, spec: str) -> str:
        if VerifierSpec.parse(spec).needs_request_checks:  # a bad spelling: a UsageError
            raise ValueError(
                "the tests verifier runs a request's own tests; HumanEval's tests stay hidden "
                "from every verifier (use examples: the prompt's own examples)"
            )
        return spec


class ResultRecord(BaseModel):
    """One problem's line: the fields every reader relies on (the file may hold more). Strict
    types: ``"passed": "yes"`` is refused, not counted as a pass."""

    model_config = ConfigDict(extra="allow", strict=True)

    task_id: str
    passed: bool
    completion: str
    rollbacks: int = Field(ge=0)
    forward_per_emitted: float = Field(ge=0)
    tok_s: float | None = None
    isolation: str = Field(
        "process", description="How the hidden tests ran: jail, or process (older files)."
    )


class RunSummary(BaseModel):
    """One configuration's entry in a runs list: the fields the planner reads."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    verifier: str
    n: int = Field(ge=0)
    pass_at_1: float = Field(ge=0, le=1)


def _first_error(exc: ValidationError) -> str:
    where, msg = first_problem(exc)
    return f"{where}: {msg}" if where else msg


def parse_results(path: Path, text: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(header config, records) of a results file's text; ``(None, [])`` when it is empty."""
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        return None, []

    def refuse(line: int, why: str) -> UsageError:
        return UsageError(
            f"{path} is not a backplan eval results file (line {line}: {why}); {_FROM_EVAL}"
        )

    try:
        first = json.loads(lines[0][1])
    except json.JSONDecodeError:
        raise refuse(lines[0][0], "not JSON") from None
    if not isinstance(first, dict) or not isinstance(first.get("config"), dict):
        raise refuse(lines[0][0], 'no {"config": ...} header')
    records: list[dict[str, Any]] = []
    for i, ln in lines[1:]:
        try:
            raw = json.loads(ln)
            ResultRecord.model_validate(raw)
        except json.JSONDecodeError:
            raise refuse(i, "not JSON") from None
        except ValidationError as exc:
            raise refuse(i, _first_error(exc)) from None
        records.append(raw)
    return first["config"], records


def read_results_file(path: Path) -> tuple[EvalConfig, list[dict[str, Any]]]:
    """A results file's configuration (re-labelled with today's :data:`SCORING`) and records;
    a :class:`UsageError` naming the file if it is not one ``backplan eval humaneval`` wrote."""
    text = read_text(path, what="results file", fix=_FROM_EVAL)
    header, records = parse_results(path, text)
    if header is None:
        raise UsageError(f"results file {path} is empty; {_FROM_EVAL}")
    try:
        config = EvalConfig(**{**header, "scoring": SCORING})
    except ValidationError as exc:
        raise UsageError(
            f"{path} is not a backplan eval results file (header: {_first_error(exc)}); "
            f"{_FROM_EVAL}"
        ) from None
    known = {p.task_id for p in load_humaneval()}
    unknown = sorted({r["task_id"] for r in records} - known)
    if unknown:
        raise UsageError(f"{path} holds tasks HumanEval lacks ({unknown[0]}, ...)")
    return config, records


def load_results(path: Path) -> dict[str, bool]:
    """task_id -> passed, from a results file (for paired comparisons)."""
    _, records = read_results_file(path)
    return {r["task_id"]: bool(r["passed"]) for r in records}


#: A problem is counted slowed (by other work on the machine) when its seconds per forward
#: evaluation exceed this many times the run's median.
SLOWED_FACTOR = 3.0


def summarise(config: EvalConfig, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's entry in a runs list: pass@1 with its 95% interval, speed (over the run and of
    the median problem) and backtracking."""
    n = len(records)
    passed = sum(1 for r in records if r["passed"])
    lo, hi = wilson_interval(passed, n)
    tok_s = [r["tok_s"] for r in records if r.get("tok_s")]
    isolations = sorted({str(r.get("isolation", "process")) for r in records})
    timed = [r for r in records if "code_cpu_s" in r and r.get("emitted_tokens")]
    timed_tokens = sum(int(r["emitted_tokens"]) for r in timed)
    # the run as a workload: all its tokens over all its seconds (the median problem hides
    # the long tail of problems that backtrack most, which is where the time goes);
    # per problem: (emitted tokens, decode seconds, forward evaluations, code-run seconds)
    counted = [
        (t, t / float(r["tok_s"]), t * float(r["forward_per_emitted"]), r.get("code_wall_s", 0))
        for r in records
        if (t := int(r.get("emitted_tokens") or 0)) and r.get("tok_s")
    ]
    counted_tokens = sum(c[0] for c in counted)
    counted_s = sum(c[1] for c in counted)
    if counted_tokens and len(counted) == n:  # per emitted token of the whole run
        forward_per_emitted = sum(c[2] for c in counted) / counted_tokens
    else:  # records written without token counts: the mean problem's
        forward_per_emitted = (
            statistics.mean(r["forward_per_emitted"] for r in records) if n else 0.0
        )
    # problems decoded while other work held the cores: seconds per forward evaluation (the
    # verifier's code runs left out) far above the run's median; a run's tok/s counts them too
    per_forward_s = [max(0.0, s - float(code)) / fwd for _, s, fwd, code in counted if fwd > 0]
    typical_s = statistics.median(per_forward_s) if per_forward_s else 0.0
    slowed = sum(1 for x in per_forward_s if x > SLOWED_FACTOR * typical_s)
    return {
        **config.header(),
        "n": n,
        "passed": passed,
        "pass_at_1": round(passed / n, 4) if n else 0.0,
        "ci95": [round(lo, 4), round(hi, 4)],
        "tok_s": round(statistics.median(tok_s), 2) if tok_s else None,
        "emitted_tok_s": round(counted_tokens / counted_s, 2) if counted_s else None,
        "slowed_problems": slowed,
        "backtracks_per_problem": round(sum(r["rollbacks"] for r in records) / n, 3) if n else 0.0,
        "forward_per_emitted": round(forward_per_emitted, 4),
        "isolation": "+".join(isolations) if isolations else None,
        # sandboxed checks during generation, per emitted token (runs that recorded them)
        "code_cpu_s_per_emitted": round(sum(r["code_cpu_s"] for r in timed) / timed_tokens, 6)
        if timed_tokens
        else None,
        "code_wall_s_per_emitted": round(
            sum(r.get("code_wall_s", 0.0) for r in timed) / timed_tokens, 6
        )
        if timed_tokens
        else None,
    }


def read_runs(path: Path) -> list[dict[str, Any]]:
    """The runs list at ``path`` (``[]`` if there is none yet); checked, so a bad file is
    refused before an evaluation spends hours on results it could not record."""
    if not path.exists():
        return []
    text = read_text(path, what="runs list", fix="fix or move it")
    try:
        runs = json.loads(text)
    except json.JSONDecodeError:
        raise UsageError(f"{path} is not valid JSON; fix or move it") from None
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise UsageError(
            f"{path} is not a list of runs (like benchmarks/results/humaneval.json); "
            "pass another file"
        )
    return runs


def record_summary(summary_file: Path, summary: dict[str, Any]) -> None:
    """Add or replace this configuration's run in a runs list (atomically)."""
    config_keys = (
        "model",
        "verifier",
        "strategy",
        "attempts",
        "accept",
        "max_tokens",
        "temperature",
        "seed",
    )
    key = (*config_keys, "prompt_format", "variant")  # variant: a run kept beside the main one
    defaults: dict[str, Any] = {k: EvalConfig.model_fields[k].default for k in config_keys}
    defaults["prompt_format"] = EvalConfig.model_fields["prompt_format"].default

    def value(run: dict[str, Any], k: str) -> Any:
        if k == "variant":
            return run.get(k) or ""  # None, "" and absent: the main run
        return run.get(k, defaults[k])  # runs recorded before a field existed take its default

    def same(run: dict[str, Any]) -> bool:
        return all(value(run, k) == value(summary, k) for k in key)

    runs = [r for r in read_runs(summary_file) if not same(r)]
    runs.append(summary)
    write_text_atomic(summary_file, json.dumps(runs, indent=2) + "\n")
