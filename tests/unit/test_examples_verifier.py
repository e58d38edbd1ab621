"""The prompt's-examples verifier without a model: parsing, sandboxed checks, restart points."""

from __future__ import annotations

import pytest

from planner.quality.dataset import load_humaneval
from runtime.sandbox import run_program
from runtime.verifiers.examples import (
    DocExamplesVerifier,
    assemble_program,
    check_program,
    parse_examples,
    prompt_code,
)

PROMPT_CODE = '''from typing import List


def add(xs: List[int], k: int) -> List[int]:
    """Add k to each number.
    >>> add([1, 2], 1)
    [2, 3]
    Also: add([], 5) == []
    add([0], -1) ➞ [-1]
    add(a, b) => [3]
    add([2], 2) # => [4] (two plus two)
    """
'''


def test_parse_examples_in_doctest_and_prose_forms() -> None:
    found = {ex.expr: ex.want for ex in parse_examples(PROMPT_CODE)}
    assert found == {
        "add([1, 2], 1)": [2, 3],
        "add([], 5)": [],
        "add([0], -1)": [-1],
        "add([2], 2)": [4],
    }  # add(a, b) names placeholders, not values: not an example


def test_parse_ignores_calls_of_functions_the_code_does_not_define() -> None:
    assert parse_examples('def f(x):\n    """g(1) == 2\n    >>> g(1)\n    2\n    """\n') == []


def test_check_program_passes_a_right_answer_and_fails_a_wrong_one() -> None:
    examples = parse_examples(PROMPT_CODE)
    right = "def add(xs, k):\n    return [x + k for x in xs]\n"
    wrong = "def add(xs, k):\n    return [x + k + 1 for x in xs]\n"
    assert run_program(check_program(assemble_program(PROMPT_CODE, right), examples)).passed
    outcome = run_program(check_program(assemble_program(PROMPT_CODE, wrong), examples))
    # add([], 5) == [] holds even for the wrong answer
    assert not outcome.passed and "3 of 4 examples failed" in outcome.detail


def test_assemble_program_appends_a_bare_body_to_the_prompt() -> None:
    body = "    return [x + k for x in xs]\n"
    program = assemble_program(PROMPT_CODE, body)
    assert program.startswith(PROMPT_CODE) and program.endswith(body)
    whole = "def add(xs, k):\n    return xs\n"
    assert assemble_program(PROMPT_CODE, whole) == "from typing import List\n" + whole


def test_humaneval_reference_solutions_pass_their_own_examples() -> None:
    """The parser reads the examples right: reference solutions pass them, bar docstring slips."""
    with_examples = passed = 0
    for problem in load_humaneval():
        examples = parse_examples(problem.prompt)
        if not examples:
            continue
        with_examples += 1
        program = assemble_program(problem.prompt, problem.prompt + problem.canonical_solution)
        passed += run_program(check_program(program, examples)).passed
    assert with_examples >= 145
    assert passed >= 0.95 * with_examples


def _tokens(text: str, table: dict[int, bytes]) -> list[int]:
    ids = []
    for ch in text:
        tid = len(table)
        table[tid] = ch.encode()
        ids.append(tid)
    return ids


def _started(*, max_rejections: int) -> tuple[dict[int, bytes], DocExamplesVerifier]:
    """A verifier begun on PROMPT_CODE's chat prompt, and the one-character token table."""
    table: dict[int, bytes] = {}
    prompt = _tokens(f"Complete it.\n\n```python\n{PROMPT_CODE}```", table)
    v = DocExamplesVerifier(table.__getitem__, max_rejections=max_rejections)
    v.begin(prompt, None)
    return table, v


@pytest.mark.parametrize("answer, ok", [("return [x + k for x in xs]", True), ("return xs", False)])
def test_verifier_judges_the_closing_fence_and_points_back_to_the_code(
    answer: str, ok: bool
) -> None:
    table: dict[int, bytes] = {}
    prompt = _tokens(f"Complete it.\n\n```python\n{PROMPT_CODE}```", table)
    v = DocExamplesVerifier(table.__getitem__, max_rejections=1)
    assert v.begin(prompt, None) == 1.0 and len(v.examples) == 4
    intro = "Sure:\n```python\n"
    v.extend(_tokens(intro + "def add(xs, k):\n    " + answer + "\n", table), None)
    assert (v.values() == 1.0).all()
    assert v.hold_from() == len(intro)  # the open block may still be taken back
    v.extend(_tokens("```", table), None)
    values = v.values()
    closing = len(intro) + len("def add(xs, k):\n    " + answer + "\n") + 2
    assert values[-1] == (1.0 if ok else 0.0)  # the third backtick closes the fence
    assert (values[:-1] == 1.0).all()
    if ok:
        assert v.restart_point(closing) is None and v.hold_from() is None
    else:
        assert v.restart_point(closing) == len(intro) and v.rejections == 1
        v.rollback(closing + 1 - len(intro))
        v.extend(_tokens("def add(xs, k):\n    return xs\n```", table), None)
        assert (v.values() == 1.0).all()  # its one rejection is spent: the answer stands
        assert v.hold_from() is None and "failed" in v.last_detail


