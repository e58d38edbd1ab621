"""Quality harness pieces that need no model: extraction, sandbox, statistics, resume guard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from planner.quality.dataset import load_humaneval
from planner.quality.harness import _read, check_source, extract_program, rescore, results_stem
from planner.quality.results import (
    SCORING,
    EvalConfig,
    read_results_file,
    read_runs,
    record_summary,
    summarise,
)
from planner.quality.stats import mcnemar_exact, paired, wilson_interval
from runtime.errors import UsageError
from runtime.sandbox import Limits, run_program


def test_canonical_solutions_pass_and_empty_bodies_fail() -> None:
    problems = load_humaneval()
    assert len(problems) == 164
    for p in problems[:5]:
        good = check_source(p, p.prompt + p.canonical_solution)
        assert run_program(good).passed, p.task_id
        bad = check_source(p, p.prompt + "    return None\n")
        assert not run_program(bad).passed, p.task_id


def test_extraction_from_a_chat_reply() -> None:
    p = load_humaneval()[0]
    reply = (
        "Sure:\n```python\nfrom typing import List\n\ndef has_close_elements(numbers, "
        "threshold):\n" + p.canonical_solution + "```\nDone."
    )
    program = extract_program(p, reply)
    assert program.startswith("from typing import List")
    assert run_program(check_source(p, program)).passed
    body_only = extract_program(p, p.canonical_solution)  # no fence, no def: a body
    assert body_only.startswith(p.prompt)


def test_sandbox_limits() -> None:
    assert run_program("while True:\n    pass\n", Limits(wall_s=3, cpu_s=1)).status in (
        "failed",
        "timeout",
    )
    assert not run_program("x = bytearray(4 << 30)\n").passed
    out = run_program("import os\nprint(os.getcwd())\nraise SystemExit(3)\n")
    assert not out.passed


def test_statistics_hand_computed() -> None:
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert mcnemar_exact(0, 0) == 1.0
    # 10 discordant pairs all one way: 2 x 0.5^10
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    pr = paired({"a": True, "b": False, "c": True}, {"a": True, "b": True, "c": False})
    assert (pr.both, pr.a_only, pr.b_only, pr.neither) == (1, 1, 1, 0)


def _record(task_id: str, *, passed: bool, **more: object) -> dict[str, object]:
    return {
        "task_id": task_id,
        "passed": passed,
        "completion": "",
        "rollbacks": 0,
        "forward_per_emitted": 1.0,
        **more,
    }


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (["hello"], "line 1: not JSON"),
        (['{"model": "m"}'], 'line 1: no {"config": ...} header'),
        (["{header}", "{broken"], "line 2: not JSON"),
        (["{header}", "[1, 2]"], "line 2: Input should be a valid dictionary"),
        (["{header}", '{"task_id": "HumanEval/0"}'], "line 2: passed: Field required"),
        (
            ["{header}", "", '{"task_id": "HumanEval/0", "passed": true, "completion": null}'],
            "line 3: completion: Input should be a valid string",
        ),
    ],
)
def test_a_file_that_is_not_a_results_file_is_refused_with_its_line(
    tmp_path: Path, lines: list[str], why: str
) -> None:
    header = json.dumps({"config": EvalConfig(model="m").model_dump()})
    path = tmp_path / "r.jsonl"
    text = "".join(ln.replace("{header}", header) + "\n" for ln in lines)
    path.write_text(text)
    with pytest.raises(UsageError, match="not a backplan eval results file") as exc:
        read_results_file(path)
    assert why in str(exc.value)
    with pytest.raises(UsageError, match=re.escape(why)):
        _read(path, EvalConfig(model="m"))  # resuming into it is refused the same way
    assert path.read_text() == text


def test_binary_and_empty_files_are_refused_by_name(tmp_path: Path) -> None:
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(UsageError, match="b.jsonl is not UTF-8 text"):
        read_results_file(binary)
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(UsageError, match="e.jsonl is empty"):
        read_results_file(empty)


def test_a_runs_list_must_be_a_list_of_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs.json"
    for text in ("[1]", "{}", '"x"'):
        runs.write_text(text)
        with pytest.raises(UsageError, match="not a list of runs"):
            read_runs(runs)
    runs.write_text("[")
    with pytest.raises(UsageError, match="not valid JSON"):
        read_runs(runs)
    assert read_runs(tmp_path / "none-yet.json") == []


def test_a_sampled_run_does_not_replace_the_greedy_one_in_a_runs_list(tmp_path: Path) -> None:
    runs = tmp_path / "runs.json"
    greedy = summarise(EvalConfig(model="m"), [_record("HumanEval/0", passed=True)])
    sampled = summarise(
        EvalConfig(model="m", temperature=0.7), [_record("HumanEval/0", passed=False)]
    )
    record_summary(runs, greedy)
    record_summary(runs, sampled)
    kept = {**greedy, "variant": "judged-at-fence"}  # an earlier variant kept beside it
    record_summary(runs, kept)
    record_summary(runs, {**greedy, "passed": 0, "variant": ""})  # the same run: replaced
    stored = json.loads(runs.read_text())
    assert [(r["temperature"], r.get("variant"), r["passed"]) for r in stored] == [
        (0.7, None, 0),
        (0.0, "judged-at-fence", 1),
        (0.0, "", 0),
    ]


def test_resume_refuses_another_configuration(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    cfg = EvalConfig(model="m")
    out.write_text(
        json.dumps({"config": cfg.header()})
        + "\n"
        + json.dumps(_record("HumanEval/0", passed=True))
        + "\n"
    )
    assert set(_read(out, cfg)) == {"HumanEval/0"}
    with pytest.raises(UsageError, match="another configuration"):
        _read(out, EvalConfig(model="m", verifier="syntax"))
    # an option the file predates
    with pytest.raises(UsageError, match="attempts None there, 4 here"):
        _read(out, EvalConfig(model="m", strategy="regenerate", attempts=4))
    assert "attempts" not in cfg.header()  # so files written before it still resume
    regen = EvalConfig(model="m", verifier="latent", strategy="regenerate", attempts=4)
    assert results_stem(regen) == "m_latent_regenerate-a4"
    old = cfg.header()
    del old["scoring"]  # written before scoring was recorded
    out.write_text(json.dumps({"config": old}) + "\n")
    with pytest.raises(UsageError, match="backplan eval rescore"):
        _read(out, cfg)


def test_the_models_own_tests_and_a_truncated_tail_are_not_scored() -> None:
    p = load_humaneval()[2]  # truncate_number
    code = p.prompt + p.canonical_solution
    reply = f"```python\n{code}\nassert truncate_number(3.5) == 0.7\nprint(truncate_number("
    program = extract_program(p, reply)
    assert "assert truncate_number" not in program and "print(" not in program
    assert run_program(check_source(p, program)).passed
    cut_inside = f"```python\n{p.prompt}    return number -"  # the function itself is cut off
    assert not run_program(check_source(p, extract_program(p, cut_inside))).passed


def test_rescore_tests_stored_completions_again(tmp_path: Path) -> None:
    p = load_humaneval()[2]
    old = EvalConfig(model="m").model_dump()
    del old["scoring"]  # a file written before scoring was recorded
    reply = f"```python\n{p.prompt}{p.canonical_solution}\nprint(truncate_number("
    rec = {
        "task_id": p.task_id,
        "passed": False,
        "status": "failed",
        "completion": reply,
        "rollbacks": 0,
        "forward_per_emitted": 1.0,
    }
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"config": old}) + "\n" + json.dumps(rec) + "\n")
    config, summary = rescore(out)
    assert config.scoring == SCORING and summary["passed"] == 1
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["config"]["scoring"] == SCORING
    assert json.loads(lines[1])["passed"] is True and json.loads(lines[1])["completion"] == reply
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(UsageError, match="not a backplan eval results file"):
        rescore(bad)
    assert bad.read_text() == "not json\n"  # nothing lost


def test_summary_speed_is_the_runs_not_the_median_problems() -> None:
    """A run's throughput and forward evaluations per token weigh every problem by its tokens:
    one long, backtracking problem costs the workload more than the median problem shows."""
    fast = [
        _record(f"HumanEval/{i}", passed=True, emitted_tokens=100, tok_s=20.0) for i in range(4)
    ]
    slow = _record(
        "HumanEval/9", passed=False, emitted_tokens=400, tok_s=4.0, forward_per_emitted=5.0
    )
    s = summarise(EvalConfig(model="m"), [*fast, slow])
    assert s["tok_s"] == 20.0  # the median problem
    total_s = 4 * 100 / 20.0 + 400 / 4.0
    assert s["emitted_tok_s"] == round(800 / total_s, 2)
    assert s["forward_per_emitted"] == round((400 * 1.0 + 400 * 5.0) / 800, 4)
    assert s["emitted_tok_s"] < s["tok_s"]
    # records written without token counts fall back to the mean problem's figure
    old = summarise(EvalConfig(model="m"), [_record("HumanEval/0", passed=True)])
    assert old["emitted_tok_s"] is None and old["forward_per_emitted"] == 1.0


def test_summary_counts_problems_slowed_by_other_work() -> None:
    """A problem whose seconds per forward evaluation are far above the run's is counted, so
    a run's tokens/s can be read knowing how much of it other work on the machine took."""
    same = [
        _record(
            f"HumanEval/{i}", passed=True, emitted_tokens=100, tok_s=20.0, forward_per_emitted=f
        )
        for i, f in enumerate((1.0, 1.0, 2.0, 2.0))  # backtracking alone is not slowing
    ]
    same[2]["tok_s"] = 10.0  # twice the forward work at half the speed: the same pace
    slowed = _record("HumanEval/7", passed=True, emitted_tokens=100, tok_s=2.0)  # 10x slower
    assert summarise(EvalConfig(model="m"), same)["slowed_problems"] == 0
    assert summarise(EvalConfig(model="m"), [*same, slowed])["slowed_problems"] == 1
