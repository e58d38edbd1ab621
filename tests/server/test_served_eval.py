"""``backplan eval humaneval --server``: problems generated through a real server process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from srvproc import ServerProcess

from planner.quality.harness import run_humaneval_served
from planner.quality.results import EvalConfig
from runtime.errors import UsageError

pytestmark = [pytest.mark.server, pytest.mark.integration]


def test_served_eval_writes_checked_results_and_resumes(
    api_server: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "served.jsonl"
    config = EvalConfig(model="smollm2-135m", max_tokens=24)
    summary = run_humaneval_served(config, out, api_server.url, concurrency=3, limit=3)
    assert summary["n"] == 3 and 0 <= summary["passed"] <= 3
    records = [json.loads(ln) for ln in out.read_text().splitlines()[1:]]
    assert sorted(r["task_id"] for r in records) == [f"HumanEval/{i}" for i in range(3)]
    assert all(r["status"] in {"passed", "failed", "timeout"} for r in records)
    assert all(0 < r["emitted_tokens"] <= 24 and r["served_concurrency"] == 3 for r in records)
    again = run_humaneval_served(config, out, api_server.url, limit=3)  # all done: no requests
    assert again["passed"] == summary["passed"]
    assert len(out.read_text().splitlines()) == 4


def test_served_eval_refuses_a_server_of_another_model(
    api_server: ServerProcess, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="not qwen2.5-coder-0.5b"):
        run_humaneval_served(
            EvalConfig(model="qwen2.5-coder-0.5b"), tmp_path / "x.jsonl", api_server.url, limit=1
        )
