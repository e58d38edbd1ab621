"""What a sandboxed check may use, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Isolation(str, Enum):
    """How generated code was kept away from everything else.

    ``jail``: a bubblewrap namespace jail with a seccomp filter (:mod:`runtime.sandbox.jail`):
    no network, no view of the caller's files, processes or environment, no new processes.
    ``process``: a separate ``python -I`` process under rlimits only: it contains accidents
    (loops, memory blow-ups), not hostile code.
    """

    JAIL = "jail"
    PROCESS = "process"


@dataclass(frozen=True)
class Limits:
    """Per check: wall-clock deadline (the whole process group is killed at it), CPU seconds,
    address space, the largest file it may write, and (jail) the size of its private folders."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 10 << 20
    processes: int = 64
    tmpfs_bytes: int = 64 << 20


@dataclass(frozen=True)
class Outcome:
    """``status``: passed | failed | timeout | error. ``cpu_s``: CPU seconds the check used
    (user + system, its whole process tree where it was reaped), for the planner's host cost."""

    passed: bool
    status: str
    detail: str
    cpu_s: float = 0.0
    isolation: Isolation = Isolation.PROCESS
