"""Programmatic verifier: run the prompt's own examples against the finished function.

The prompt's code (a function signature and its docstring) often shows how the function
behaves: doctest lines (``>>> f(2)`` then ``4``), prose such as ``f(2) == 4``, ``f(2) ➞ 4``,
``* f(2) => true``, or named inputs (``Input: xs = [1], k = 2`` / ``Output: [3]``,
``For xs = [1] the output should be 3``, mapped onto the function's parameters). As soon as
the function is complete (the answer's next top-level line starts, or its code block closes),
the generated definitions (:func:`~runtime.verifiers.program.definitions_only`) run those
examples in a sandboxed process (:mod:`runtime.sandbox`, never in this process); the value of
the token that completed the function is 1 when every example holds, 0 otherwise, and 1 for
every other token. Judging at the function's end, not the fence, matters: a small model often
goes on writing its own tests until the token limit, and the fence never comes.

A rejection here is about a whole answer, not the last token, so the verifier tells the
sampler where to start again (:meth:`restart_point`: the first line of the code block) and
that nothing after that point may be streamed yet (:meth:`hold_from`); once its tries are
spent, it may hand back the best earlier answer instead (:meth:`replacement`). Only examples
the prompt states with a literal expected value are used; nothing is invented. The hidden
tests of a benchmark are never seen here: only the prompt's text.
"""

from __future__ import annotations

import ast
import doctest
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.sandbox import Limits, run_program
from runtime.verifiers.base import Verifier
from runtime.verifiers.program import (
    PARSER_GAVE_UP,
    defines,
    definitions_only,
    parseable_prefix,
    program_for,
)
from runtime.verifiers.syntax import extract_code

FENCE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
DEF_LINE = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
_NEW_TOP_LEVEL_LINE = re.compile(rb"\n[^\s`]")
_ARROWS = r"==>|==|=>|➞|->|⇒|→|=|\bshould\s+return\b|\breturns?\b"


@dataclass(frozen=True)
class Example:
    """One call with its stated result: ``expr`` evaluates to the literal ``want``."""

    expr: str
    want: Any

    def as_tuple(self) -> tuple[str, str]:
        return self.expr, repr(self.want)


def _literal(text: str) -> tuple[bool, Any]:
    """The literal ``text`` states, tolerating a trailing remark: ``'No' (because ...)``."""
    text = text.strip()
    candidates = [text, re.sub(r"\s*(#.*|\(\D.*\))$", "", text)]
    for cand in candidates:
        cand = cand.strip().rstrip(".,;")
        try:
            return True, ast.literal_eval(cand)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    word = text.rstrip(".,;").lower()
    if word in ("true", "false"):  # prose: ``is_simple_power(2, 2) => true``
        return True, word == "true"
    return False, None


@dataclass(frozen=True)
class _Doc:
    """A function's docstring with the function's name and positional parameters."""

    name: str | None
    params: tuple[str, ...]
    text: str


def _docstrings(code: str) -> list[_Doc]:
    """The docstrings of the functions in ``code`` (dedented); the raw code if it won't parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, *PARSER_GAVE_UP):
        return [_Doc(None, (), code)]
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node)
            if text:
                args = node.args.posonlyargs + node.args.args
                docs.append(_Doc(node.name, tuple(a.arg for a in args), text))
    return docs


# pure builtins an example may wrap the call in: ``round(find_zero([1, 2]), 2)``
_WRAPPERS = frozenset({"round", "sorted", "len", "abs", "list", "tuple", "set", "str", "sum"})


def _is_call_of(expr: str, names: set[str]) -> bool:
    """``expr`` calls one of ``names`` with stated values, perhaps inside a pure builtin."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except (SyntaxError, *PARSER_GAVE_UP):
        return False
    return _literal_call(node, names, wrapped_ok=True)


def _literal_call(node: ast.expr, names: set[str], *, wrapped_ok: bool) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.keywords:
        return False
    if node.func.id not in names:
        if not (wrapped_ok and node.func.id in _WRAPPERS and node.args):
            return False
        inner, *rest = node.args
        return _literal_call(inner, names, wrapped_ok=False) and all(map(_is_literal, rest))
    # arguments must be stated values: ``is_happy(a)`` is a placeholder, not an example
    return all(map(_is_literal, node.args))


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def prompt_code(prompt_text: str) -> str:
    """The code shown in a prompt: its last fenced block, else the whole text."""
    blocks = FENCE_BLOCK.findall(prompt_text)
    return blocks[-1] if blocks else prompt_text


