"""The trusted lines that run first in a check's process: limits on, then the check itself.

Passed to ``python -I -c`` with the check file and the limits as arguments. ``RLIMIT_NPROC``
is set too, though it binds neither root nor per check (it counts per user): in the jail the
seccomp filter is what stops new processes.
"""

PRELUDE = """\
import resource, runpy, sys
cpu, mem, fsize, nproc = (int(x) for x in sys.argv[2:6])
for what, value in (
    (resource.RLIMIT_CPU, cpu),
    (resource.RLIMIT_AS, mem),
    (resource.RLIMIT_FSIZE, fsize),
    (resource.RLIMIT_NPROC, nproc),
    (resource.RLIMIT_NOFILE, 256),
    (resource.RLIMIT_CORE, 0),
):
    resource.setrlimit(what, (value, value))
path = sys.argv[1]
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""
