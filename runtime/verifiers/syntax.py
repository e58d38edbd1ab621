"""Programmatic verifier: is the generated Python still a valid prefix of a program?

Only complete lines are judged (a line still being written cannot be). ``codeop`` tells a
complete program, an incomplete one that can still be finished, and a syntax error apart.
In ``fenced`` mode (chat answers) only the text inside a Markdown code fence is code. In
``fim`` mode (fill-in-the-middle) the generated middle sits between the code before and after
the gap: each complete line must keep the code before plus the middle a valid prefix; the
middle may only end where before + middle + after parses as a whole file (else the sampler
keeps writing); once the middle writes the first line of the code after the gap, it is complete
before that line (where the file parses); a gap inside a line whose code after it starts on
the next line is complete at the end of that line (where the file parses), as editors complete
it; at the token limit the middle is cut back to the last line end where the file parses.
Nothing of a judged middle streams before it is chosen. A file whose code before the gap does
not parse is not judged at all.
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

#: How generated text relates to code: all of it (a raw completion), the first fenced block
#: (a chat answer), or the middle of a file (fill-in-the-middle).
SyntaxMode = Literal["code", "fenced", "fim"]


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


def compiles(source: str) -> bool | None:
    """True when ``source`` is a whole valid program; None when it cannot be judged."""
    if len(source) > MAX_JUDGED_CHARS:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<generated>", "exec")
        except (MemoryError, RecursionError):
            return None
        except (SyntaxError, ValueError, OverflowError):
            return False
    return True


def extract_code(text: str, mode: SyntaxMode) -> tuple[str, bool]:
    """The code to judge in ``text`` and whether it is closed (a fence ended).

    ``code``, ``fim``: all of it. ``fenced``: what follows the first opening fence's line, up
    to the closing fence if one came.
    """
    if mode != "fenced":
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
        suffix_code: str = "",
        mode: SyntaxMode = "code",
        tokenize: Callable[[str], Sequence[int]] | None = None,
    ) -> None:
        """``tokenize`` (text to tokens, no special tokens): lets a fill-in-the-middle cut
        fall inside a token, by writing its part again."""
        super().__init__()
        self.piece = piece
        self.tokenize = tokenize
        self.prefix_code = prefix_code
        self.suffix_code = suffix_code
        self.mode = mode
        self._judged = True  # False: the code around the gap is not Python; judge nothing
        lines = [ln.rstrip() for ln in suffix_code.splitlines()]
        self._after_head = next((ln for ln in lines if ln.strip()), "")
        # a gap inside a line: the text before it on its line, and the rest of that line
        self._before_line = prefix_code[prefix_code.rfind("\n") + 1 :].encode()
        rest = suffix_code.split("\n", 1)[0].strip()
        self._rest_of_line = rest.encode() if self._before_line.strip() and rest else b""
        self._ends_line = bool(self._before_line.strip()) and suffix_code.startswith("\n")
        # fim: where the middle is complete, once known (tokens kept, tokens written after)
        self._complete: tuple[int, Sequence[int]] | None = None
        self._pieces: list[bytes] = []
        self._value: list[float] = []  # value after each token
        self._scored = 0

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        self._pieces.clear()
        self._value.clear()
        self._scored = 0
        self._complete = None
        if self.mode == "fim":
            before = self.prefix_code[: self.prefix_code.rfind("\n") + 1]
            self._judged = python_prefix_ok(before) is True
        return 1.0

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        self._pieces.extend(self.piece(t) for t in tokens)

    def _judge(self, upto: int) -> float:
        text = b"".join(self._pieces[:upto]).decode("utf-8", "replace")
        code, closed = extract_code(text, self.mode)
        if not closed:
            cut = code.rfind("\n")
            code = code[: cut + 1] if cut >= 0 else ""
        source = code if self.mode == "fenced" else self.prefix_code + code
        ok = python_prefix_ok(source)
        if ok and closed:
            ok = compiles(source)  # a closed fence must hold a whole program, not a prefix
        return 0.0 if ok is False else 1.0  # None (cannot judge) is never a rejection

    # -- fill-in-the-middle ----------------------------------------------------------------
    @property
    def _fim(self) -> bool:
        return self.mode == "fim" and self._judged

    def _file_ok(self, middle: bytes) -> bool:
        """Whether the file parses with ``middle`` in the gap."""
        t0 = time.perf_counter()
        text = middle.decode("utf-8", "replace")
        ok = compiles(self.prefix_code + text + self.suffix_code) is not False
        self.stats.calls += 1
        self.stats.seconds += time.perf_counter() - t0
        return ok

    def end_ok(self) -> bool:
        return not self._fim or self._file_ok(b"".join(self._pieces))

    def _cut(self, offset: int) -> tuple[int, Sequence[int]] | None:
        """The middle cut to its first ``offset`` bytes, as (tokens kept, tokens to write
        after them): a token that holds the cut (a line's end and the next line's indentation,
        ``"\\n    "``) is written again up to the cut, when the verifier can tokenize."""
        at = 0
        for i, piece in enumerate(self._pieces):
            if at == offset:
                return i, ()
            if at + len(piece) > offset:
                if self.tokenize is None:
                    return None
                return i, self.tokenize(piece[: offset - at].decode("utf-8", "replace"))
            at += len(piece)
        return (len(self._pieces), ()) if at == offset else None

    def _rewrites_after(self, upto: int) -> tuple[int, Sequence[int]] | None:
        """Where the middle (up to token ``upto - 1``) starts writing the code after the gap
        again, when it does and the file parses with the middle cut there: at the start of
        the suffix's first line of text (a gap at a line's start), or of the suffix's rest of
        the line (a gap inside a line: ``max(a, b)`` written for the gap of ``max(a, |)``)."""
        text = b"".join(self._pieces[:upto])
        if self._ends_line:  # a gap inside a line whose suffix starts the next one
            nl = text.find(b"\n")
            if nl >= 0 and text[:nl].strip() and self._file_ok(text[:nl]):
                return self._cut(nl)  # the rest of the line, as editors complete it
        end = len(text.rstrip())  # the last line with text, which must be complete
        if not self._after_head or text.find(b"\n", end) < 0:
            return None
        start = text.rfind(b"\n", 0, end) + 1
        line = text[start:end]
        if start == 0:  # the gap's own line: the code before it on that line counts
            line = self._before_line + line
        if self._rest_of_line:
            if start or not line.endswith(self._rest_of_line):
                return None
            start = end - len(self._rest_of_line)
            if start < 0:
                return None
        elif line.decode("utf-8", "replace").rstrip() != self._after_head:
            return None
        return self._cut(start) if self._file_ok(text[:start]) else None

    def blame(self, flagged: int) -> int:
        """In a middle, a bad line is blamed on its first token (often its indentation)."""
        if not self._fim:
            return flagged
        i = flagged
        while i > 0 and b"\n" not in self._pieces[i - 1]:
            i -= 1
        return i

    def complete_at(self) -> tuple[int, Sequence[int]] | None:
        return self._complete if self._fim else None

    def at_length(self) -> tuple[int, Sequence[int]] | None:
        middle = b"".join(self._pieces)
        if not self._fim or self._file_ok(middle):
            return None
        cut = middle.rfind(b"\n")
        while cut >= 0:  # the last line end where the file parses
            if self._file_ok(middle[: cut + 1]):
                return self._cut(cut + 1)
            cut = middle.rfind(b"\n", 0, cut)
        return None

    def hold_from(self) -> int | None:
        return 0 if self._fim else None

    def values(self) -> np.ndarray:
        n = len(self._pieces)
        if self._scored >= n:
            return np.empty(0)
        t0 = time.perf_counter()
        prev = self._value[-1] if self._value else 1.0
        out = []
        marks = (b"`", b"\n") if self.mode == "fenced" else (b"\n",)
        for i in range(self._scored, n):
            if prev > 0.0 and self._judged and any(m in self._pieces[i] for m in marks):
                prev = self._judge(i + 1)
                if prev > 0.0 and self._fim and self._complete is None:
                    self._complete = self._rewrites_after(i + 1)
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
        if self._complete is not None and self._complete[0] + bool(self._complete[1]) > keep:
            self._complete = None
        del self._value[keep:]
        self._scored = min(self._scored, keep)
