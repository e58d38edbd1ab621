"""Reading the files users hand to backplan: one clear error, never a traceback.

A path that is missing, a folder, not a regular file (``/dev/zero``, a pipe), larger than
:data:`MAX_INPUT_BYTES`, unreadable or not UTF-8 text (a binary file passed by mistake)
becomes a :class:`~runtime.errors.UsageError` that names the file and says what to do,
before anything is read into memory; a YAML syntax error becomes one line with its position.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from runtime.errors import UsageError

#: The largest file backplan reads whole (workloads, results, runs lists, rollouts, profiles,
#: catalogue overlays): 64 MiB. A results file of 164 problems is under 1 MiB.
MAX_INPUT_BYTES = 64 << 20


def check_input_file(
    path: str | Path, *, what: str, fix: str, max_bytes: int = MAX_INPUT_BYTES
) -> None:
    """Refuse, in one line, what :func:`read_text` would not read: missing, a folder, not a
    regular file, or over ``max_bytes``."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist; {fix}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path} ({exc.strerror}); {fix}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{what} {path} is a folder, not a file; {fix}")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{what} {path} is not a regular file (a device or a pipe?); {fix}")
    if info.st_size > max_bytes:
        raise UsageError(
            f"{what} {path} is {info.st_size / 2**20:.0f} MiB, over the {max_bytes >> 20} MiB "
            f"backplan reads; {fix}"
        )


def read_text(path: str | Path, *, what: str, fix: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of ``path``; ``what`` names the file's role, ``fix`` the way out."""
    path = Path(path)
    check_input_file(path, what=what, fix=fix, max_bytes=max_bytes)
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # it may have grown since the check
        if len(data) > max_bytes:
            raise UsageError(
                f"{what} {path} is over the {max_bytes >> 20} MiB backplan reads; {fix}"
            )
        return data.decode("utf-8")
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