_FOR_OUTPUT = re.compile(
    r"^\s*(?:[*\-•]\s*)?For\s+(?P<args>.+?),?\s+the\s+output\s+should\s+be\s+(?P<want>.+?)\s*$",
    re.MULTILINE | re.IGNORECASE,
)
_INPUT_OUTPUT = re.compile(
    r"\bInput\s*:\s*(?P<args>.*?)\n\s*Output\s*:\s*(?P<want>[^\n]+)", re.DOTALL
)


def _call_from_assignments(doc: _Doc, args_text: str) -> str | None:
    """``f(v1, v2)`` from ``a = v1, b = v2`` (or ``a : v1`` lines) naming ``doc``'s parameters.

    A function of one parameter may be given the bare value: ``Input: [4, 2, 3]``.
    """
    if doc.name is None or not doc.params:
        return None
    names = "|".join(map(re.escape, doc.params))
    marks = list(re.finditer(rf"(?<![\w.])({names})\s*(?:=(?!=)|:)\s*", args_text))
    if not marks:
        texts = {doc.params[0]: args_text} if len(doc.params) == 1 else {}
    else:
        if args_text[: marks[0].start()].strip():
            return None
        ends = [m.start() for m in marks[1:]] + [len(args_text)]
        texts = {m.group(1): args_text[m.end() : end] for m, end in zip(marks, ends, strict=True)}
    if set(texts) != set(doc.params):
        return None
    values = []
    for param in doc.params:
        ok, value = _literal(texts[param].strip().rstrip(","))
        if not ok:
            return None
        values.append(repr(value))
    return f"{doc.name}({', '.join(values)})"


def parse_examples(code: str) -> list[Example]:
    """Examples stated in ``code``'s docstrings, for functions ``code`` defines."""
    names = set(DEF_LINE.findall(code))
    if not names:
        return []
    found: list[Example] = []
    seen: set[str] = set()

    def add(expr: str, want_text: str) -> None:
        expr = expr.strip()
        ok, want = _literal(want_text)
        if ok and expr not in seen and _is_call_of(expr, names):
            seen.add(expr)
            found.append(Example(expr, want))

    callee = "|".join(map(re.escape, sorted(names)))
    pattern = re.compile(
        rf"^\s*(?:[A-Za-z][\w ]*:\s*)?(?:[*\-•]\s*)?(?:>>>\s*)?(?P<expr>(?:{callee})\(.*\))"
        rf"\s*#?\s*(?:{_ARROWS})\s*(?P<want>.+?)\s*$",
        re.MULTILINE,
    )
    for doc in _docstrings(code):
        try:
            doc_examples = doctest.DocTestParser().get_examples(doc.text)
        except ValueError:  # inconsistent indentation: the line rules below still apply
            doc_examples = []
        for ex in doc_examples:
            want = ex.want.strip()
            if want:  # a want runs on to the next blank line: fall back to its first line
                add(ex.source, want if _literal(want)[0] else want.splitlines()[0])
        for m in pattern.finditer(doc.text):
            expr = m.group("expr")
            # the greedy ``.*\)`` may swallow the arrow's left side; retry at each ``)``
            for cut in [i for i, ch in enumerate(expr) if ch == ")"][::-1]:
                head = expr[: cut + 1]
                if _is_call_of(head, names):
                    rest = doc.text[m.start("expr") + cut + 1 : m.end("want")]
                    arrow = re.match(rf"\s*#?\s*(?:{_ARROWS})\s*(.+)$", rest)
                    if arrow:
                        add(head, arrow.group(1))
                    break
        # named inputs: ``For lst = [1, 2] the output should be 3``; ``Input: ... Output: ...``
        for form in (_FOR_OUTPUT, _INPUT_OUTPUT):
            for m in form.finditer(doc.text):
                call = _call_from_assignments(doc, m.group("args"))
                if call is not None:
                    add(call, m.group("want"))
    return found


def assemble_program(prompt_src: str, generated: str) -> str:
    """The program to run: the answer's code, with the prompt's imports and helpers it lacks."""
    wanted = DEF_LINE.findall(prompt_src)
    return program_for(prompt_src, generated, wanted[-1]) if wanted else prompt_src + generated


_CHECK = """

def __backplan_same(got, want):
    import math
    if isinstance(want, float) or isinstance(got, float):
        try:
            return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        except TypeError:
            return False
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(
            __backplan_same(g, w) for g, w in zip(got, want)
        )
    return got == want


__backplan_failed = []
for __backplan_src, __backplan_want in {examples}:
    try:
        __backplan_got = eval(__backplan_src)
    except Exception as exc:
        __backplan_failed.append(__backplan_src + " raised " + type(exc).__name__)
        continue
    if not __backplan_same(__backplan_got, eval(__backplan_want)):
        __backplan_failed.append(__backplan_src + " returned " + repr(__backplan_got)[:80])
if __backplan_failed:
    raise SystemExit(f"{{len(__backplan_failed)}} of {n} examples failed: {{__backplan_failed[0]}}")
"""


