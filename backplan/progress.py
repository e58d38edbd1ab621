"""Progress of long CLI jobs: a rich bar on a terminal, plain lines when stderr is a log.

rich draws nothing until the end when stderr is not a terminal, so a job started with
``nohup ... > job.log 2>&1 &`` (evaluations and verifier training take tens of minutes to
hours) would show no progress at all. There the same updates become one line each, at most
one per ``every_s`` seconds, plus the last step and the state a job stopped in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import click


class Update(Protocol):
    """``update(done, total, note)``: steps done, of how many, and a word on the state.

    Any argument left out keeps its last value.
    """

    def __call__(
        self, done: int | None = None, total: int | None = None, note: str | None = None
    ) -> None: ...


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


@dataclass
class _LogLines:
    """The non-terminal reporter: a plain stderr line at most every ``every_s`` seconds.

    The last step always gets its line, and so does the state a job stopped in (see
    :meth:`flush`); the start (step 0) does not, so a job refused at once prints only its error.
    """

    label: str
    every_s: float
    done: int | None = None
    total: int | None = None
    note: str = ""
    counted: bool = False  # False after a note without a count: a phase with no steps
    started_s: float = field(default_factory=time.monotonic)
    last_line_s: float | None = None
    pending: bool = False  # a change not written yet

    def update(
        self, done: int | None = None, total: int | None = None, note: str | None = None
    ) -> None:
        before = (self.done, self.total, self.note, self.counted)
        self.done = self.done if done is None else done
        self.total = self.total if total is None else total
        self.note = self.note if note is None else note
        self.counted = done is not None or (self.counted and note is None)
        if (self.done, self.total, self.note, self.counted) == before:
            return
        if self.counted and not self.done:
            return  # nothing done yet
        self.pending = True
        now = time.monotonic()
        finished = self.counted and self.done == self.total
        if finished or self.last_line_s is None or now - self.last_line_s >= self.every_s:
            self._write(now)

    def flush(self) -> None:
        """Write the last change if the throttle held it back (the job ended or failed)."""
        if self.pending:
            self._write(time.monotonic())

    def _write(self, now: float) -> None:
        parts = [self.label]
        if self.counted:
            parts.append(f"{self.done}/{self.total if self.total is not None else '?'}")
        if self.note:
            parts.append(self.note)
        click.echo(" ".join(parts) + f" [{_clock(now - self.started_s)}]", err=True)
        self.last_line_s = now
        self.pending = False


@contextmanager
def job_progress(label: str, *, transient: bool = False, every_s: float = 10.0) -> Iterator[Update]:
    """Yield ``update(done, total, note)`` for a job called ``label``; see the module doc."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        lines = _LogLines(label, every_s)
        try:
            yield lines.update
        finally:
            lines.flush()
        return

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    ) as bar:
        task = bar.add_task(label, total=None)
        last_note = [""]

        def update(
            done: int | None = None, total: int | None = None, note: str | None = None
        ) -> None:
            last_note[0] = last_note[0] if note is None else note
            description = f"{label}: {last_note[0]}" if last_note[0] else label
            bar.update(task, completed=done, total=total, description=description)

        yield update
