"""API keys, the bounded queue (429 + Retry-After), the per-request timeout, graceful shutdown,
and the refusal to listen beyond loopback without keys."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from srvproc import CLI, MODULE, ROOT, ServerProcess, start

from runtime.errors import UsageError
from runtime.server.settings import ServerSettings, check_bind

pytestmark = [pytest.mark.server, pytest.mark.integration]

KEYS = ("key-one", "key-two")
KEYED_FLAGS = "--parallel 1 --queue 1 --timeout-s 3 --max-tokens-limit 4000"


@pytest.fixture(scope="module")
def keyed() -> Iterator[ServerProcess]:
    """`backplan serve` with two API keys, one slot, a queue of one and a 3 s timeout."""
    yield from start(
        ["--api-key", KEYS[0], "--api-key", KEYS[1], *KEYED_FLAGS.split()],
        entry=CLI,
        api_key=KEYS[0],
    )


def _metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(server.url + "/metrics", headers=server.headers()).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")
    )


def test_auth_off_serves_without_a_key(api_server: ServerProcess) -> None:
    r = httpx.post(api_server.url + "/v1/completions", json={"prompt": "Hi", "max_tokens": 1})
    assert r.status_code == 200


def test_auth_on_needs_one_of_the_keys(keyed: ServerProcess) -> None:
    url = keyed.url + "/v1/completions"
    body = {"prompt": "Hi", "max_tokens": 1}
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic a2V5"},
        {"Authorization": f"Bearer {KEYS[0]}x"},
    ):
        r = httpx.post(url, json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
    for key in KEYS:
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
    assert httpx.get(keyed.url + "/metrics").status_code == 401
    assert httpx.get(keyed.url + "/v1/models").status_code == 401
    assert httpx.get(keyed.url + "/health").status_code == 200  # probes stay open
    assert httpx.get(keyed.url + "/ready").status_code == 200
    client = openai.OpenAI(base_url=keyed.url + "/v1", api_key=KEYS[1], max_retries=0)
    assert client.completions.create(model="smollm2-135m", prompt="Hi", max_tokens=2).choices
    bad = openai.OpenAI(base_url=keyed.url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.completions.create(model="smollm2-135m", prompt="Hi", max_tokens=2)


def test_full_queue_is_429_with_retry_after_and_the_timeout_cuts_short(
    keyed: ServerProcess,
) -> None:
    body = {
        "prompt": "Count: 1, 2, 3,",
        "max_tokens": 4000,
        "temperature": 0,
        "backplan": {"ignore_eos": True},
    }
    results: list[httpx.Response | None] = [None, None]
    elapsed: list[float] = [0.0, 0.0]

    def long(i: int) -> None:
        t0 = time.monotonic()
        results[i] = httpx.post(
            keyed.url + "/v1/completions", json=body, headers=keyed.headers(), timeout=60
        )
        elapsed[i] = time.monotonic() - t0

    first = threading.Thread(target=long, args=(0,))
    first.start()
    deadline = time.monotonic() + 5
    while _metric(keyed, "backplan_active_slots") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = threading.Thread(target=long, args=(1,))
    second.start()
    while _metric(keyed, "backplan_queue_depth") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    r = httpx.post(keyed.url + "/v1/completions", json=body, headers=keyed.headers())
    assert r.status_code == 429, r.text
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert int(r.headers["retry-after"]) >= 1
    first.join(60)
    second.join(60)
    a, b = results
    assert a is not None and a.status_code == 200, a.text if a else None
    out = a.json()
    # cut short by the 3 s timeout: partial text, finish_reason "length", timed_out flagged
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["backtrack"]["timed_out"] is True
    assert 0 < out["usage"]["completion_tokens"] < 4000
    assert elapsed[0] < 15
    assert b is not None and b.status_code in (200, 503), b.text
    if b.status_code == 503:
        assert int(b.headers["retry-after"]) >= 1


def test_graceful_shutdown_finishes_the_stream_in_flight() -> None:
    server = ServerProcess(["--parallel", "2"])
    try:
        server.wait_ready()
        body = {
            "prompt": "Count: 1, 2, 3,",
            "max_tokens": 200,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "backplan": {"ignore_eos": True},
        }
        events: list[Any] = []
        with (
            httpx.Client(timeout=120) as c,
            c.stream("POST", server.url + "/v1/completions", json=body) as r,
        ):
            assert r.status_code == 200
            signalled = False
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                events.append(line[6:])
                if not signalled:
                    server.proc.send_signal(signal.SIGTERM)  # shut down mid-stream
                    signalled = True
        assert events[-1] == "[DONE]"
        usage = json.loads(events[-2])["usage"]
        assert usage["completion_tokens"] == 200  # every token, despite the shutdown
        server.proc.wait(60)
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/health", timeout=2)
    finally:
        server.stop()


@pytest.mark.parametrize("entry", [CLI, MODULE], ids=["backplan-serve", "python-m"])
def test_refuses_to_listen_beyond_loopback_without_keys(entry: list[str]) -> None:
    t0 = time.monotonic()
    proc = subprocess.run(
        [*entry, "--host", "0.0.0.0"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to listen on 0.0.0.0"), (
        proc.stderr
    )
    assert "--api-key" in lines[0] and "--insecure" in lines[0]
    assert time.monotonic() - t0 < 30  # refused before loading anything


def test_bind_check_accepts_loopback_keys_or_insecure() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(ServerSettings(host=host))
    check_bind(ServerSettings(host="0.0.0.0", api_key=["k"]))
    check_bind(ServerSettings(host="0.0.0.0", insecure=True))
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.org"):
        with pytest.raises(UsageError):
            check_bind(ServerSettings(host=host))


@pytest.mark.parametrize("entry", [CLI, MODULE], ids=["backplan-serve", "python-m"])
def test_mistakes_found_before_binding_are_one_line(entry: list[str]) -> None:
    """A taken port, an empty API key (``--api-key "$UNSET"``) and a verifier spec naming
    nothing are refused before the banner and the model load, in one line each."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        cases = [
            (["--port", port], f"cannot listen on 127.0.0.1:{port}"),
            (["--host", "0.0.0.0", "--api-key", ""], "API key is empty"),
            (["--verifier", "+"], "an empty part"),
        ]
        for args, needle in cases:
            proc = subprocess.run(
                [*entry, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
            )
            assert proc.returncode == 2, (args, proc.stderr)
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
            assert needle in lines[0], (args, proc.stderr)
