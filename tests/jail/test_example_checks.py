"""The prompt's own examples run on stored rollouts, in the real jail, as a replay reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.quality.dataset import load_humaneval
from planner.verifier_training.answers import rollout_key
from planner.verifier_training.example_checks import cached_example_checks
from planner.verifier_training.rollouts import Rollout
from runtime.sandbox import jail_problem

pytestmark = pytest.mark.jail

RIGHT = """```python
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for b in numbers[i + 1 :]:
            if abs(a - b) < threshold:
                return True
    return False


print(has_close_elements([1.0], 0.5))
assert has_close_elements([1.0, 2.0], 0.5) is None  # the model's own wrong assert: not judged
```"""
# compares neighbours only: right on the prompt's two examples, wrong on the hidden tests
NEIGHBOURS_ONLY = """```python
def has_close_elements(numbers, threshold):
    return any(abs(a - b) < threshold for a, b in zip(numbers, numbers[1:]))
```"""


def _rollout(task: str, sample: str, completion: str) -> Rollout:
    return Rollout(task_id=task, sample=sample, completion=completion, passed=False, status="x")


def test_answers_are_checked_against_their_prompts_examples_and_cached(tmp_path: Path) -> None:
    assert jail_problem() is None, "the jail cannot run here"
    no_examples = next(
        p for p in load_humaneval() if p.task_id == "HumanEval/38"
    )  # decode_cyclic: its docstring states no example
    rows = [
        _rollout("HumanEval/0", "s0", RIGHT),
        _rollout("HumanEval/0", "s1", NEIGHBOURS_ONLY),
        _rollout("HumanEval/0", "s2", "```python\ndef has_close_elements(numbers, t):\n"),
        _rollout(
            "HumanEval/0", "s3", "```python\ndef has_close_elements(numbers, t):\n    1/0\n```"
        ),
        _rollout(
            "HumanEval/0", "s4", "```python\ndef has_close_elements(n, t):\n    return True\n```"
        ),
        _rollout(no_examples.task_id, "s0", "```python\ndef decode_cyclic(s):\n    return s\n```"),
    ]
    cache = tmp_path / "checks.json"
    checks = cached_example_checks(rows, cache)
    assert [c.n_examples for c in checks] == [2, 2, 2, 2, 2, 0]
    assert checks[0].passed and checks[0].failed == 0
    assert checks[1].passed  # the examples cannot tell it from a right answer
    assert checks[2].failed == 3 and not checks[2].passed  # nothing to run: worse than all
    assert checks[3].failed == 2  # raised on both examples
    assert checks[4].failed == 1  # `True` holds for one of the two examples
    assert not checks[5].passed and checks[5].failed == 0
    # cached per answer: a changed record is what comes back, nothing is run again
    body = json.loads(cache.read_text())
    body["checks"][rollout_key(rows[4])] = [2, 2]
    cache.write_text(json.dumps(body))
    again = cached_example_checks(rows, cache)
    assert again[4].failed == 2 and [c.failed for c in again[:4]] == [0, 0, 3, 2]
