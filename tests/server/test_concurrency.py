"""16 simultaneous clients: every request answered (or refused with 429/503), none mixed up."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from srvproc import ServerProcess

pytestmark = [pytest.mark.server, pytest.mark.integration]

SUBJECTS = [
    "the sea",
    "a mountain",
    "coffee",
    "a cat",
    "winter",
    "the moon",
    "a library",
    "trains",
    "bread",
    "a violin",
    "rain",
    "a lighthouse",
    "chess",
    "a garden",
    "the desert",
    "a clock",
]
PROMPTS = [f"Write one sentence about {s}." for s in SUBJECTS]
MAX_TOKENS = 24


def _ask(server: ServerProcess, prompt: str, *, stream: bool) -> tuple[int, str]:
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": stream,
        # bit-for-bit answers: a prompt evaluated in parts (the prompt cache) may round
        # differently from one evaluated whole, as in llama-server
        "backplan": {"cache_prompt": False},
    }
    with httpx.Client(base_url=server.url, timeout=300) as c:
        if not stream:
            r = c.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                return r.status_code, r.text
            return 200, r.json()["choices"][0]["message"]["content"]
        parts = []
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                return r.status_code, r.read().decode()
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                assert "error" not in chunk, chunk
                for ch in chunk["choices"]:
                    parts.append(ch["delta"].get("content") or "")
        return 200, "".join(parts)


def test_sixteen_simultaneous_clients_get_their_own_answers(api_server: ServerProcess) -> None:
    alone = [_ask(api_server, p, stream=False) for p in PROMPTS]
    assert all(code == 200 for code, _ in alone), alone
    expected = [text for _, text in alone]
    assert len(set(expected)) == len(PROMPTS)  # distinct prompts, distinct answers

    results: list[tuple[int, str] | None] = [None] * len(PROMPTS)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(PROMPTS))

    def client(i: int) -> None:
        try:
            barrier.wait()
            results[i] = _ask(api_server, PROMPTS[i], stream=i % 2 == 0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    answered = 0
    for i, res in enumerate(results):
        assert res is not None, f"request {i} lost"
        code, text = res
        assert code in (200, 429, 503), (code, text)
        if code == 200:
            answered += 1
            assert text == expected[i], (PROMPTS[i], text, expected[i])
    assert answered >= 4  # at least the parallel slots' worth got through
