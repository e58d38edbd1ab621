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
