"""HumanEval pass@1 of a runtime configuration: generate, extract, check in the sandbox.

Results go to a JSON-lines file, one line per problem after a header line with the
configuration, appended as each problem finishes: an interrupted run resumes where it stopped.
The hidden tests are only ever run by the sandbox, after generation; they are never a verifier.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner.quality.dataset import Problem, load_humaneval
from planner.quality.decoding import Decoding
from planner.quality.results import (
    EvalConfig,
    parse_results,
    read_results_file,
    summarise,
)
from runtime.atomic import append_line, drop_torn_tail, write_text_atomic
from runtime.errors import UsageError
from runtime.files import read_text
from runtime.sandbox import Limits, run_program
from runtime.verifiers.program import program_for
from runtime.verifiers.spec import VerifierSpec

INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in one "
    "```python code block."
)
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|\Z)", re.DOTALL)
_OTHER_OUT = "pass another --out"
log = logging.getLogger(__name__)


def decoding_tag(config: EvalConfig) -> str:
    """How a sampled run's results file is marked: ``t0.7-seed0``."""
    return f"t{config.temperature:g}-seed{config.seed}"


def results_stem(config: EvalConfig) -> str:
    """The default results file's name without ``.jsonl``: model, verifier, strategy and, for
    a sampled run, its :func:`decoding_tag`; characters a file name may not hold become ``_``."""
    greedy = Decoding.of_run(config.model_dump()).model_copy(update={"temperature": 0.0})
    name = f"{config.model}_{config.verifier}_{greedy.label}"
    if config.temperature > 0:
        name += f"_{decoding_tag(config)}"
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in name)


def build_prompt(problem: Problem) -> str:
    return f"{INSTRUCTION}\n\n```python\n{problem.prompt}```"


def extract_program(problem: Problem, reply: str) -> str:
    """The program to test: the reply's code block; if it lacks the function, the prompt+body.

    When the block defines the function, only its definitions are tested
    (:func:`~runtime.verifiers.program.definitions_only`): the model's own prints, asserts and
    a tail cut off by the token limit are not part of the answer.
    """
    m = _FENCE.search(reply)
    return program_for(problem.prompt, m.group(1) if m else reply, problem.entry_point)


def check_source(problem: Problem, program: str) -> str:
    return f"{program}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


def _read(path: Path, config: EvalConfig) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    if drop_torn_tail(path):
        log.warning("%s ended in half a line (a full disk or a crash): dropped it", path)
    header, records = parse_results(path, read_text(path, what="results file", fix=_OTHER_OUT))
    if header is None:
        return {}
    done = {rec["task_id"]: rec for rec in records}
    header = {k: v for k, v in header.items() if v is not None}  # unset options: not stored
    mine = config.header()
    if header.get("scoring") != mine["scoring"]:
        same = {k: v for k, v in header.items() if k != "scoring"}
        if same == {k: v for k, v in mine.items() if k != "scoring"}:
            raise UsageError(
                f"{path} was scored as {header.get('scoring', 'raw code blocks')}, not "
                f"{mine['scoring']}; run `backplan eval rescore {path}` first, then resume"
            )
    if header != mine:
        theirs = header
        differ = ", ".join(
            f"{k} {theirs.get(k)!r} there, {mine.get(k)!r} here"
            for k in dict.fromkeys([*mine, *theirs])
            if theirs.get(k) != mine.get(k)
        )
        raise UsageError(
            f"{path} holds results of another configuration ({differ}); pass "
            "another --out to start a new run"
        )
    return done


CROSSFIT_SUFFIX = ".crossfit.json"


def _start(
    config: EvalConfig, out: Path, limit: int | None
) -> tuple[list[Problem], dict[str, dict[str, Any]], list[Problem]]:
    """(problems, results already in ``out``, problems left); writes the header if new."""
    problems = load_humaneval()[: limit or None]
    done = _read(out, config)
    if not out.exists() or not out.read_text(encoding="utf-8").strip():
        write_text_atomic(out, json.dumps({"config": config.header()}) + "\n")
    return problems, done, [p for p in problems if p.task_id not in done]


