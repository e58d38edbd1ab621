"""``backplan dashboard``: the Streamlit app over the planner and the profiler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

import click

from runtime.errors import UsageError


def app_path() -> Path:
    import dashboards

    return Path(dashboards.__file__).resolve().parent / "app.py"


def streamlit_command(port: int, headless: bool) -> list[str]:
    """``python -m streamlit run dashboards/app.py`` on 127.0.0.1, no telemetry."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.serverAddress",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


def _die_with_parent() -> None:
    """In the Streamlit child: the kernel kills it when this process dies, even by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``), so no Streamlit is left holding the port."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


@click.command()
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve."
)
@click.option("--headless", is_flag=True, help="Serve without opening a browser.")
@click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Your catalogue overlay folder: read on top of ours, where the Catalogue page saves "
    "entries (default ~/.config/backplan/catalog).",
)
@click.option(
    "--profile",
    "profile_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The local profile to show (default out/profile.json).",
)
def dashboard(
    port: int, headless: bool, catalog_dir: Path | None, profile_file: Path | None
) -> None:
    """Serve the dashboard (plan, profiles, catalogue, compare) on http://127.0.0.1:PORT."""
    from dashboards.config import CATALOG_ENV, PROFILE_ENV
    from runtime.server.settings import check_port

    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise UsageError("streamlit is not installed; run scripts/install") from None
    check_port("127.0.0.1", port)  # before the banner: streamlit's own message is not one line
    env = dict(os.environ)
    if catalog_dir is not None:
        env[CATALOG_ENV] = str(catalog_dir.expanduser().resolve())
    if profile_file is not None:
        env[PROFILE_ENV] = str(profile_file.expanduser().resolve())
    click.echo(f"backplan dashboard on http://127.0.0.1:{port} (Ctrl-C stops it)", err=True)
    proc = subprocess.Popen(streamlit_command(port, headless), env=env, preexec_fn=_die_with_parent)

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # the terminal sent SIGINT to both; wait for streamlit
                forward(signal.SIGINT, None)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise click.exceptions.Exit(code if code > 0 else 1)
