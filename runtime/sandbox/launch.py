"""Start one check's process, kill its whole group at the deadline, read what it used.

Shared by both isolations. The child's stdout and stderr go to an unlinked temporary file that
the file-size limit bounds (a check that prints gigabytes cannot fill this process's memory);
only its tail is read back. The deadline kills the process group the child leads (it is started
in a new session), and the child is reaped with ``wait4`` so its CPU time (its own and its
reaped descendants') is known. Waiting is done without reaping first (``waitid`` with
``WNOWAIT``), so the deadline can never signal a process id the kernel has handed to someone else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass

_TAIL_BYTES = 4096


@dataclass(frozen=True)
class Finished:
    returncode: int
    timed_out: bool
    cpu_s: float
    output_tail: str


def launch(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: str,
    wall_s: float,
    pass_fds: Sequence[int] = (),
) -> Finished:
    """Run ``argv`` to completion or to ``wall_s``; the whole group dies at the deadline."""
    with tempfile.TemporaryFile(prefix="backplan-check-") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
            close_fds=True,
        )
        lock = threading.Lock()
        state = {"exited": False, "killed": False}

        def kill_group() -> None:
            with lock:
                if state["exited"]:
                    return
                state["killed"] = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(wall_s, kill_group)
        timer.daemon = True
        timer.start()
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
            with lock:
                state["exited"] = True
            # the leader is gone; anything it left in its group goes with it, before the reap
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0, os.SEEK_END)
        size = out.tell()
        out.seek(max(0, size - _TAIL_BYTES))
        tail = out.read().decode("utf-8", "replace")
    return Finished(
        returncode=proc.returncode,
        timed_out=state["killed"],
        cpu_s=usage.ru_utime + usage.ru_stime,
        output_tail=tail,
    )