def resolve_crossfit(spec: str, task_ids: list[str]) -> dict[str, str]:
    """Task -> verifier spec, with each cross-fit manifest replaced by the fold head that
    never saw the task. Refuses a head whose training problems include the task."""
    from runtime.verifiers.head import ValueHead

    specs = {t: spec for t in task_ids}
    for part in VerifierSpec.parse(spec).parts:
        ref = part.arg or ""
        if part.info.arg != "head":
            continue
        if ref.endswith(".npz"):
            seen_by = set(ValueHead.load(Path(ref)).metadata.training_tasks) & set(task_ids)
            if seen_by:
                first = sorted(seen_by, key=lambda t: (len(t), t))[0]
                raise UsageError(
                    f"{ref} was trained on {len(seen_by)} of these problems ({first}, ...); "
                    "score them with its cross-fit manifest (*.crossfit.json) instead"
                )
            continue
        if not ref.endswith(CROSSFIT_SUFFIX):
            continue
        path = Path(ref)
        try:
            manifest = json.loads(read_text(path, what="cross-fit manifest", fix="train again"))
            fold_of = {t: f["head"] for f in manifest["folds"] for t in f["tasks"]}
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(
                f"{path} is not a cross-fit manifest; make one with `backplan verifier train`"
            ) from None
        seen: dict[str, set[str]] = {}
        for t in task_ids:
            if t not in fold_of:
                raise UsageError(
                    f"{t} is in no fold of {path}: no head exists that did not see it; "
                    "train on rollouts covering the evaluated problems"
                )
            head_path = path.parent / fold_of[t]
            if str(head_path) not in seen:
                seen[str(head_path)] = set(ValueHead.load(head_path).metadata.training_tasks)
            if t in seen[str(head_path)]:
                raise UsageError(f"{head_path} was trained on {t}; it must never score it")
            specs[t] = specs[t].replace(ref, str(head_path))
    return specs


