"""What the harness and the examples verifier test of an answer: its definitions only."""

from __future__ import annotations

import ast

from runtime.verifiers.program import defines, definitions_only, parseable_prefix

ANSWER = """import math
LIMIT = 10
UNUSED = 3


def helper(x):
    return min(x, LIMIT)


@staticmethod
def f(x):
    return helper(math.floor(x))

print(f(2.5))
assert f(3) == 4, "the model's own (wrong) test"
if __name__ == "__main__":
    f(1)
def check():
    assert f(20) == """


def test_keeps_definitions_and_the_constants_they_read_drops_scaffolding() -> None:
    kept = definitions_only(ANSWER)
    tree = ast.parse(kept)
    names = [getattr(n, "name", None) or ast.unparse(n) for n in tree.body]
    assert names == ["import math", "LIMIT = 10", "helper", "f"]
    assert "@staticmethod" in kept  # decorators stay with their function
    assert "print" not in kept and "assert" not in kept and "__main__" not in kept


def test_truncated_tail_is_cut_at_the_last_top_level_line_that_parses() -> None:
    head, tree = parseable_prefix(ANSWER) or ("", None)
    assert head.rstrip().endswith("f(1)") and tree is not None
    assert defines(definitions_only(ANSWER), "f")
    assert not defines(definitions_only(ANSWER), "check")  # it was cut off mid-line


def test_code_that_never_parses_comes_back_unchanged() -> None:
    broken = "    def f(:\n"
    assert definitions_only(broken) == broken
    assert not defines(broken, "f")
