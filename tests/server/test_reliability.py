"""What an adversarial run found, each against a real server process on 127.0.0.1.

Idle and slow connections, a burst beyond the queue, a chat that took the event loop for
seconds, bodies just over the limit, clients that hang up mid-body, type confusion and the
schema behind API keys. Each failed before its fix. (Forged chat turns: tests/integration.)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from srvproc import ServerProcess, start

pytestmark = [pytest.mark.server, pytest.mark.integration]

GUARDED_FLAGS = (
    "--parallel 2 --queue 2 --max-connections 32 --header-timeout-s 2 --body-timeout-s 2 "
    "--max-body-bytes 4096 --max-messages 64 --n-ctx 512 --max-tokens-limit 64"
)


@pytest.fixture(scope="module")
def guarded() -> Iterator[ServerProcess]:
    """Small limits, so the attacks are cheap: 2 slots, 2 queued, 32 connections, 2 s timeouts."""
    yield from start(GUARDED_FLAGS.split())


def _open_idle(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(s)
    return socks


def _health(srv: ServerProcess, timeout: float = 5.0) -> int:
    return httpx.get(srv.url + "/health", timeout=timeout).status_code


def test_idle_connections_never_lock_out_a_health_check(guarded: ServerProcess) -> None:
    socks = _open_idle(guarded.port, 80)  # more than --max-connections, sending nothing
    try:
        assert _health(guarded) == 200
        with httpx.Client(base_url=guarded.url, timeout=60) as c:
            r = c.post("/v1/completions", json={"prompt": "def f():", "max_tokens": 4})
        assert r.status_code == 200, r.text
    finally:
        for s in socks:
            s.close()


def test_a_connection_that_sends_no_request_is_closed(guarded: ServerProcess) -> None:
    (quiet,) = _open_idle(guarded.port, 1)
    slow = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    for s in (quiet, slow):
        s.settimeout(10)
        assert s.recv(1024) == b""  # closed by the server (the header timeout), not left open
        s.close()


def test_a_slow_body_gets_a_json_408(guarded: ServerProcess) -> None:
    s = socket.create_connection(("127.0.0.1", guarded.port), timeout=15)
    s.sendall(
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 200\r\n\r\n{"prompt": '
    )
    s.settimeout(15)
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "body_timeout"


def test_a_burst_beyond_the_queue_gets_json_429s_not_plain_503s(guarded: ServerProcess) -> None:
    results: list[tuple[int, str, str | None]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(24)

    def client() -> None:
        with httpx.Client(base_url=guarded.url, timeout=120) as c:
            barrier.wait()
            r = c.post("/v1/completions", json={"prompt": "Once upon", "max_tokens": 32})
        with lock:
            results.append(
                (r.status_code, r.headers.get("content-type", ""), r.headers.get("retry-after"))
            )

    threads = [threading.Thread(target=client) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [code for code, _, _ in results]
    assert set(codes) <= {200, 429}, codes
    assert 429 in codes and 200 in codes
    for code, kind, retry in results:
        assert kind.startswith("application/json")
        if code == 429:
            assert retry is not None and int(retry) >= 1


def test_a_huge_chat_is_refused_and_prompt_work_stays_off_the_event_loop(
    guarded: ServerProcess,
) -> None:
    many = {"messages": [{"role": "user", "content": ""}] * 20_000, "max_tokens": 4}
    with httpx.Client(base_url=guarded.url, timeout=60) as c:
        r = c.post("/v1/chat/completions", content=json.dumps(many))
    assert r.status_code in (400, 413), r.text  # over --max-messages (or the body limit)
    # 64 messages of special-token-heavy text: templated and tokenised in a worker thread
    heavy = {
        "messages": [{"role": "user", "content": "<|im_start|>" * 20}] * 64,
        "max_tokens": 1,
    }
    body = json.dumps(heavy)
    done = threading.Event()

    def send() -> None:
        try:
            with httpx.Client(base_url=guarded.url, timeout=120) as c:
                for _ in range(3):
                    c.post("/v1/chat/completions", content=body)
        finally:
            done.set()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        while not done.is_set():
            assert _health(guarded, timeout=5.0) == 200
            time.sleep(0.2)
    finally:
        sender.join()


def test_a_body_one_byte_over_the_limit_gets_a_413_not_a_reset(guarded: ServerProcess) -> None:
    payload = b'{"prompt": "' + b"x" * (4096 - 13) + b'"}'
    assert len(payload) == 4097
    r = httpx.post(
        guarded.url + "/v1/completions",
        content=payload,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(guarded: ServerProcess) -> None:
    def errors_500() -> float:
        text = httpx.get(guarded.url + "/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("backplan_requests_total{") and 'status="500"' in line
        )

    before = errors_500()
    s = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
    s.sendall(
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"prompt"'
    )
    time.sleep(0.5)
    s.close()
    time.sleep(0.5)
    assert errors_500() == before


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "x", "max_tokens": "8"},
        {"prompt": "x", "max_tokens": 4, "stream": "yes"},
        {"prompt": "x", "max_tokens": 4, "temperature": "0"},
        {"prompt": "x", "max_tokens": 4, "backplan": {"ignore_eos": "true"}},
    ],
)
def test_values_of_the_wrong_type_are_400(guarded: ServerProcess, body: dict[str, object]) -> None:
    r = httpx.post(guarded.url + "/v1/completions", json=body, timeout=30)
    assert r.status_code == 400, r.text


def test_with_api_keys_the_schema_is_not_public() -> None:
    for srv in start(["--api-key", "k1", "--n-ctx", "256"], api_key="k1"):
        for path in ("/openapi.json", "/docs"):
            assert httpx.get(srv.url + path, timeout=10).status_code in (401, 404)
        assert httpx.get(srv.url + "/health", timeout=10).status_code == 200
