"""Run generated code in a separate, limited process: never inside backplan's own process.

Each check is a fresh ``python -I`` process in an empty temporary folder, with a wall-clock
timeout, CPU-time, memory, file-size and process-count limits (``resource`` rlimits) and a
minimal environment. This contains accidents (infinite loops, memory blow-ups, stray files);
it is not a security boundary against hostile code (there is no network or filesystem
namespace): run untrusted models' code in a VM or container.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 10 << 20
    processes: int = 64


@dataclass(frozen=True)
class Outcome:
    passed: bool
    status: str  # passed | failed | timeout | error
    detail: str


_RUNNER = """\
import resource, runpy, sys
cpu, mem, fsize, nproc = (int(x) for x in sys.argv[2:6])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def run_program(source: str, limits: Limits | None = None) -> Outcome:
    """Run ``source`` with ``python -I``; passed when it exits 0 within the limits."""
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="backplan-sandbox-") as work:
        path = os.path.join(work, "check.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(source)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": work,
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-I",
                    "-c",
                    _RUNNER,
                    path,
                    str(limits.cpu_s),
                    str(limits.memory_bytes),
                    str(limits.file_bytes),
                    str(limits.processes),
                ],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=limits.wall_s,
                start_new_session=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(False, "timeout", f"no result within {limits.wall_s:g} s")
        if proc.returncode == 0:
            return Outcome(True, "passed", "")
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return Outcome(False, "failed", tail[-1][:300] if tail else f"exit {proc.returncode}")
