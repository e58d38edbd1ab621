"""Run generated code away from backplan: never inside its own process.

:func:`run_program` runs one check (a program that exits 0 when it passes) under an
:class:`Isolation`: the bubblewrap jail (:mod:`runtime.sandbox.jail`) wherever it works, which is
the default; where it does not (no ``bwrap``, no namespaces), a limited ``python -I`` process,
with a warning, for the callers that allow it (``eval``, ``generate``). ``backplan serve
--allow-code-execution`` requires the jail (:func:`require_jail`). Every :class:`Outcome` says
which isolation it ran under and the CPU seconds it used.
"""

from __future__ import annotations

import logging

from runtime.errors import SandboxUnavailableError
from runtime.sandbox.jail import jail_problem
from runtime.sandbox.limits import Isolation, Limits, Outcome
from runtime.sandbox.run import run_in_jail, run_in_process

log = logging.getLogger(__name__)
_warned = False


def default_isolation() -> Isolation:
    """The jail where it works here, else the limited process (logged once)."""
    global _warned
    problem = jail_problem()
    if problem is None:
        return Isolation.JAIL
    if not _warned:
        _warned = True
        log.warning(
            "generated code runs in a limited process, not the jail: %s. That contains "
            "accidents, not hostile code",
            problem,
        )
    return Isolation.PROCESS


def require_jail(what: str) -> None:
    """Refuse ``what`` in one line when the jail cannot run here."""
    problem = jail_problem()
    if problem is not None:
        raise SandboxUnavailableError(f"{what} needs the bubblewrap jail: {problem}")


def run_program(
    source: str, limits: Limits | None = None, *, isolation: Isolation | None = None
) -> Outcome:
    """Run ``source``; passed when it exits 0 within the limits."""
    limits = limits or Limits()
    isolation = isolation or default_isolation()
    if isolation is Isolation.JAIL:
        return run_in_jail(source, limits)
    return run_in_process(source, limits)


__all__ = [
    "Isolation",
    "Limits",
    "Outcome",
    "default_isolation",
    "jail_problem",
    "require_jail",
    "run_program",
]
