"""Hostile generated code against the real bubblewrap jail: each case is contained.

These run real ``bwrap`` (Debian's bubblewrap, which ``scripts/install test`` installs) with the
real seccomp filter; nothing is faked. A case that escaped would show on this host: a
connection accepted, a file written, a secret read, this process killed, a process left over.
"""

from __future__ import annotations

import os
import socket
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from runtime.sandbox import Isolation, Limits, jail_problem, run_program

pytestmark = pytest.mark.jail


@pytest.fixture(scope="module", autouse=True)
def _jail_works() -> None:
    problem = jail_problem()
    assert problem is None, f"the jail cannot run here: {problem}"


def jailed(source: str, limits: Limits | None = None) -> tuple[str, str]:
    outcome = run_program(textwrap.dedent(source), limits, isolation=Isolation.JAIL)
    assert outcome.isolation is Isolation.JAIL
    return outcome.status, outcome.detail


def test_a_benign_check_passes_and_a_failing_one_fails() -> None:
    assert jailed("import math\nassert math.gcd(12, 18) == 6\n")[0] == "passed"
    assert jailed("assert sorted([3, 1]) == [3, 1]\n") == ("failed", "AssertionError")


def test_no_connection_to_a_port_on_loopback() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        status, detail = jailed(
            f"""
            import socket
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
            """
        )
        assert status == "failed" and "Connection refused" in detail
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


def test_no_write_outside_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    home = Path.home() / f"backplan-escape-{uuid.uuid4().hex}"
    status, detail = jailed(
        f"""
        import os
        wrote = []
        for path in ({str(target)!r}, {str(home)!r}, "/usr/escaped", "/escaped"):
            try:
                with open(path, "w") as fh:
                    fh.write("x")
                wrote.append(path)
            except OSError:
                pass
        open("/sandbox/mine.txt", "w").write("its own folder is writable")
        raise SystemExit("wrote " + repr(wrote))
        """
    )
    assert (status, detail) == ("failed", "wrote []")
    assert not target.exists() and not home.exists()
    assert not Path("/usr/escaped").exists() and not Path("/escaped").exists()


def test_no_view_of_the_callers_environment_or_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("BACKPLAN_TEST_API_KEY", secret)
    (tmp_path / "keys.txt").write_text(secret)
    status, detail = jailed(
        f"""
        import glob, os
        found = []
        if {secret!r} in repr(os.environ):
            found.append("environ")
        for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
            try:
                if {secret!r}.encode() in open(path, "rb").read():
                    found.append(path)
            except OSError:
                pass
        for path in ({str(tmp_path / "keys.txt")!r}, os.path.expanduser("~/.bash_history")):
            try:
                if {secret!r} in open(path).read():
                    found.append(path)
            except OSError:
                pass
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        raise SystemExit(f"found {{found}} pids {{pids}}")
        """
    )
    assert status == "failed"
    assert detail == "found [] pids ['1']", detail  # it sees only itself


def test_a_fork_bomb_makes_no_process() -> None:
    status, detail = jailed(
        """
        import os
        while True:
            os.fork()
        """
    )
    assert status == "failed" and "Operation not permitted" in detail
    assert jailed("assert 1 + 1 == 2\n")[0] == "passed"


def test_memory_is_capped_for_the_whole_check() -> None:
    assert jailed("x = bytearray(20 << 30)\n") == ("failed", "MemoryError")
    status, detail = jailed(  # threads share the one address space the limit caps
        """
        import threading
        blocks, errors = [], []
        def grab():
            try:
                blocks.append(bytearray(700 << 20))
            except MemoryError:
                errors.append(1)
        threads = [threading.Thread(target=grab) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        raise SystemExit(f"{len(blocks)} blocks held, {len(errors)} refused")
        """
    )
    assert status == "failed"
    held = int(detail.split()[0])
    assert held * 700 < 1024, detail  # under the 1 GiB cap in all


def test_sleeping_forever_is_cut_at_the_deadline() -> None:
    status, _ = jailed("import time\ntime.sleep(10**6)\n", Limits(wall_s=2.0, cpu_s=2))
    assert status == "timeout"


def test_spinning_is_cut_at_the_cpu_limit() -> None:
    status, detail = jailed("while True:\n    pass\n", Limits(wall_s=20.0, cpu_s=1))
    assert status == "failed" and "CPU limit" in detail


def test_it_cannot_kill_its_parent() -> None:
    status, detail = jailed(
        f"""
        import os, signal
        for pid in (os.getppid(), {os.getpid()}, {os.getppid()}):
            try:
                if pid > 0:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        raise SystemExit("tried")
        """
    )
    assert (status, detail) == ("failed", "tried")  # and this test process is still here


def _processes_with(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(pid)
    return found


def _comm_alive(name: str) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                return True
        except OSError:
            continue
    return False


def test_it_leaves_no_process_behind() -> None:
    marker = f"backplan-leftover-{uuid.uuid4().hex}"
    name = f"bp{uuid.uuid4().hex[:12]}"  # the check names itself, so this host can look for it
    status, _ = jailed(
        f"""
        import ctypes, os, subprocess, threading, time
        ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)  # PR_SET_NAME
        for start in (
            lambda: subprocess.Popen(["/bin/sh", "-c", "sleep 300 # {marker}"]),
            lambda: os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "sleep 300 # {marker}"], {{}}),
            lambda: os.system("sleep 300 # {marker} &"),
        ):
            try:
                start()
            except OSError:
                pass
        threading.Thread(target=time.sleep, args=(300,)).start()  # keeps it alive: deadline
        """,
        Limits(wall_s=2.0, cpu_s=2),
    )
    assert status == "timeout"
    assert _processes_with(marker) == []
    for _ in range(50):  # the check itself dies with bwrap (its parent-death signal)
        if not _comm_alive(name):
            break
        time.sleep(0.1)
    assert not _comm_alive(name), f"the timed-out check {name} still runs"