def check_program(program: str, examples: Sequence[Example]) -> str:
    pairs = [ex.as_tuple() for ex in examples]
    return program + _CHECK.format(examples=repr(pairs), n=len(pairs))


def failed_examples(detail: str, n_examples: int) -> int:
    """Examples an answer failed, from the check's message; a crash counts as worse than all."""
    m = re.search(r"(\d+) of \d+ (?:examples|tests) failed", detail)
    return int(m.group(1)) if m else n_examples + 1


class DocExamplesVerifier(Verifier):
    """Value 0 for the token that completed a function failing the prompt's examples, else 1.

    ``max_rejections`` bounds the regenerations one generation may cost. The last answer is
    checked too: if an earlier one failed fewer examples, that one is put back in its place
    (:meth:`replacement`; the first, greedy one wins ties), else the last stands. Its failure is
    recorded in ``last_detail``.
    """

    name = "examples"
    preferred_block = 1

    def __init__(
        self,
        piece: Callable[[int], bytes],
        *,
        max_rejections: int = 3,
        limits: Limits | None = None,
    ) -> None:
        super().__init__()
        self.piece = piece
        self.max_rejections = max_rejections
        self.limits = limits or Limits(wall_s=5.0, cpu_s=5)
        self.examples: list[Example] = []
        self.prompt_src = ""
        self.rejections = 0
        self.last_detail = ""
        self._pieces: list[bytes] = []
        self._tokens: list[int] = []
        self._best: tuple[int, list[int]] | None = None  # fewest failures, that block's tokens
        self._replay: list[int] | None = None
        self._settled = False  # out of tries: the answer now in place stands
        self._start: int | None = None  # cached _body_start()
        self._start_checked = 0  # pieces already searched without finding it
        self._scored = 0
        self._checked_at: int | None = None  # token index where the answer was last judged
        self._last_failed: int | None = None  # examples that answer failed (None: not run)
        self._failed_at: dict[int, int] = {}  # closing token index -> restart point
        self._deferred: str | None = None  # definitions that lacked a helper (NameError)
        self.entry: str | None = None  # the function the prompt asks for

    def _load_checks(self, prompt_text: str) -> None:
        """Read what to check from the prompt: its code, its examples, the asked-for function."""
        self.prompt_src = prompt_code(prompt_text)
        self.examples = parse_examples(self.prompt_src)
        wanted = DEF_LINE.findall(self.prompt_src)
        self.entry = wanted[-1] if wanted else None

    @property
    def _has_checks(self) -> bool:
        return bool(self.examples)

    @property
    def _n_checks(self) -> int:
        return len(self.examples)

    def _check_source(self, code: str) -> str:
        """The program that exits 0 when the answer ``code`` passes every check."""
        return check_program(assemble_program(self.prompt_src, code), self.examples)

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        text = b"".join(self.piece(t) for t in prompt_tokens).decode("utf-8", "replace")
        self._load_checks(text)
        self._deferred = None
        self.rejections = 0
        self.last_detail = ""
        self._pieces.clear()
        self._tokens.clear()
        self._best, self._replay, self._settled = None, None, False
        self._start, self._start_checked = None, 0
        self._scored = 0
        self._checked_at = None
        self._last_failed = None
        self._failed_at.clear()
        return 1.0

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        self._pieces.extend(self.piece(t) for t in tokens)
        self._tokens.extend(tokens)

    def _body_start(self) -> int | None:
        """Tokens before the first line of the answer's code block (None: no block open).

        Cached: the sampler asks after every block of tokens, so the text is only searched
        again once a newline arrives, and the answer is kept until a rollback cuts into it.
        """
        if self._start is not None:
            return self._start
        n = len(self._pieces)
        if not any(b"\n" in p for p in self._pieces[self._start_checked :]):
            self._start_checked = n
            return None
        self._start_checked = n
        self._start = self._find_body_start()
        return self._start

    def _find_body_start(self) -> int | None:
        data = b"".join(self._pieces)
        fence = data.find(b"```")
        if fence < 0:
            return None
        nl = data.find(b"\n", fence)
        if nl < 0:
            return None
        end = 0
        for i, p in enumerate(self._pieces):
            end += len(p)
            if end > nl + 1:
                return i
        return len(self._pieces)

    def _judge(self, upto: int) -> float:
        """The token ``upto - 1`` closed a code fence: judge the block's program."""
        text = b"".join(self._pieces[:upto]).decode("utf-8", "replace")
        code, closed = extract_code(text, "fenced")
        if not closed or self._checked_at is not None:
            return 1.0
        return self._verdict(upto, code, final=True)

    def _judge_function(self, upto: int) -> float:
        """The token ``upto - 1`` started a top-level line: judge the function if complete."""
        if self._checked_at is not None or self._settled or not self._has_checks or not self.entry:
            return 1.0
        text = b"".join(self._pieces[:upto]).decode("utf-8", "replace")
        code, closed = extract_code(text, "fenced")
        found = None if closed else parseable_prefix(code)
        if found is None:
            return 1.0
        kept = definitions_only(found[0])
        if kept == self._deferred or not defines(kept, self.entry):
            return 1.0
        return self._verdict(upto, kept, final=False)

    def _verdict(self, upto: int, code: str, *, final: bool) -> float:
        self._checked_at = upto - 1
        if not self._has_checks or self._settled:
            return 1.0
        t0 = time.perf_counter()
        outcome = run_program(self._check_source(code), self.limits)
        self.stats.calls += 1
        self.stats.code_runs += 1
        self.stats.code_cpu_s += outcome.cpu_s
        self.stats.code_wall_s += time.perf_counter() - t0
        self.stats.isolation = outcome.isolation.value
        if outcome.passed:
            self.last_detail = ""
            self._last_failed = 0
            return 1.0
        if not final and "NameError" in outcome.detail:
            # a helper or constant may still come after the function: judge again later
            self._checked_at, self._deferred = None, code
            return 1.0
        self.last_detail = outcome.detail
        start = self._body_start() or 0
        failed = failed_examples(outcome.detail, self._n_checks)
        self._last_failed = failed
        best = self._best
        if best is None or failed < best[0]:
            self._best = (failed, self._tokens[start:upto])
        if self.rejections < self.max_rejections:
            self.rejections += 1
            self._failed_at[upto - 1] = start
            return 0.0
        self._settled = True
        if best is not None and best[0] < failed:
            self._replay = best[1]
            self._failed_at[upto - 1] = start
            return 0.0
        return 1.0

    def _starts_top_level(self, i: int) -> bool:
        piece = self._pieces[i]
        if _NEW_TOP_LEVEL_LINE.search(piece):
            return True
        return i > 0 and self._pieces[i - 1].endswith(b"\n") and piece[:1] not in b"` \t\r\n"

    def values(self) -> np.ndarray:
        n = len(self._pieces)
        if self._scored >= n:
            return np.empty(0)
        t0 = time.perf_counter()
        out = [
            self._judge(i + 1)
            if b"`" in self._pieces[i]
            else self._judge_function(i + 1)
            if self._starts_top_level(i)
            else 1.0
            for i in range(self._scored, n)
        ]
        self._scored = n
        self.stats.seconds += time.perf_counter() - t0
        return np.asarray(out)

    def rollback(self, n: int) -> None:
        if n <= 0:
            return
        del self._pieces[len(self._pieces) - n :]
        del self._tokens[len(self._tokens) - n :]
        keep = len(self._pieces)
        self._scored = min(self._scored, keep)
        self._start_checked = min(self._start_checked, keep)
        if self._start is not None and self._start > keep:
            self._start = None
        if self._checked_at is not None and self._checked_at >= keep:
            self._checked_at, self._last_failed = None, None
        for pos in [p for p in self._failed_at if p >= keep]:
            del self._failed_at[pos]
        self._deferred = None

    def restart_point(self, flagged: int) -> int | None:
        return self._failed_at.get(flagged)

    def replacement(self, flagged: int) -> Sequence[int] | None:
        if flagged not in self._failed_at or self._replay is None:
            return None
        replay, self._replay = self._replay, None
        return replay

    def at_length(self) -> tuple[int, Sequence[int]] | None:
        if not self._has_checks or self._settled or self._best is None:
            return None
        start = self._body_start()
        if self._checked_at is not None or start is None:
            return None  # this answer was judged (and passed), or no block is open
        self._settled = True
        return start, list(self._best[1])

    def answer_failures(self) -> int | None:
        """Examples the answer in place failed; all of them and one more when its function was
        never judged (not finished, or judged after the tries were spent)."""
        if not self._has_checks:
            return None
        return self._n_checks + 1 if self._last_failed is None else self._last_failed

    def hold_from(self) -> int | None:
        if not self._has_checks or self._settled:
            return None
        if self._checked_at is not None and self._checked_at not in self._failed_at:
            return None  # this answer's block passed: nothing left to take back
        return self._body_start()
