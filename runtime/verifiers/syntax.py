"""Programmatic verifier: is the generated Python still a valid prefix of a program?

Only complete lines are judged (a line still being written cannot be). ``codeop`` tells a
complete program, an incomplete one that can still be finished, and a syntax error apart.
In ``fenced`` mode (chat answers) only the text inside a Markdown code fence is code.
"""

from __future__ import annotations

import codeop
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from runtime.verifiers.base import Verifier

_FENCE = "```"


#: Longer code is not judged (accepted as it stands): parsing it on every line would cost more
#: than the generation, and no answer a person reads is this long.
MAX_JUDGED_CHARS = 100_000


def python_prefix_ok(source: str) -> bool | None:
    """True when ``source`` compiles or is an incomplete program that could still compile;
    None when it cannot be judged (too long, or beyond the parser)."""
    if not source.strip():
        return True
    if len(source) > MAX_JUDGED_CHARS:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            codeop.compile_command(source, "<generated>", "exec")
        except SyntaxError:
            return False
        except (MemoryError, RecursionError):
            return None
        except (ValueError, OverflowError):
            return False
    return True


def extract_code(text: str, mode: Literal["code", "fenced"]) -> tuple[str, bool]:
    """The code to judge in ``text`` and whether it is closed (a fence ended).

    ``code``: all of it. ``fenced``: what follows the first opening fence's line, up to the
    closing fence if one came.
    """
    if mode == "code":
        return text, False
    start = text.find(_FENCE)
    if start < 0:
        return "", False
    nl = text.find("\n", start)
    if nl < 0:
        return "", False
    body = text[nl + 1 :]
    end = body.find(_FENCE)
    if end >= 0:
        return body[:end], True
    return body, False


class PythonSyntaxVerifier(Verifier):
    """Value 1 while the code parses as a prefix of valid Python, 0 from the first bad line."""

    name = "syntax"
    preferred_block = 1

    def __init__(
        self,
        piece: Callable[[int], bytes],
        *,
        prefix_code: str = "",
        mode: Literal["code", "fenced"] = "code",
    ) -> None:
        super().__init__()
        self.piece = piece
        self.prefix_code = prefix_code
        self.mode = mode
        self._pieces: list[bytes] = []
        self._value: list[float] = []  # value after each token
        self._scored = 0

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        self._pieces.clear()
        self._value.clear()
        self._scored = 0
        return 1.0

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        self._pieces.extend(self.piece(t) for t in tokens)

    def _judge(self, upto: int) -> float:
        text = b"".join(self._pieces[:upto]).decode("utf-8", "replace")
        code, closed = extract_code(text, self.mode)
        if not closed:
            cut = code.rfind("\n")
            code = code[: cut + 1] if cut >= 0 else ""
        source = self.prefix_code + code if self.mode == "code" else code
        ok = python_prefix_ok(source)
        if ok is None:
            return 1.0  # cannot judge: never a rejection
        if ok and closed:
            # a closed fence must hold a whole program, not just a prefix of one
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    compile(source, "<generated>", "exec")
                except SyntaxError:
                    ok = False
                except (MemoryError, RecursionError):
                    return 1.0
                except (ValueError, OverflowError):
                    ok = False
        return 1.0 if ok else 0.0

    def values(self) -> np.ndarray:
        n = len(self._pieces)
        if self._scored >= n:
            return np.empty(0)
        t0 = time.perf_counter()
        prev = self._value[-1] if self._value else 1.0
        out = []
        for i in range(self._scored, n):
            if prev > 0.0 and (b"\n" in self._pieces[i] or b"`" in self._pieces[i]):
                prev = self._judge(i + 1)
            out.append(prev)
        self._value.extend(out)
        self._scored = n
        self.stats.calls += 1
        self.stats.seconds += time.perf_counter() - t0
        return np.asarray(out)

    def rollback(self, n: int) -> None:
        if n <= 0:
            return
        del self._pieces[len(self._pieces) - n :]
        keep = len(self._pieces)
        del self._value[keep:]
        self._scored = min(self._scored, keep)