def run_humaneval(
    config: EvalConfig,
    out: Path,
    *,
    limit: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """Evaluate (resuming from ``out``), return the summary."""
    from runtime.generation import Runtime, RuntimeSettings
    from runtime.samplers.choice import SamplingParams
    from runtime.samplers.regenerate import RegenerateParams

    problems, done, todo = _start(config, out, limit)
    passed_so_far = sum(1 for p in problems if done.get(p.task_id, {}).get("passed"))
    specs = resolve_crossfit(config.verifier, [p.task_id for p in todo])
    groups: dict[str, list[Problem]] = {}
    for p in todo:
        groups.setdefault(specs[p.task_id], []).append(p)
    finished = len(problems) - len(todo)
    for spec, group in groups.items():
        settings = RuntimeSettings(
            model=config.model,
            verifier=spec,
            strategy=config.strategy,  # type: ignore[arg-type]
            regenerate=RegenerateParams(
                **config.model_dump(include={"attempts", "accept"}, exclude_none=True)
            ),
        )
        with Runtime(settings) as rt:
            sampling = SamplingParams(temperature=config.temperature)
            for problem in group:
                gen = rt.generate(
                    rt.prompt_tokens(build_prompt(problem)),
                    max_tokens=config.max_tokens,
                    sampling=sampling,
                    seed=config.seed,
                )
                program = extract_program(problem, gen.text)
                outcome = run_program(check_source(problem, program), limits)
                t = gen.trace
                rec = {
                    "task_id": problem.task_id,
                    "passed": outcome.passed,
                    "status": outcome.status,
                    "detail": outcome.detail,
                    "completion": gen.text,
                    "emitted_tokens": t.emitted_tokens,
                    "rollbacks": t.rollbacks,
                    "rejected_tokens": t.rejected_tokens,
                    "replayed_tokens": t.replayed_tokens,
                    "tok_s": round(t.decode_tok_s, 2),
                    "forward_per_emitted": round(t.forward_per_emitted, 4),
                    "code_runs": t.code_runs,
                    "code_cpu_s": t.code_cpu_s,
                    "code_wall_s": t.code_wall_s,
                    "isolation": outcome.isolation.value,
                }
                append_line(out, json.dumps(rec))  # one whole line per problem, or none
                done[problem.task_id] = rec
                passed_so_far += outcome.passed
                finished += 1
                if progress is not None:
                    progress(finished, len(problems), passed_so_far)
    return summarise(config, [done[p.task_id] for p in problems])


def run_humaneval_served(
    config: EvalConfig,
    out: Path,
    url: str,
    *,
    concurrency: int = 8,
    api_key: str | None = None,
    limit: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """Evaluate through a running ``backplan serve`` (same prompt and decoding), ``concurrency``
    requests at a time so its parallel slots decode several problems together. The server's
    model and verifier must be the ones ``config`` names (checked against /v1/models)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    problems, done, todo = _start(config, out, limit)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    base = url.rstrip("/")
    try:
        served = [m["id"] for m in httpx.get(f"{base}/v1/models", headers=headers).json()["data"]]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise UsageError(
            f"no backplan server answers at {url} ({exc}); start `backplan serve`"
        ) from None
    if config.model not in served:
        raise UsageError(f"the server at {url} serves {served}, not {config.model}")
    lock = threading.Lock()
    passed_so_far = sum(1 for p in problems if done.get(p.task_id, {}).get("passed"))
    finished = len(problems) - len(todo)

    def one(problem: Problem) -> None:
        nonlocal passed_so_far, finished
        body = {
            "model": config.model,
            "messages": [{"role": "user", "content": build_prompt(problem)}],
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
            "seed": config.seed,
            "backplan": {"verifier": config.verifier, "strategy": config.strategy},
        }
        r = httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=None)
        if r.status_code != 200:
            raise UsageError(f"the server refused {problem.task_id}: {r.status_code} {r.text}")
        data = r.json()
        text = data["choices"][0]["message"]["content"] or ""
        bt = data.get("backtrack") or {}
        outcome = run_program(check_source(problem, extract_program(problem, text)), limits)
        rec = {
            "task_id": problem.task_id,
            "passed": outcome.passed,
            "status": outcome.status,
            "detail": outcome.detail,
            "completion": text,
            "emitted_tokens": data["usage"]["completion_tokens"],
            "rollbacks": bt.get("rollbacks", 0),
            "rejected_tokens": bt.get("rejected_tokens", 0),
            "tok_s": round(bt.get("decode_tokens_per_s", 0.0), 2),
            "forward_per_emitted": round(bt.get("forward_per_token", 1.0), 4),
            "served_concurrency": concurrency,
            "isolation": outcome.isolation.value,
        }
        with lock:
            append_line(out, json.dumps(rec))
            done[problem.task_id] = rec
            passed_so_far += outcome.passed
            finished += 1
            if progress is not None:
                progress(finished, len(problems), passed_so_far)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for fut in [pool.submit(one, p) for p in todo]:
            fut.result()
    return summarise(config, [done[p.task_id] for p in problems])


def rescore(
    path: Path,
    results: tuple[EvalConfig, list[dict[str, Any]]] | None = None,
    *,
    progress: Callable[[int, int, int], None] | None = None,
    limits: Limits | None = None,
) -> tuple[EvalConfig, dict[str, Any]]:
    """Test a results file's stored completions again under today's :data:`SCORING` (no
    generation); rewrite it atomically with the new header and outcomes, return its summary.
    ``results``: what :func:`read_results_file` already read from ``path``."""
    config, records = results or read_results_file(path)
    problems = {p.task_id: p for p in load_humaneval()}
    passed = 0
    for i, rec in enumerate(records, 1):
        problem = problems[rec["task_id"]]
        program = extract_program(problem, rec["completion"])
        outcome = run_program(check_source(problem, program), limits)
        rec.update(
            passed=outcome.passed,
            status=outcome.status,
            detail=outcome.detail,
            isolation=outcome.isolation.value,
        )
        passed += outcome.passed
        if progress is not None:
            progress(i, len(records), passed)
    body = "".join(json.dumps(r) + "\n" for r in records)
    write_text_atomic(path, json.dumps({"config": config.header()}) + "\n" + body)
    return config, summarise(config, records)
