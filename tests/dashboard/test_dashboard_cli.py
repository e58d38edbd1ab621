"""``backplan dashboard``: the streamlit command line and the options passed through."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from backplan.commands import dashboard as dashboard_cli
from dashboards.config import CATALOG_ENV, PROFILE_ENV


def test_streamlit_command_serves_the_app_on_loopback() -> None:
    cmd = dashboard_cli.streamlit_command(8600, headless=True)
    assert cmd[1:4] == ["-m", "streamlit", "run"]
    assert Path(cmd[4]).is_file() and Path(cmd[4]).name == "app.py"
    opts = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert opts["--server.address"] == "127.0.0.1"
    assert opts["--server.port"] == "8600"
    assert opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"
    windowed = dashboard_cli.streamlit_command(8600, headless=False)
    assert windowed[windowed.index("--server.headless") + 1] == "false"


def test_options_reach_the_app_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    class FakeProc:
        def __init__(self, cmd: list[str], env: dict[str, str], **kw: Any) -> None:
            seen["cmd"], seen["env"], seen["kw"] = cmd, env, kw

        def wait(self, timeout: float | None = None) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeProc)
    result = CliRunner().invoke(
        dashboard_cli.dashboard,
        ["--headless", "--port", "8611", "--catalog", "cat", "--profile", "p.json"],
    )
    assert result.exit_code == 0, result.output
    assert seen["env"][CATALOG_ENV] == str(Path("cat").resolve())
    assert callable(seen["kw"]["preexec_fn"])  # Streamlit dies with this process (SIGKILL too)
    assert seen["env"][PROFILE_ENV] == str(Path("p.json").resolve())
    assert "8611" in seen["cmd"] and "true" in seen["cmd"]


def test_dashboard_is_registered() -> None:
    from backplan.cli import _register, cli

    _register()
    assert "dashboard" in cli.commands


@pytest.mark.integration
def test_sigkill_of_the_command_takes_streamlit_with_it(tmp_path: Path) -> None:
    """`backplan dashboard` killed by SIGKILL (no handler runs) leaves no Streamlit holding
    the port: the child has the kernel's parent-death signal."""
    import os
    import signal
    import socket
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    proc = subprocess.Popen(
        [sys.executable, "-m", "backplan", "dashboard", "--headless", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not listening():
            assert proc.poll() is None and time.monotonic() < deadline, "streamlit never listened"
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 30
        while listening() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not listening(), "Streamlit outlived the killed command"
    finally:
        if proc.poll() is None:
            proc.kill()
