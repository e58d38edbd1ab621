"""The CLI boundary: user mistakes and the operating system's refusals become one line."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from backplan.cli import _Group, _register, cli
from planner.quality.results import EvalConfig


def _error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("error:")]


def test_an_os_refusal_is_one_line_naming_the_file() -> None:
    @click.group(cls=_Group)
    def group() -> None:
        pass

    @group.command()
    def write() -> None:
        raise PermissionError(13, "Permission denied", "/srv/results.json")

    result = CliRunner().invoke(group, ["write"])
    assert result.exit_code == 1
    assert not isinstance(result.exception, PermissionError)  # handled, no traceback
    (line,) = _error_lines(result.output)
    assert "Permission denied (/srv/results.json)" in line and "permissions" in line


def _results(path: Path, task_ids: list[str]) -> Path:
    header = json.dumps({"config": EvalConfig(model="m").model_dump()})
    rows = [
        json.dumps(
            {
                "task_id": t,
                "passed": True,
                "completion": "",
                "rollbacks": 0,
                "forward_per_emitted": 1.0,
            }
        )
        for t in task_ids
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_compare_needs_problems_in_common_and_results_files(tmp_path: Path) -> None:
    _register()
    a = _results(tmp_path / "a.jsonl", ["HumanEval/0", "HumanEval/1"])
    b = _results(tmp_path / "b.jsonl", ["HumanEval/2"])
    disjoint = CliRunner().invoke(cli, ["eval", "compare", str(a), str(b)])
    assert disjoint.exit_code == 2
    (line,) = _error_lines(disjoint.output)
    assert "share no problem" in line
    text = tmp_path / "notes.txt"
    text.write_text("passed: 3\n")
    wrong = CliRunner().invoke(cli, ["eval", "compare", str(a), str(text)])
    assert wrong.exit_code == 2
    (line,) = _error_lines(wrong.output)
    assert "notes.txt is not a backplan eval results file (line 1: not JSON)" in line
    same = CliRunner().invoke(cli, ["eval", "compare", str(a), str(a)])
    assert same.exit_code == 0 and "2 problems in both" in same.output


def test_rescore_refuses_a_bad_runs_list_before_touching_the_results(tmp_path: Path) -> None:
    _register()
    a = _results(tmp_path / "a.jsonl", ["HumanEval/0"])
    before = a.read_text()
    runs = tmp_path / "runs.json"
    runs.write_text('{"not": "a list"}')
    result = CliRunner().invoke(cli, ["eval", "rescore", str(a), "--summary", str(runs)])
    assert result.exit_code == 2
    (line,) = _error_lines(result.output)
    assert "runs.json is not a list of runs" in line
    assert a.read_text() == before and runs.read_text() == '{"not": "a list"}'


def test_clicks_own_checks_are_one_line_too() -> None:
    _register()
    for args, needle in (
        (["predict", "--gpu", "h100-sxm", "--count", "0"], "Invalid value for '--count'"),
        (["nosuch"], "No such command 'nosuch'"),
        (["eval", "compare"], "Missing argument 'A'"),
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        (line,) = result.output.strip().splitlines()
        assert line.startswith("error: ") and needle in line and "--help`" in line, line


def test_prepare_output_refuses_what_could_not_be_written_later(tmp_path: Path) -> None:
    from runtime.atomic import prepare_output
    from runtime.errors import UsageError

    prepare_output(tmp_path / "new" / "profile.json")  # a missing folder is made
    assert (tmp_path / "new").is_dir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UsageError, match="a-file is a file, not a folder"):
        prepare_output(tmp_path / "a-file" / "profile.json")
    with pytest.raises(UsageError, match="it is a folder"):
        prepare_output(tmp_path / "new")


def test_a_bad_thread_count_in_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runtime.engine.llama import default_threads
    from runtime.errors import UsageError

    monkeypatch.setenv("BACKPLAN_THREADS", "3")
    assert default_threads() == 3
    for bad in ("abc", "0", "-2", "²"):
        monkeypatch.setenv("BACKPLAN_THREADS", bad)
        with pytest.raises(UsageError, match="BACKPLAN_THREADS"):
            default_threads()


def test_regenerate_options_are_refused_where_they_cannot_apply(tmp_path: Path) -> None:
    _register()
    out = ["--out", str(tmp_path / "r.jsonl"), "--no-summary"]
    for args, needle in (
        (["--attempts", "4"], "--attempts applies to --strategy regenerate only"),
        (["--accept", "value"], "--accept applies to --strategy regenerate only"),
        (["--strategy", "regenerate", "--accept", "value"], "pass one above 0"),
        (
            ["--strategy", "regenerate", "--attempts", "4", "--server", "http://127.0.0.1:9"],
            "the server's own regenerate settings decide",
        ),
    ):
        result = CliRunner().invoke(cli, ["eval", "humaneval", *args, *out])
        assert result.exit_code != 0, (args, result.output)
        assert [needle in ln for ln in _error_lines(result.output)] == [True], result.output
    assert not (tmp_path / "r.jsonl").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--c-grid", "abc"], "not a list of numbers"),
        (["--c-grid", "0,1"], "above 0"),
        (["--layers", "1,a"], "not a list of layer numbers"),
        (["--features", "last@x"], "unknown feature set"),
        (["--features", "last+mean@16"], "add it to --layers"),
    ],
)
def test_replay_refuses_bad_layers_grids_and_feature_sets_before_reading(
    tmp_path: Path, args: list[str], says: str
) -> None:
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text("")  # never read: the options are checked first
    _register()
    result = CliRunner().invoke(cli, ["verifier", "replay", "--rollouts", str(rollouts), *args])
    assert result.exit_code == 2, result.output
    (line,) = _error_lines(result.output)
    assert says in line
