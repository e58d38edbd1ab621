"""Atomic file writes: a reader sees the old file or the new one, never half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from runtime.errors import UsageError


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # some folder on the way is a file
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise UsageError(
            f"cannot write {path}: {blocker} is a file, not a folder; pass another path"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot create the folder {path.parent} ({exc.strerror}); pass another path or "
            "fix its permissions"
        ) from None


def prepare_output(path: str | Path) -> None:
    """Check, before a long job, that ``path`` can be written: its folder exists or is made,
    is writable, and ``path`` is not a folder. A :class:`UsageError` says which and why."""
    path = Path(path)
    _make_parent(path)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; pass a file name")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"cannot write in {path.parent} (permission denied); pass another path")


@contextmanager
def atomic_write(path: str | Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Write to a temp file beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    _make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise UsageError(
            f"cannot write {path} ({exc.strerror}); pass another path or fix its permissions"
        ) from None
    try:
        fh: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_write(path) as fh:
        fh.write(text)
    return Path(path)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def append_line(path: str | Path, line: str) -> None:
    """Append one line (``line`` plus a newline) whole, or nothing: a write cut short (a full
    disk) is truncated away, so a log of JSON lines never holds half a record."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def drop_torn_tail(path: str | Path) -> bool:
    """Cut a last line that has no newline (a write an earlier version, or a crash, left
    half done); True when one was cut. Resuming then appends after whole lines only."""
    path = Path(path)
    with path.open("rb+") as fh:
        data = fh.read()
        if not data or data.endswith(b"\n"):
            return False
        fh.truncate(data.rfind(b"\n") + 1)
    return True
