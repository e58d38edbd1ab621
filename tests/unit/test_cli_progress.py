"""Progress of long CLI jobs when stderr is a log file, not a terminal (pytest captures it)."""

from __future__ import annotations

import re

import pytest

from planner.cli.progress import job_progress


def test_a_log_gets_plain_lines_throttled_but_never_missing_the_last(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with job_progress("collect m", every_s=3600.0) as update:
        update(0, 3)
        update(1, 3, "1 passed")  # a new note: always a line
        update(2)  # within every_s and not the end: no line
        update(3)  # the last step: always a line
        update(3)  # no change: no line
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r" \[\d+:\d\d:\d\d\]$", "", ln) for ln in lines] == [
        "collect m 0/3",
        "collect m 1/3 1 passed",
        "collect m 3/3 1 passed",
    ]


def test_without_throttling_every_step_is_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    with job_progress("eval", every_s=0.0) as update:
        for done in range(1, 5):
            update(done, None)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split(" [")[0] for ln in lines] == [f"eval {i}/?" for i in range(1, 5)]
