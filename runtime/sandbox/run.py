"""Run one check under an isolation: the jail where it works, else (where allowed) a process."""

from __future__ import annotations

import os
import signal
import sys
import tempfile

from runtime.sandbox.launch import Finished, launch
from runtime.sandbox.limits import Isolation, Limits, Outcome
from runtime.sandbox.prelude import PRELUDE

#: The environment of a checked process (and of bwrap itself): nothing of the caller's.
_CHILD_ENV = {
    "PATH": "/usr/bin:/bin",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


_SIGNALS = {s.value: s.name for s in signal.Signals}


def _outcome(done: Finished, limits: Limits, isolation: Isolation) -> Outcome:
    if done.timed_out:
        return Outcome(
            False, "timeout", f"no result within {limits.wall_s:g} s", done.cpu_s, isolation
        )
    if done.returncode == 0:
        return Outcome(True, "passed", "", done.cpu_s, isolation)
    lines = done.output_tail.strip().splitlines()
    signum = -done.returncode if done.returncode < 0 else done.returncode - 128
    if done.cpu_s >= limits.cpu_s - 0.05:
        detail = f"CPU limit of {limits.cpu_s} s reached"
    elif lines:
        detail = lines[-1][:300]
    elif signum in _SIGNALS:  # bwrap reports a signal as 128 + its number
        detail = f"killed by {_SIGNALS[signum]}"
    else:
        detail = f"exit {done.returncode}"
    return Outcome(False, "failed", detail, done.cpu_s, isolation)


def run_in_jail(source: str, limits: Limits) -> Outcome:
    """``source`` in the bubblewrap jail (:mod:`runtime.sandbox.jail`)."""
    from runtime.sandbox.jail import bwrap_path, jail_argv
    from runtime.sandbox.seccomp import filter_bpf

    bwrap = bwrap_path()
    if bwrap is None:
        raise OSError("bwrap is not installed")
    bpf = filter_bpf()
    code_fd = os.memfd_create("backplan-check", 0)
    seccomp_fd = os.memfd_create("backplan-seccomp", 0)
    try:
        for fd, data in ((code_fd, source.encode("utf-8")), (seccomp_fd, bpf)):
            os.write(fd, data)
            os.lseek(fd, 0, os.SEEK_SET)
        argv = jail_argv(bwrap, seccomp_fd, code_fd, limits)
        done = launch(
            argv,
            env=dict(_CHILD_ENV),
            cwd="/",
            wall_s=limits.wall_s,
            pass_fds=(code_fd, seccomp_fd),
        )
    finally:
        os.close(code_fd)
        os.close(seccomp_fd)
    return _outcome(done, limits, Isolation.JAIL)


def run_in_process(source: str, limits: Limits) -> Outcome:
    """``source`` in a separate ``python -I`` process under rlimits, in an empty temporary
    folder: contains accidents, not hostile code (see :class:`Isolation`)."""
    with tempfile.TemporaryDirectory(prefix="backplan-sandbox-") as work:
        path = os.path.join(work, "check.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(source)
        argv = [
            sys.executable,
            "-I",
            "-c",
            PRELUDE,
            path,
            str(limits.cpu_s),
            str(limits.memory_bytes),
            str(limits.file_bytes),
            str(limits.processes),
        ]
        done = launch(
            argv,
            env={**_CHILD_ENV, "HOME": work},
            cwd=work,
            wall_s=limits.wall_s,
        )
    return _outcome(done, limits, Isolation.PROCESS)
