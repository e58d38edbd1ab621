"""serve --allow-code-execution: the tests verifier end to end, hostile tests contained in the
real jail, and the refusals (flag off, no bwrap, beyond loopback without keys).

Real server processes on 127.0.0.1 (SmolLM2-135M), the openai client, the real bubblewrap jail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from srvproc import ROOT, ServerProcess, start

pytestmark = [pytest.mark.server, pytest.mark.integration, pytest.mark.jail]

ASK = "Write a Python function add(a, b) that returns the sum of a and b."
CODE_SERVER_FLAGS = (
    "--allow-code-execution --verifier syntax --strategy threshold --parallel 2 "
    "--n-ctx 1024 --max-tokens-limit 400"
)


@pytest.fixture(scope="module")
def code_server() -> Iterator[ServerProcess]:
    yield from start(CODE_SERVER_FLAGS.split())


def _chat(srv: ServerProcess, tests: list[str], verifier: str = "syntax+tests") -> httpx.Response:
    body = {
        "messages": [{"role": "user", "content": ASK}],
        "max_tokens": 160,
        "temperature": 0,
        "backplan": {"verifier": verifier, "tests": tests},
    }
    with srv.client() as c:
        return c.post("/v1/chat/completions", json=body)


def test_openai_client_with_the_tests_verifier(code_server: ServerProcess) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=code_server.url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": ASK}],
        max_tokens=160,
        temperature=0,
        extra_body={
            "backplan": {
                "verifier": "syntax+tests",
                "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
            }
        },
    )
    backtrack = reply.model_extra["backtrack"]  # type: ignore[index]
    assert backtrack["verifier"] == "syntax+tests"
    assert backtrack["code_runs"] >= 1 and backtrack["isolation"] == "jail"
    assert "def add" in (reply.choices[0].message.content or "")


def test_hostile_tests_are_contained_and_the_server_answers_on(
    code_server: ServerProcess,
) -> None:
    hostile = [
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        f"import socket\nsocket.create_connection(('127.0.0.1', {code_server.port}), timeout=2)",
        "import os\nwhile True:\n    os.fork()",
        "x = bytearray(20 << 30)",
        "assert 'sk-' not in open('/proc/1/environ').read()",
    ]
    r = _chat(code_server, hostile)
    assert r.status_code == 200, r.text
    assert r.json()["backtrack"]["isolation"] == "jail"
    assert code_server.proc.poll() is None  # still running
    with code_server.client() as c:
        assert c.get("/health").status_code == 200
    again = _chat(code_server, ["assert add(2, 2) == 4"])
    assert again.status_code == 200 and again.json()["backtrack"]["code_runs"] >= 1


@pytest.mark.parametrize(
    ("backplan", "needle"),
    [
        ({"verifier": "tests"}, "needs the request's tests"),
        ({"verifier": "syntax", "tests": ["assert True"]}, "only by the tests verifier"),
        ({"verifier": "tests", "tests": ["assert ("]}, "not valid Python"),
        ({"verifier": "tests", "tests": ["assert 1"] * 65}, "tests"),
        ({"verifier": "tsts", "tests": ["assert 1"]}, "did you mean tests"),
    ],
)
def test_bad_tests_requests_are_400(
    code_server: ServerProcess, backplan: dict[str, object], needle: str
) -> None:
    body = {"messages": [{"role": "user", "content": ASK}], "max_tokens": 8, "backplan": backplan}
    with code_server.client() as c:
        r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


def test_without_the_flag_code_running_verifiers_are_refused(api_server: ServerProcess) -> None:
    r = _chat(api_server, ["assert add(1, 2) == 3"])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "code_execution_disabled"
    r = _chat(api_server, [], verifier="examples")
    assert r.status_code == 400 and "--allow-code-execution" in r.json()["error"]["message"]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from backplan.cli import main; main()", "serve", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--allow-code-execution"], {"BACKPLAN_BWRAP": ""}, "apt-get install bubblewrap"),
        (["--allow-code-execution", "--host", "0.0.0.0", "--insecure"], {}, "needs --api-key"),
        (["--verifier", "syntax+examples=8"], {}, "pass --allow-code-execution"),
        (["--verifier", "tests", "--allow-code-execution"], {}, "cannot be the default"),
    ],
)
def test_refusals_are_one_line(args: list[str], env: dict[str, str], needle: str) -> None:
    done = _serve(*args, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
