"""Reading the files users hand to backplan: one clear error, never a traceback.

A path that is missing, a folder, unreadable or not UTF-8 text (a binary file passed by
mistake) becomes a :class:`~runtime.errors.UsageError` that names the file and says what
to do; a YAML syntax error becomes one line with its position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.errors import UsageError


def read_text(path: str | Path, *, what: str, fix: str) -> str:
    """The UTF-8 text of ``path``; ``what`` names the file's role, ``fix`` the way out."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist; {fix}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path} is a folder, not a file; {fix}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text (a binary file?); {fix}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path} ({exc.strerror}); {fix}") from None


def yaml_problem(exc: Exception) -> str:
    """A YAML error in one line: what is wrong and where (``line 3, column 7``)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if not problem:  # e.g. a reader error (a control character): its text says it all
        return (str(exc).strip().splitlines() or ["invalid YAML"])[0]
    mark: Any = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"
