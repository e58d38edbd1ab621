"""Schemathesis over the server's own OpenAPI schema (no 5xx), then a soak of 500+ requests
that reports the server's resident-memory growth and checks that it levels off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from srvproc import ServerProcess, rss_bytes, start

pytestmark = [pytest.mark.server, pytest.mark.integration]

SOAK_REQUESTS = 520
SOAK_CLIENTS = 4
SAMPLE_EVERY = 40
SMALL_FLAGS = (
    "--parallel 2 --queue 64 --n-ctx 512 --max-tokens-limit 8 --max-prompt-tokens 400 "
    "--max-body-bytes 32768 --timeout-s 60"
)


@pytest.fixture(scope="module")
def small_server() -> Iterator[ServerProcess]:
    """Short generations only (max_tokens <= 8), so fuzzing and soaking stay quick."""
    yield from start(SMALL_FLAGS.split())


@pytest.fixture(scope="module")
def api_schema(small_server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(small_server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_schemathesis_finds_no_server_error(case: Any) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        body["model"] = "smollm2-135m"  # a random model name only ever meets the 404
    case.call_and_validate(checks=[not_a_server_error], timeout=60)


def test_soak_resident_memory_levels_off(small_server: ServerProcess) -> None:
    fuzzed = httpx.get(small_server.url + "/metrics").text
    fuzzed_lines = [
        ln[len("backplan_requests_total") :]
        for ln in fuzzed.splitlines()
        if ln.startswith('backplan_requests_total{route="/v1/')
    ]
    print("\nrequests before the soak (schemathesis):", ", ".join(fuzzed_lines))
    prompts = [f"Tell me about the number {i}." for i in range(50)]
    with httpx.Client(base_url=small_server.url, timeout=60) as c:  # warm up
        for p in prompts[:20]:
            c.post("/v1/completions", json={"prompt": p, "max_tokens": 4})
    samples: list[tuple[int, int]] = [(0, rss_bytes(small_server.pid))]
    done = 0
    codes: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(SOAK_REQUESTS))

    def worker() -> None:
        nonlocal done
        with httpx.Client(base_url=small_server.url, timeout=60) as c:
            for i in counter:
                p = prompts[i % len(prompts)]
                if i % 3 == 0:
                    r = c.post(
                        "/v1/chat/completions",
                        json={
                            "messages": [{"role": "user", "content": p}],
                            "max_tokens": 4,
                            "stream": i % 2 == 0,
                        },
                    )
                else:
                    r = c.post(
                        "/v1/completions",
                        json={"prompt": p, "max_tokens": 4, "temperature": 0.7, "seed": i},
                    )
                with lock:
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1
                    done += 1
                    if done % SAMPLE_EVERY == 0:
                        samples.append((done, rss_bytes(small_server.pid)))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(SOAK_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    seconds = time.monotonic() - t0
    samples.append((done, rss_bytes(small_server.pid)))
    mib = [(n, round(b / 2**20, 1)) for n, b in samples]
    half = len(samples) // 2
    first = samples[half][1] - samples[0][1]
    second = samples[-1][1] - samples[half][1]
    print(
        f"\nsoak: {done} requests in {seconds:.1f}s ({done / seconds:.1f} req/s), "
        f"statuses {codes}; RSS MiB by requests done: {mib}; growth first half "
        f"{first / 2**20:+.1f} MiB, second half {second / 2**20:+.1f} MiB"
    )
    assert done == SOAK_REQUESTS and codes == {200: SOAK_REQUESTS}, codes
    # levels off: the second half grows far less than the first, or hardly at all
    assert second <= max(0.5 * first, 8 * 2**20), mib