def test_out_of_tries_the_answer_that_failed_fewest_examples_is_put_back() -> None:
    table, v = _started(max_rejections=1)
    intro = _tokens("Sure:\n```python\n", table)
    nearly = _tokens(
        "def add(xs, k):\n    return [x + k for x in xs] if k != 2 else []\n```", table
    )  # fails add([2], 2) only
    v.extend(intro + nearly, None)
    assert v.values()[-1] == 0.0 and v.rejections == 1
    v.rollback(len(nearly))
    worse = _tokens("def add(xs, k):\n    return xs\n```", table)  # fails 3 of 4
    v.extend(worse, None)
    closing = len(intro) + len(worse) - 1
    assert v.values()[-1] == 0.0  # out of tries, but the first answer did better
    assert v.restart_point(closing) == len(intro)
    assert list(v.replacement(closing) or []) == nearly
    assert v.replacement(closing) is None  # handed over once
    v.rollback(len(worse))
    v.extend(nearly, None)
    assert (v.values() == 1.0).all() and v.hold_from() is None  # settled: it stands


def test_the_answer_in_place_reports_how_many_examples_it_failed() -> None:
    """What a whole-answer strategy (regenerate) ranks answers by, fewest failures first."""
    table, v = _started(max_rejections=3)
    intro = _tokens("Sure:\n```python\n", table)
    v.extend(intro, None)
    v.values()
    assert v.answer_failures() == 5  # the function is not finished: worse than failing all 4
    nearly = _tokens(
        "def add(xs, k):\n    return [x + k for x in xs] if k != 2 else []\n```", table
    )
    v.extend(nearly, None)
    v.values()
    assert v.answer_failures() == 1
    v.rollback(len(intro) + len(nearly))  # a new answer from the start
    assert v.answer_failures() == 5
    v.extend(intro + _tokens("def add(xs, k):\n    return [x + k for x in xs]\n```", table), None)
    v.values()
    assert v.answer_failures() == 0
    table, none = _started(max_rejections=3)
    none.begin(_tokens("Write a haiku.", table), None)
    assert none.answer_failures() is None  # no examples stated: nothing to rank by


def test_parse_examples_in_named_input_forms() -> None:
    code = (
        "def pick(arr, k):\n"
        '    """Example:\n'
        "        Input: arr = [3, 1, 2], k = 2\n"
        "        Output: [2, 3]\n"
        "    For arr = [5], k = 1 the output should be [5].\n"
        "    * pick([], 0) => []\n"
        "    >>> sorted(pick([1, 2], 1))\n"
        "    [2]\n"
        "    pick([1], 1) => true\n"
        '    Input: xs = [1], k = 1\n    Output: [1]\n    """\n'
    )
    found = {ex.expr: ex.want for ex in parse_examples(code)}
    assert found == {
        "pick([3, 1, 2], 2)": [2, 3],
        "pick([5], 1)": [5],
        "pick([], 0)": [],
        "sorted(pick([1, 2], 1))": [2],
        "pick([1], 1)": True,
    }  # xs is not a parameter of pick: that input is not an example


def test_prompt_code_takes_the_last_fenced_block() -> None:
    assert prompt_code("a\n```python\nx = 1\n```\nb\n```\ny = 2\n```") == "y = 2\n"
    assert prompt_code("def f():\n    pass\n") == "def f():\n    pass\n"


def test_the_function_is_judged_when_the_next_top_level_line_starts() -> None:
    """A model that writes its own tests after the function gets judged before the fence."""
    table, v = _started(max_rejections=2)
    intro = _tokens("Sure:\n```python\n", table)
    wrong = _tokens("def add(xs, k):\n    return xs\n\n", table)
    v.extend(intro + wrong, None)
    assert (v.values() == 1.0).all() and v.hold_from() == len(intro)
    v.extend(_tokens("print(add([1], 1))", table), None)
    values = v.values()
    flagged = len(intro) + len(wrong)  # the "p" that starts the top-level line
    assert values[0] == 0.0 and (values[1:] == 1.0).all()
    assert v.restart_point(flagged) == len(intro)
    v.rollback(len(wrong) + len("print(add([1], 1))"))
    right = _tokens("def add(xs, k):\n    return [x + k for x in xs]\n# test\n", table)
    v.extend(right, None)
    assert (v.values() == 1.0).all() and v.hold_from() is None  # passed: nothing held


def test_a_helper_defined_after_the_function_defers_the_judgement() -> None:
    table, v = _started(max_rejections=2)
    code = (
        "Sure:\n```python\ndef add(xs, k):\n    return [plus(x, k) for x in xs]\n"
        "def plus(a, b):\n    return a + b\nprint(1)"
    )
    v.extend(_tokens(code, table), None)
    assert (v.values() == 1.0).all()  # at "def plus" add raised NameError: no verdict yet
    assert v.rejections == 0 and v.hold_from() is None and v.stats.calls == 2


def test_at_the_token_limit_the_best_judged_answer_replaces_an_unjudged_one() -> None:
    table, v = _started(max_rejections=3)
    intro = _tokens("Sure:\n```python\n", table)
    nearly = _tokens(
        "def add(xs, k):\n    return [x + k for x in xs] if k != 2 else []\n```", table
    )
    v.extend(intro + nearly, None)
    assert v.values()[-1] == 0.0
    assert v.at_length() is None or v.at_length() == (len(intro), nearly)
    v.rollback(len(nearly))
    rambling = _tokens('def add(xs, k):\n    """' + "very " * 20, table)
    v.extend(rambling, None)
    assert (v.values() == 1.0).all()
    fallback = v.at_length()
    assert fallback == (len(intro), nearly)
    assert v.at_length() is None  # settled: handed over once
