"""backplan on a real local Ray cluster (127.0.0.1, 4 logical CPUs): two Serve replicas of
SmolLM2-135M behind Serve's proxy, driven by the openai client and raw HTTP. Requests reach
both replicas; a replica killed under load is replaced and no request hangs; a redeploy lets
the requests in flight finish. The short version runs in the default test command."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import ray
from ray import serve

from runtime.fleet.serve_app import REPLICA_HEADER, build
from runtime.fleet.spec import FleetSpec
from runtime.models.registry import lookup

pytestmark = [pytest.mark.fleet, pytest.mark.integration]

RETRYABLE = {500, 502, 503, 504}  # the openai client retries these by itself


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spec(**over: Any) -> FleetSpec:
    smol = lookup("smollm2-135m")
    assert smol is not None
    base: dict[str, Any] = {
        "candidate_id": "test/smollm2-135m",
        "model": "smollm2-135m",
        "model_sha256": smol.sha256,
        "replicas": 2,
        "min_replicas": 2,
        "max_replicas": 2,
        "cpus_per_replica": 1,
        "memory_gb_per_replica": 0.5,
        "parallel": 2,
        "queue": 8,
        "n_ctx": 512,
    }
    return FleetSpec(**{**base, **over})


def _deploy(spec: FleetSpec) -> None:
    serve.run(build({"fleet": spec.model_dump(mode="json")}), name="backplan", route_prefix="/")


METRICS_PORT = free_port()  # Ray's metrics agent on this node


@pytest.fixture(scope="module")
def fleet(smol_path: object) -> Iterator[str]:
    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=False,
        logging_level=logging.WARNING,
        _metrics_export_port=METRICS_PORT,
    )
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        _deploy(_spec())
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def _replicas_running() -> int:
    status = serve.status().applications["backplan"].deployments["backplan"]
    return int(status.replica_states.get("RUNNING", 0))


def _post(url: str, max_tokens: int, out: list[Any], **extra: Any) -> None:
    body = {"prompt": "Once upon a time", "max_tokens": max_tokens, "temperature": 0, **extra}
    try:
        r = httpx.post(url + "/v1/completions", json=body, timeout=90)
        out.append((r.status_code, r.headers.get(REPLICA_HEADER), r))
    except httpx.TimeoutException:
        out.append(("hung", None, None))
    except httpx.HTTPError as exc:  # a dropped connection is a clean, retryable failure
        out.append(("dropped", None, exc))


def _load(url: str, n: int, max_tokens: int, **extra: Any) -> list[threading.Thread]:
    out: list[Any] = []
    threads = [
        threading.Thread(target=_post, args=(url, max_tokens, out), kwargs=extra) for _ in range(n)
    ]
    for t in threads:
        t.start()
    threads[0].results = out  # type: ignore[attr-defined]
    return threads


def _join(threads: list[threading.Thread]) -> list[Any]:
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return list(threads[0].results)  # type: ignore[attr-defined]


def test_requests_reach_both_replicas_through_the_openai_client(fleet: str) -> None:
    client = openai.OpenAI(base_url=fleet + "/v1", api_key="unused", max_retries=0)
    seen: list[str] = []

    def one() -> None:
        raw = client.completions.with_raw_response.create(
            model="smollm2-135m", prompt="def add(a, b):", max_tokens=8, temperature=0
        )
        assert raw.parse().choices[0].text is not None
        seen.append(raw.headers[REPLICA_HEADER])

    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(seen) == 16
    assert len(set(seen)) == 2  # Serve spread them over both replicas
    health = httpx.get(fleet + "/ready", timeout=10)
    assert health.status_code == 200 and health.headers[REPLICA_HEADER] in seen


def test_replica_metrics_come_through_rays_metrics(fleet: str) -> None:
    _join(_load(fleet, 4, 8))
    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).text
        if "ray_backplan_generated_tokens" in text and "ray_serve_num_http_requests" in text:
            break
        time.sleep(2)
    lines = [ln for ln in text.splitlines() if ln.startswith("ray_backplan_generated_tokens")]
    assert lines, "no backplan series in Ray's metrics"
    assert any('replica="' in ln for ln in lines)
    assert sum(float(ln.rsplit(" ", 1)[1]) for ln in lines) > 0


def test_a_killed_replica_is_replaced_and_no_request_hangs(fleet: str) -> None:
    threads = _load(fleet, 6, 48)  # raw HTTP: what a request on the dead replica gets
    client = openai.OpenAI(base_url=fleet + "/v1", api_key="unused", max_retries=3)
    retried: list[str] = []

    def with_retries() -> None:  # the openai client, as users run it: it retries 5xx itself
        out = client.completions.create(
            model="smollm2-135m", prompt="Once upon a time", max_tokens=48, temperature=0
        )
        retried.append(out.choices[0].text)

    users = [threading.Thread(target=with_retries) for _ in range(6)]
    for t in users:
        t.start()
    time.sleep(1.0)  # requests are on both replicas now
    replicas = [
        a for a in ray.util.list_named_actors(all_namespaces=True) if "SERVE_REPLICA" in a["name"]
    ]
    victim = replicas[0]
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
    results = _join(threads)
    for t in users:
        t.join(180)
    statuses = [s for s, _, _ in results]
    assert "hung" not in statuses
    assert all(s == 200 or s in RETRYABLE or s == "dropped" for s in statuses), statuses
    assert statuses.count(200) >= 1
    for s, _, r in results:  # what did answer is a whole answer
        if s == 200:
            assert r.json()["usage"]["completion_tokens"] == 48
    assert len(retried) == 6  # every user request succeeded, retried ones included
    deadline = time.monotonic() + 180
    while _replicas_running() < 2 and time.monotonic() < deadline:
        time.sleep(1)
    assert _replicas_running() == 2  # Serve replaced it
    after = _join(_load(fleet, 6, 8))
    assert [s for s, _, _ in after] == [200] * 6


def test_a_redeploy_lets_requests_in_flight_finish(fleet: str) -> None:
    threads = _load(fleet, 4, 96, backplan={"ignore_eos": True})
    time.sleep(0.5)
    _deploy(_spec(queue=9))  # a changed config: Serve replaces the replicas one by one
    results = _join(threads)
    assert [s for s, _, _ in results] == [200] * 4
    assert all(r.json()["usage"]["completion_tokens"] == 96 for _, _, r in results)
    after = _join(_load(fleet, 4, 8))
    assert [s for s, _, _ in after] == [200] * 4
