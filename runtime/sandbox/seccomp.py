"""The system calls a jailed check may not make, as a seccomp filter for bubblewrap's --seccomp.

Built with libseccomp (Debian's ``libseccomp2``) through its ctypes binding ``pyseccomp``, then
exported as BPF once per process. The filter allows everything but:

- new processes: ``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD`` (threads stay
  possible, and share the address space the memory limit caps), ``clone3`` (answered ENOSYS
  so the C library falls back to ``clone``, which the filter can inspect). Without processes
  there is no fork bomb, no process left behind, and the memory limit binds the whole check;
  ``RLIMIT_NPROC`` cannot do that for root and counts per user.
- what a check never needs and an escape would: ``ptrace``, ``process_vm_readv/writev``,
  mounting and namespaces, ``bpf``, ``perf_event_open``, ``userfaultfd``, the kernel keyring,
  ``io_uring``, module loading, ``kexec``, ``reboot``, ``swapon``, ``personality``.
"""

from __future__ import annotations

import errno
import functools
import tempfile

CLONE_THREAD = 0x00010000

DENIED = (
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "personality",
    "open_by_handle_at",
)


class SeccompUnavailable(RuntimeError):
    """libseccomp or its binding is missing; the message says what to install."""


@functools.cache
def filter_bpf() -> bytes:
    """The compiled filter (cached: it is the same for every check)."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as exc:  # OSError: the binding found no libseccomp.so.2
        raise SeccompUnavailable(
            f"libseccomp is not usable ({exc}); install Debian's libseccomp2 and "
            "`pip install pyseccomp` (scripts/install does both)"
        ) from None
    filt = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED:
        filt.add_rule(sc.ERRNO(errno.EPERM), name)
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    filt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    with tempfile.TemporaryFile() as fh:
        filt.export_bpf(fh)
        fh.seek(0)
        return fh.read()
