"""Progress of long CLI jobs when stderr is a log file, not a terminal (pytest captures it)."""

from __future__ import annotations

import re

import pytest

from backplan.progress import job_progress


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """stderr lines without their elapsed-time stamp."""
    err = capsys.readouterr().err
    return [re.sub(r" \[\d+:\d\d:\d\d\]$", "", ln) for ln in err.splitlines()]


def test_a_log_gets_plain_lines_throttled_but_never_missing_the_last(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with job_progress("collect m", every_s=3600.0) as update:
        update(0, 3)  # the start: no line (a job refused at once prints only its error)
        update(1, 3, "1 passed")
        update(2)  # within every_s and not the end: held back
        update(3)  # the last step: always a line
        update(3)  # no change: no line
    assert _lines(capsys) == ["collect m 1/3 1 passed", "collect m 3/3 1 passed"]


def test_a_job_that_stops_early_still_logs_where_it_stopped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(RuntimeError), job_progress("eval", every_s=3600.0) as update:
        update(1, 5)
        update(2, 5)  # held back by the throttle
        raise RuntimeError("interrupted")
    assert _lines(capsys) == ["eval 1/5", "eval 2/5"]


def test_a_phase_without_a_count_drops_the_last_phases_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with job_progress("profile", every_s=0.0) as update:
        update(6, 6, "plain")
        update(note="quality 1/2 (1 passed)")
        update(7, 8, "vgb")
    assert _lines(capsys) == [
        "profile 6/6 plain",
        "profile quality 1/2 (1 passed)",
        "profile 7/8 vgb",
    ]


def test_without_throttling_every_step_is_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    with job_progress("eval", every_s=0.0) as update:
        for done in range(1, 5):
            update(done, None)
    assert _lines(capsys) == [f"eval {i}/?" for i in range(1, 5)]
