"""Programmatic verifier: run the request's own tests against each finished answer.

What an IDE integration has where a prompt states no docstring examples: the user's tests
(``assert slugify("A b") == "a-b"``). They come with the request (``"backplan": {"verifier":
"tests", "tests": [...]}``, or ``backplan generate --test``), run in the sandbox against the
answer's definitions, and an answer that fails any is written again, as with the prompt's
examples (:class:`~runtime.verifiers.examples.DocExamplesVerifier`, whose judging, restarts and
best-answer fallback this shares). The function judged is the one the prompt's code asks for,
else the first function the tests call.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Sequence

from runtime.errors import UsageError
from runtime.sandbox import Limits
from runtime.verifiers.examples import DEF_LINE, FENCE_BLOCK, DocExamplesVerifier, assemble_program

#: Bounds on what a request may hand the verifier (the server refuses more with a 400).
MAX_TESTS = 64
MAX_TEST_CHARS = 4000

_RUN_TESTS = """

__backplan_failed = []
for __backplan_i, __backplan_test in enumerate({tests}):
    try:
        exec(compile(__backplan_test, f"<test {{__backplan_i + 1}}>", "exec"), globals())
    except Exception as exc:
        __backplan_failed.append(
            __backplan_test.splitlines()[0][:120] + " raised " + type(exc).__name__
        )
if __backplan_failed:
    raise SystemExit(f"{{len(__backplan_failed)}} of {n} tests failed: {{__backplan_failed[0]}}")
"""


def check_tests(tests: Sequence[str]) -> tuple[str, ...]:
    """The tests, each a parseable Python statement block; a :class:`UsageError` otherwise."""
    if not tests:
        raise UsageError("give at least one test, e.g. 'assert add(1, 2) == 3'")
    if len(tests) > MAX_TESTS:
        raise UsageError(f"at most {MAX_TESTS} tests per request ({len(tests)} given)")
    for i, test in enumerate(tests, 1):
        if not isinstance(test, str) or not test.strip():
            raise UsageError(
                f"test {i} is empty; give Python statements such as 'assert f(1) == 2'"
            )
        if len(test) > MAX_TEST_CHARS:
            raise UsageError(f"test {i} is over {MAX_TEST_CHARS} characters; split it")
        try:
            ast.parse(test)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
            raise UsageError(f"test {i} is not valid Python ({why}); fix it") from None
    return tuple(tests)


def called_functions(tests: Sequence[str]) -> list[str]:
    """Names the tests call that are not builtins, in order of first call."""
    found: list[str] = []
    for test in tests:
        for node in ast.walk(ast.parse(test)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                if not hasattr(builtins, name) and name not in found:
                    found.append(name)
    return found


class RequestTestsVerifier(DocExamplesVerifier):
    """Value 0 for the token that completed an answer failing the request's tests, else 1."""

    name = "tests"

    def __init__(
        self,
        piece: Callable[[int], bytes],
        *,
        tests: Sequence[str],
        max_rejections: int = 3,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(piece, max_rejections=max_rejections, limits=limits)
        self.tests = check_tests(tests)

    def _load_checks(self, prompt_text: str) -> None:
        blocks = FENCE_BLOCK.findall(prompt_text)
        self.prompt_src = blocks[-1] if blocks else ""  # prose prompts bring no code
        self.examples = []
        wanted = DEF_LINE.findall(self.prompt_src)
        called = called_functions(self.tests)
        self.entry = wanted[-1] if wanted else (called[0] if called else None)

    @property
    def _has_checks(self) -> bool:
        return True

    @property
    def _n_checks(self) -> int:
        return len(self.tests)

    def _check_source(self, code: str) -> str:
        program = assemble_program(self.prompt_src, code) if self.prompt_src else code
        return program + _RUN_TESTS.format(tests=repr(list(self.tests)), n=len(self.tests))
