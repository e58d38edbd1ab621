"""The bubblewrap jail generated code runs in (``bwrap``, Debian's ``bubblewrap``).

Each check gets fresh namespaces of every kind bwrap can make (``--unshare-all``: user, PID,
network, IPC, UTS, cgroup), so it has no network but its own empty loopback, sees only its own
processes in ``/proc``, and cannot signal anything outside. Its filesystem is an empty root with
read-only binds of the interpreter's system paths only (``/usr``, the ``/bin`` and ``/lib*``
links or folders, the Python installation), a private ``/dev``, and two small private tmpfs
folders, ``/tmp`` and the working folder ``/sandbox``; none of the caller's files, home,
environment (``--clearenv``; bwrap itself starts with an empty environment too) or API keys are
there. It runs as ``nobody`` with no capabilities, in a new session (no terminal injection),
may not create user namespaces, and dies with its parent (``--die-with-parent``). The check is
process 1 of its PID namespace (``--as-pid-1``: it may not make others, so it needs no reaper),
which lets its CPU time reach the caller through ``wait4``. The seccomp
filter (:mod:`runtime.sandbox.seccomp`) forbids new processes; rlimits inside cap CPU time,
address space, file size, open files and core dumps; the caller's deadline kills it.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys

from runtime.sandbox.limits import Limits
from runtime.sandbox.prelude import PRELUDE

WORKDIR = "/sandbox"
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class JailUnavailable(RuntimeError):
    """bwrap is missing or cannot make namespaces here; the message says what to do."""


def interpreter() -> str:
    """The real Python binary (a venv's ``python`` is a link to it; the jail binds its home)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


@functools.cache
def _mounts() -> tuple[str, ...]:
    """The binds of the interpreter's system paths (the same for every check: computed once)."""
    args: list[str] = []
    covered: list[str] = []
    for path in _SYSTEM_PATHS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
            covered.append(path)
    python_home = os.path.realpath(sys.base_prefix)
    exe_dir = os.path.dirname(interpreter())
    for extra in (python_home, exe_dir):
        if not any(extra == c or extra.startswith(c + "/") for c in covered):
            args += ["--ro-bind", extra, extra]
            covered.append(extra)
    return tuple(args)


def bwrap_path() -> str | None:
    """``$BACKPLAN_BWRAP`` if set (a path; empty: none), else ``bwrap`` on the PATH."""
    chosen = os.environ.get("BACKPLAN_BWRAP")
    if chosen is not None:
        return chosen if chosen and os.access(chosen, os.X_OK) else None
    return shutil.which("bwrap", path=os.environ.get("PATH", "") + ":/usr/bin:/bin")


def jail_argv(bwrap: str, seccomp_fd: int, code_fd: int, limits: Limits) -> list[str]:
    """bwrap's command line for one check; the program comes in on ``code_fd``."""
    size = str(limits.tmpfs_bytes)
    return [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--as-pid-1",
        "--new-session",
        "--clearenv",
        "--cap-drop",
        "ALL",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--hostname",
        "sandbox",
        *_mounts(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        size,
        "--tmpfs",
        "/tmp",
        "--size",
        size,
        "--tmpfs",
        WORKDIR,
        "--ro-bind-data",
        str(code_fd),
        f"{WORKDIR}/check.py",
        "--remount-ro",
        "/",
        "--chdir",
        WORKDIR,
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        WORKDIR,
        "--setenv",
        "PYTHONHASHSEED",
        "0",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        "--setenv",
        "OPENBLAS_NUM_THREADS",
        "1",
        "--seccomp",
        str(seccomp_fd),
        interpreter(),
        "-I",
        "-c",
        PRELUDE,
        f"{WORKDIR}/check.py",
        str(limits.cpu_s),
        str(limits.memory_bytes),
        str(limits.file_bytes),
        str(limits.processes),
    ]


@functools.cache
def jail_problem() -> str | None:
    """Why the jail cannot run here (one line saying what to do), or None when it can.

    Probed once per process by running an empty check in a real jail: bwrap may be installed
    and still be refused namespaces (a container without user namespaces, an AppArmor rule).
    """
    from runtime.sandbox.run import run_in_jail
    from runtime.sandbox.seccomp import SeccompUnavailable, filter_bpf

    if bwrap_path() is None:
        return (
            "bubblewrap (bwrap) is not installed; install it (Debian, as root: apt-get "
            "install bubblewrap libseccomp2; scripts/install does it)"
        )
    try:
        filter_bpf()
    except SeccompUnavailable as exc:
        return str(exc)
    try:
        outcome = run_in_jail("pass\n", Limits(wall_s=20.0, cpu_s=10))
    except OSError as exc:
        return f"bwrap could not start ({exc}); check its installation"
    if not outcome.passed:
        why = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else "no output"
        return (
            f"bwrap is installed but cannot make its namespaces here ({why}); allow "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or "
            "run where they are allowed"
        )
    return None
