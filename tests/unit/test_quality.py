"""Quality harness pieces that need no model: extraction, sandbox, statistics, resume guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.quality.dataset import load_humaneval
from planner.quality.harness import EvalConfig, _read, check_source, extract_program
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


def test_resume_refuses_another_configuration(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    cfg = EvalConfig(model="m")
    out.write_text(
        json.dumps({"config": cfg.model_dump()})
        + "\n"
        + json.dumps({"task_id": "HumanEval/0", "passed": True})
        + "\n"
    )
    assert set(_read(out, cfg)) == {"HumanEval/0"}
    with pytest.raises(UsageError, match="another configuration"):
        _read(out, EvalConfig(model="m", verifier="syntax"))
