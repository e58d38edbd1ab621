"""Hidden-state features and rollouts on real llama.cpp (SmolLM2-135M)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.quality.dataset import load_humaneval
from planner.verifier_training.features import rollout_features
from planner.verifier_training.rollouts import CollectConfig, Rollout, collect, load_rollouts

pytestmark = pytest.mark.integration


def test_features_have_one_row_per_kept_prefix(smol_path: Path) -> None:
    problem = load_humaneval()[2]
    right = f"```python\n{problem.prompt}{problem.canonical_solution}```"
    rollouts = [
        Rollout(task_id=problem.task_id, sample="a", completion=right, passed=True, status="p"),
        Rollout(
            task_id=problem.task_id,
            sample="b",
            completion="```python\n```",
            passed=False,
            status="f",
        ),
    ]
    feats = rollout_features("smollm2-135m", "smollm2-135m", rollouts, stride=5)
    assert feats.x.shape[1] == 576 and np.isfinite(feats.x).all()
    assert feats.final.sum() == 2 and set(feats.y.tolist()) == {0, 1}
    assert feats.tokens_processed > len(right) // 8
    first = feats.rollout == 0
    n_answer = feats.tokens_processed  # rows of rollout 0: every 5th prefix, root and last
    assert 3 <= first.sum() < n_answer
    assert feats.cpu_s > 0 and len(feats.model_sha256) == 64


def test_collect_resumes_and_labels_with_the_tests(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    config = CollectConfig(model="smollm2-135m", samples=1, temperature=0.8, max_tokens=24)
    first = collect(config, out, limit=2)
    assert len(first) == 2 and all(r.tokens and r.generated_tokens for r in first)
    assert all(r.status in {"passed", "failed", "timeout"} for r in first)
    again = collect(config, out, limit=2)  # nothing left to do: read back, not regenerated
    assert [r.completion for r in again] == [r.completion for r in first]
    header, rows = load_rollouts(out)
    assert header["model"] == "smollm2-135m" and len(rows) == 2
