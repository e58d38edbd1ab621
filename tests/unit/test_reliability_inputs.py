"""What an adversarial run found outside the server: parser limits, torn lines, huge and
special input files, loose types, trainings that cannot be. Each case failed before its fix."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.atomic import append_line, drop_torn_tail
from runtime.errors import UsageError
from runtime.files import MAX_INPUT_BYTES, read_text
from runtime.verifiers.syntax import PythonSyntaxVerifier, python_prefix_ok


def test_a_line_beyond_the_parser_is_not_judged_not_a_crash() -> None:
    dashes = "-" * 100_000
    assert python_prefix_ok(dashes) is None  # MemoryError inside the parser: cannot judge
    ver = PythonSyntaxVerifier(lambda t: dashes.encode() if t == 0 else b"\n", mode="code")
    ver.begin([], None)
    ver.extend([0, 1], None)
    assert list(ver.values()) == [1.0, 1.0]  # never a rejection, never an exception
    assert python_prefix_ok("(" * 100 + "\n") is not None


def test_an_append_cut_short_leaves_no_half_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.jsonl"
    append_line(path, json.dumps({"config": {}}))
    before = path.read_bytes()
    real_write = os.write

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))  # half of it lands, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError):
        append_line(path, json.dumps({"task_id": "HumanEval/0", "passed": True}))
    monkeypatch.undo()
    assert path.read_bytes() == before  # whole lines or none


def test_resume_drops_a_torn_last_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from planner.quality.harness import _read
    from planner.quality.results import EvalConfig

    config = EvalConfig(model="m")
    record = {
        "task_id": "HumanEval/0",
        "passed": True,
        "completion": "",
        "rollbacks": 0,
        "forward_per_emitted": 1.0,
    }
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps({"config": config.model_dump()})
        + "\n"
        + json.dumps(record)
        + "\n"
        + '{"task_id": "HumanEval/1", "pass'  # an earlier write cut off by a full disk
    )
    done = _read(path, config)
    assert list(done) == ["HumanEval/0"]
    assert path.read_text().endswith("\n") and "HumanEval/1" not in path.read_text()
    assert "half a line" in caplog.text
    assert not drop_torn_tail(path)  # nothing more to cut


def test_special_and_huge_input_files_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a regular file"):
        read_text("/dev/zero", what="workload file", fix="pass a file")
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk used
    with pytest.raises(UsageError, match="over the 64 MiB") as err:
        read_text(big, what="runs list", fix="pass a smaller file")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--workload", "/dev/zero"],
        ["eval", "compare", "/dev/zero", "/dev/zero"],
        ["verifier", "train", "--rollouts", "/dev/zero", "--out-dir", "{tmp}/heads"],
    ],
)
def test_commands_refuse_a_device_as_input(args: list[str], tmp_path: Path) -> None:
    from backplan.cli import _register, cli

    _register()
    result = CliRunner().invoke(cli, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "not a regular file" in line


def test_results_records_have_strict_types(tmp_path: Path) -> None:
    from planner.quality.results import EvalConfig, parse_results

    header = json.dumps({"config": EvalConfig(model="m").model_dump()})
    line = {
        "task_id": "HumanEval/0",
        "passed": "yes",
        "completion": "",
        "rollbacks": 0,
        "forward_per_emitted": 1.0,
    }
    with pytest.raises(UsageError, match="line 2: passed"):
        parse_results(tmp_path / "r.jsonl", header + "\n" + json.dumps(line) + "\n")


def test_trainings_that_cannot_be_are_refused_before_any_work(tmp_path: Path) -> None:
    from planner.verifier_training.rollouts import Rollout, check_trainable

    def rollout(task: str) -> Rollout:
        return Rollout(task_id=task, sample="s0", completion="", passed=True, status="passed")

    with pytest.raises(UsageError, match="1 problem"):
        check_trainable(tmp_path / "r.jsonl", [rollout("HumanEval/0")], folds=4)
    with pytest.raises(UsageError, match="not a HumanEval problem"):
        check_trainable(tmp_path / "r.jsonl", [rollout("Other/1")] * 8, folds=2)
    many = [rollout(f"HumanEval/{i}") for i in range(8)]
    check_trainable(tmp_path / "r.jsonl", many, folds=4)  # enough: no error
