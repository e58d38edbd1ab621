"""End to end: ``backplan dashboard`` served on 127.0.0.1, driven in headless Chromium.

Debian's chromium (``scripts/install test`` installs it) through Playwright's sync API with
``executable_path``: no browser download. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from planner.profiler.schema import Profile

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 120.0
UI_TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _backplan() -> list[str]:
    found = shutil.which("backplan")
    if found:
        return [found]
    return [sys.executable, "-c", "from backplan.cli import main; main()"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture
def dashboard_url(tmp_path: Path, sample_profile: Profile) -> Iterator[str]:
    """A real ``backplan dashboard --headless`` on a free port; stopped afterwards."""
    profile = tmp_path / "profile.json"
    sample_profile.save(profile)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "dashboard.log"
    cmd = [
        *_backplan(),
        "dashboard",
        "--headless",
        "--port",
        str(port),
        "--catalog",
        str(tmp_path / "overlay"),
        "--profile",
        str(profile),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"backplan dashboard exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no /_stcore/health in {START_TIMEOUT_S:.0f} s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium; "
            "run scripts/install test (as root it installs it)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run scripts/install test")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 3200})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def test_plan_in_a_real_browser(dashboard_url: str, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.goto(dashboard_url, wait_until="domcontentloaded")
    make_plan = page.get_by_role("button", name="Make plan")
    make_plan.wait_for()

    page.get_by_role("spinbutton", name="Developers", exact=True).fill("60")
    page.get_by_role("spinbutton", name="Budget USD (0 = none)").fill("60000")
    page.get_by_role("spinbutton", name="Latency: tokens/s per user at peak").fill("30")
    slider = page.get_by_role("slider")
    slider.focus()
    for _ in range(10):  # 0.50 -> 0.60
        slider.press("ArrowRight")
    region = page.get_by_role("combobox", name="Region")  # a search box over the catalogue
    region.click()
    region.fill("Germany")
    page.get_by_role("option", name="Germany", exact=False).first.click()
    make_plan.click()

    success = page.locator('[data-testid="stAlert"]', has_text="Best:")
    success.wait_for()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    charts.first.locator("canvas, svg").first.wait_for()
    expect(charts).to_have_count(4)  # waits: Streamlit adds the charts one after another
    caption = page.get_by_text("candidates evaluated")
    assert "region germany" in caption.inner_text()
    assert "Best:" in success.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("Memory per replica").scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # let the Vega charts finish drawing
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-plan.png"), full_page=True)

    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Shortlist (CSV)").click()
    csv = Path(csv_download.value.path()).read_text()
    assert csv.startswith("rank,hardware,model") and len(csv.splitlines()) == 11
    with page.expect_download() as html_download:
        page.get_by_role("button", name="Report (HTML)").click()
    assert html_download.value.suggested_filename == "backplan-report.html"
    assert Path(html_download.value.path()).read_text().startswith("<!doctype html>")

    page.get_by_role("link", name="Profiles", exact=True).click()
    page.get_by_text("The seed's three figures, as measured").wait_for()
    page.goto(f"{dashboard_url}/profiles", wait_until="domcontentloaded")  # a page's own URL
    page.get_by_text("The seed's three figures, as measured").wait_for()
    for name in ("Plan", "Profiles", "Catalogue", "Compare"):  # our navigation, not pages/
        assert page.get_by_role("link", name=name, exact=True).count() == 1
    page.locator('[data-testid="stVegaLiteChart"]').first.locator("canvas, svg").first.wait_for()
    page.wait_for_timeout(1000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "dashboard-profiles.png"), full_page=True)
