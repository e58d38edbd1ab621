"""The OpenAI API of a real server process, through the official ``openai`` client and httpx."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import openai
import pytest
from srvproc import ServerProcess

pytestmark = [pytest.mark.server, pytest.mark.integration]

CODE_PROMPT = "Write a Python function that returns the square of a number."


@pytest.fixture(scope="module")
def client(api_server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=api_server.url + "/v1", api_key="unused", max_retries=0)


def _metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(server.url + "/metrics", headers=server.headers()).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_probes_models_and_metrics(api_server: ServerProcess, client: openai.OpenAI) -> None:
    assert httpx.get(api_server.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(api_server.url + "/ready").json()
    assert ready["status"] == "ready" and ready["slots"] == 4
    models = client.models.list()
    assert [m.id for m in models.data] == ["smollm2-135m"]
    assert client.models.retrieve("smollm2-135m").id == "smollm2-135m"
    client.completions.create(model="smollm2-135m", prompt="Hello", max_tokens=2)
    text = httpx.get(api_server.url + "/metrics").text
    for name in (
        "backplan_requests_total",
        "backplan_prompt_tokens_total",
        "backplan_generated_tokens_total",
        "backplan_rollbacks_total",
        "backplan_verifier_rejections_total",
        "backplan_queue_depth",
        "backplan_request_latency_seconds_bucket",
        "backplan_resident_memory_bytes",
        "backplan_decode_tokens_per_second_bucket",
        "process_resident_memory_bytes",
    ):
        assert name in text, name
    assert _metric(api_server, "backplan_resident_memory_bytes") > 50e6
    energy = [ln for ln in text.splitlines() if ln.startswith("backplan_energy_joules_total{")]
    assert len(energy) == 1 and 'source="' in energy[0]  # no GPU here: rapl or estimate
    assert float(energy[0].rsplit(" ", 1)[1]) > 0.0
    assert _metric(api_server, "backplan_energy_per_generated_token_joules") > 0.0


def test_completion(client: openai.OpenAI) -> None:
    r = client.completions.create(
        model="smollm2-135m", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert r.object == "text_completion" and r.model == "smollm2-135m"
    assert r.choices[0].text and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is not None and 0 < r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    bt = r.model_extra["backtrack"]  # type: ignore[index]
    assert bt["strategy"] == "plain" and bt["verifier"] == "none" and bt["rollbacks"] == 0
    assert bt["forward_per_token"] == pytest.approx(1.0, abs=0.2)


def test_chat(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "What is 2 + 2?"}],
        max_tokens=16,
        temperature=0,
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content
    assert r.usage is not None and r.usage.prompt_tokens > 5


def test_streaming_equals_non_streaming(client: openai.OpenAI) -> None:
    kw: dict[str, Any] = {
        "model": "smollm2-135m",
        "prompt": "def fibonacci(n):",
        "max_tokens": 24,
        "temperature": 0,
    }
    whole = client.completions.create(**kw).choices[0].text
    chunks = list(client.completions.create(stream=True, **kw))
    assert len(chunks) > 2  # streamed piece by piece
    assert "".join(c.choices[0].text for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_chat_streaming_with_usage(client: openai.OpenAI) -> None:
    msgs = [{"role": "user", "content": "Name a colour."}]
    whole = client.chat.completions.create(
        model="smollm2-135m",
        messages=msgs,
        max_tokens=12,
        temperature=0,  # type: ignore[arg-type]
    )
    stream = client.chat.completions.create(
        model="smollm2-135m",
        messages=msgs,
        max_tokens=12,
        temperature=0,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize("strategy", ["threshold", "vgb"])
def test_with_a_verifier(client: openai.OpenAI, strategy: str) -> None:
    ext = {"backplan": {"verifier": "syntax", "strategy": strategy}}
    kw: dict[str, Any] = {
        "model": "smollm2-135m",
        "max_tokens": 48,
        "temperature": 0,
        "seed": 3,
        "messages": [{"role": "user", "content": CODE_PROMPT}],
        "extra_body": ext,
    }
    r = client.chat.completions.create(**kw)
    bt = r.model_extra["backtrack"]  # type: ignore[index]
    assert bt["verifier"] == "syntax" and bt["strategy"] == strategy
    assert bt["verifier_calls"] > 0
    for key in ("rollbacks", "rejected_tokens", "rolled_back_tokens", "forward_per_token"):
        assert key in bt
    # only committed text is streamed: the stream is the same text, never a rolled-back token
    chunks = list(client.chat.completions.create(stream=True, **kw))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == r.choices[0].message.content
    assert chunks[-1].model_extra["backtrack"]["verifier"] == "syntax"  # type: ignore[index]


@pytest.mark.parametrize(
    "verifier",
    [
        "latent=constant",
        "model:smollm2-135m=constant",
        "latent=/etc/passwd",
        "bogus",
        "syntax=x",
        "+",  # names no verifier at all
    ],
)
def test_verifier_overrides_this_server_cannot_serve_are_400(
    client: openai.OpenAI, verifier: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(
            model="smollm2-135m",
            prompt="x = ",
            max_tokens=2,
            extra_body={"backplan": {"verifier": verifier}},
        )
    assert "verifier" in info.value.message


def test_stop_strings(client: openai.OpenAI) -> None:
    kw: dict[str, Any] = {
        "model": "smollm2-135m",
        "prompt": "1, 2, 3, 4,",
        "max_tokens": 30,
        "temperature": 0,
    }
    full = client.completions.create(**kw).choices[0].text
    m = re.search(r"\d+", full[2:])
    assert m, full
    stop = m.group(0)
    cut = full[: full.index(stop)]
    r = client.completions.create(stop=[stop, "never-there"], **kw)
    assert r.choices[0].text == cut and r.choices[0].finish_reason == "stop"
    chunks = list(client.completions.create(stop=stop, stream=True, **kw))
    assert "".join(c.choices[0].text for c in chunks) == cut
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_seed_makes_sampling_reproducible(client: openai.OpenAI) -> None:
    kw: dict[str, Any] = {
        "model": "smollm2-135m",
        "prompt": "Once upon a time",
        "max_tokens": 16,
        "temperature": 1.0,
        "top_p": 0.95,
    }
    a = client.completions.create(seed=1234, **kw).choices[0].text
    b = client.completions.create(seed=1234, **kw).choices[0].text
    assert a == b


def _post(server: ServerProcess, path: str, body: Any, **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return httpx.post(server.url + path, content=content, headers=headers, timeout=60, **kw)


BAD_REQUESTS: list[tuple[str, str, Any, int]] = [
    ("malformed json", "/v1/completions", b'{"prompt": "x", ', 400),
    ("not an object", "/v1/completions", b"[1, 2]", 400),
    ("no prompt", "/v1/completions", {"max_tokens": 2}, 400),
    ("prompt wrong type", "/v1/completions", {"prompt": {"a": 1}}, 400),
    ("max_tokens wrong type", "/v1/completions", {"prompt": "x", "max_tokens": "many"}, 400),
    ("max_tokens zero", "/v1/completions", {"prompt": "x", "max_tokens": 0}, 400),
    ("max_tokens over limit", "/v1/completions", {"prompt": "x", "max_tokens": 401}, 400),
    ("temperature too high", "/v1/completions", {"prompt": "x", "temperature": 9}, 400),
    ("n beyond the slots", "/v1/completions", {"prompt": "x", "n": 5}, 400),
    ("n > 1 streamed", "/v1/completions", {"prompt": "x", "n": 2, "stream": True}, 400),
    ("n over 16", "/v1/completions", {"prompt": "x", "n": 17}, 400),
    ("empty prompt", "/v1/completions", {"prompt": "  "}, 400),
    ("two prompts", "/v1/completions", {"prompt": ["a", "b"]}, 400),
    ("token out of vocab", "/v1/completions", {"prompt": [1, 10_000_000]}, 400),
    ("lone surrogate", "/v1/completions", b'{"prompt": "\\ud800"}', 400),
    ("prompt beyond the context", "/v1/completions", {"prompt": "hello " * 700}, 400),
    ("prompt over the limit", "/v1/completions", {"prompt": "hello " * 2100}, 400),
    ("unknown model", "/v1/completions", {"prompt": "x", "model": "gpt-9"}, 404),
    ("logprobs streamed", "/v1/completions", {"prompt": "x", "logprobs": 2, "stream": True}, 400),
    ("logprobs over 5", "/v1/completions", {"prompt": "x", "logprobs": 6}, 400),
    (
        "top_logprobs without logprobs",
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "y"}], "top_logprobs": 2},
        400,
    ),
    ("bad extension", "/v1/completions", {"prompt": "x", "backplan": {"strategy": "x"}}, 400),
    ("extension typo", "/v1/completions", {"prompt": "x", "backplan": {"verfier": "x"}}, 400),
    ("too many stops", "/v1/completions", {"prompt": "x", "stop": ["a"] * 17}, 400),
    ("no messages", "/v1/chat/completions", {"messages": []}, 400),
    (
        "response_format unknown type",
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "y"}], "response_format": {"type": "yaml"}},
        400,
    ),
    (
        "json_schema without a schema",
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "y"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
        },
        400,
    ),
    (
        "json_schema that is no schema",
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "y"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "nonsense"}},
            },
        },
        400,
    ),
    ("bad role", "/v1/chat/completions", {"messages": [{"role": "x", "content": "y"}]}, 400),
    ("messages wrong type", "/v1/chat/completions", {"messages": "hello"}, 400),
    (
        "tools",
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "y"}], "tools": [{"type": "function"}]},
        400,
    ),
    ("body too large", "/v1/completions", {"prompt": "x" * 70_000}, 413),
    ("tokenize no content", "/tokenize", {"text": "x"}, 400),
    ("tokenize wrong type", "/tokenize", {"content": 5}, 400),
    ("detokenize strings", "/detokenize", {"tokens": ["a"]}, 400),
    ("detokenize negative", "/detokenize", {"tokens": [-1]}, 400),
]


@pytest.mark.parametrize(
    ("what", "path", "body", "status"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_input_is_an_openai_shaped_4xx(
    api_server: ServerProcess, what: str, path: str, body: Any, status: int
) -> None:
    r = _post(api_server, path, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and err["type"]


def test_unknown_route_and_method_are_4xx(api_server: ServerProcess) -> None:
    r = httpx.get(api_server.url + "/v2/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(api_server.url + "/v1/completions")
    assert r.status_code == 405 and "error" in r.json()
    r = _post(
        api_server,
        "/v1/completions",
        b"prompt=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= r.status_code < 500


def test_server_keeps_serving_after_bad_input(client: openai.OpenAI) -> None:
    r = client.completions.create(model="smollm2-135m", prompt="Hi", max_tokens=2)
    assert r.choices[0].text is not None


def test_model_output_is_never_executed(client: openai.OpenAI, tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    prompt = f"import os\nos.system('touch {marker}')\nos.system('touch {marker}')\n"
    client.completions.create(
        model="smollm2-135m",
        prompt=prompt,
        max_tokens=32,
        temperature=0,
        extra_body={"backplan": {"verifier": "syntax"}},
    )
    assert not marker.exists()


def test_a_disconnected_stream_frees_its_slot(api_server: ServerProcess) -> None:
    before = _metric(api_server, "backplan_generated_tokens_total")
    body = {
        "prompt": "Count: 1, 2, 3,",
        "max_tokens": 400,
        "temperature": 0,
        "stream": True,
        "backplan": {"ignore_eos": True},
    }
    with (
        httpx.Client(timeout=60) as c,
        c.stream("POST", api_server.url + "/v1/completions", json=body) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        got = 0
        for line in lines:
            if line.startswith("data: "):
                got += 1
                if got >= 3:
                    break
    # the connection is closed: the slot must come back long before 400 tokens are generated
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        if _metric(api_server, "backplan_active_slots") == 0:
            break
        time.sleep(0.1)
    assert _metric(api_server, "backplan_active_slots") == 0
    generated = _metric(api_server, "backplan_generated_tokens_total") - before
    assert generated < 300, generated


def test_tokenize_and_detokenize_round_trip(api_server: ServerProcess) -> None:
    text = "def square(x):\n    return x * x\n"
    r = _post(api_server, "/tokenize", {"content": text})
    assert r.status_code == 200, r.text
    ids = r.json()["tokens"]
    assert ids and all(isinstance(t, int) for t in ids)
    pieces = _post(api_server, "/tokenize", {"content": text, "with_pieces": True}).json()
    assert [p["id"] for p in pieces["tokens"]] == ids
    assert "".join(p["piece"] for p in pieces["tokens"]) == text
    back = _post(api_server, "/detokenize", {"tokens": ids})
    assert back.status_code == 200 and back.json()["content"] == text
    # the same ids the completion endpoint counts as the prompt
    usage = _post(api_server, "/v1/completions", {"prompt": text, "max_tokens": 1}).json()
    with_bos = _post(api_server, "/tokenize", {"content": text, "add_special": True}).json()
    assert usage["usage"]["prompt_tokens"] == len(with_bos["tokens"])
    bad = _post(api_server, "/detokenize", {"tokens": [10**9]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tokens"


def test_prompt_cache_reuses_a_slots_kv_for_the_next_turn(
    api_server: ServerProcess, client: openai.OpenAI
) -> None:
    before = _metric(api_server, "backplan_prompt_cached_tokens_total")
    turn1: list[Any] = [
        {"role": "system", "content": "You answer in one short sentence. " * 20},
        {"role": "user", "content": "What is a Python list?"},
    ]
    kw: dict[str, Any] = {"model": "smollm2-135m", "max_tokens": 12, "temperature": 0}
    first = client.chat.completions.create(messages=turn1, **kw)
    details = first.usage.prompt_tokens_details  # type: ignore[union-attr]
    assert details is not None
    turn2 = [
        *turn1,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And a tuple?"},
    ]
    second = client.chat.completions.create(messages=turn2, **kw)
    cached = second.usage.prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
    # the system message and the first question are the same tokens: reused, not evaluated
    assert first.usage.prompt_tokens // 2 < cached < second.usage.prompt_tokens  # type: ignore[union-attr]
    assert _metric(api_server, "backplan_prompt_cached_tokens_total") >= before + cached
    # the same request again: all but the last prompt token come from the cache
    again = client.chat.completions.create(messages=turn2, **kw)
    assert again.usage.prompt_tokens_details.cached_tokens == second.usage.prompt_tokens - 1  # type: ignore[union-attr]
    assert again.choices[0].message.content
    # a request may opt out: the whole prompt is evaluated
    whole = client.chat.completions.create(
        messages=turn2, extra_body={"backplan": {"cache_prompt": False}}, **kw
    )
    assert whole.usage.prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]


def test_logprobs_cover_the_committed_tokens_only(client: openai.OpenAI) -> None:
    import math

    kw: dict[str, Any] = {"model": "smollm2-135m", "max_tokens": 24, "temperature": 0}
    chat = client.chat.completions.create(
        messages=[{"role": "user", "content": CODE_PROMPT}], logprobs=True, top_logprobs=3, **kw
    )
    content = chat.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None
    assert len(content) == chat.usage.completion_tokens  # type: ignore[union-attr]
    assert "".join(c.token for c in content) == chat.choices[0].message.content
    for c in content:
        assert c.logprob <= 0 and len(c.top_logprobs) == 3
        tops = [t.logprob for t in c.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert math.isclose(c.logprob, tops[0], abs_tol=1e-6)  # greedy: the chosen is the best
    # with backtracking: the rolled-back tokens never appear; the rest still line up
    ext = {"backplan": {"verifier": "syntax", "strategy": "threshold"}}
    backed = client.chat.completions.create(
        messages=[{"role": "user", "content": CODE_PROMPT}], logprobs=True, extra_body=ext, **kw
    )
    got = backed.choices[0].logprobs.content  # type: ignore[union-attr]
    assert got is not None
    assert "".join(c.token for c in got) == backed.choices[0].message.content
    comp = client.completions.create(prompt="def add(a, b):", logprobs=2, **kw)
    lp = comp.choices[0].logprobs
    assert lp is not None and lp.tokens is not None and lp.token_logprobs is not None
    assert "".join(lp.tokens) == comp.choices[0].text
    assert lp.text_offset is not None and lp.text_offset[0] == 0
    assert all(len(t) == 2 for t in lp.top_logprobs or [])
    # a stop string cuts the text: the logprobs stop with it
    cut = client.completions.create(prompt="def add(a, b):", logprobs=0, stop=["return"], **kw)
    toks = cut.choices[0].logprobs.tokens  # type: ignore[union-attr]
    assert toks is not None and "".join(toks) == cut.choices[0].text[: len("".join(toks))]


def test_n_choices_each_on_a_slot(client: openai.OpenAI) -> None:
    def ask() -> Any:
        return client.completions.create(
            model="smollm2-135m",
            prompt="Once upon a time",
            max_tokens=12,
            temperature=0.9,
            n=3,
            seed=7,
            extra_body={"backplan": {"cache_prompt": False}},  # bit-reproducible prompts
        )

    out = ask()
    assert [c.index for c in out.choices] == [0, 1, 2]
    texts = [c.text for c in out.choices]
    assert len(set(texts)) > 1  # choice i draws with seed + i
    assert [c.text for c in ask().choices] == texts  # and the same seed draws them again
    assert out.usage is not None and 3 <= out.usage.completion_tokens <= 36
    extra = out.model_extra or {}
    assert len(extra["backtrack_choices"]) == 3


def test_response_format_json_schema(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    out = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Describe a person as JSON."}],
        max_tokens=96,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    choice = out.choices[0]
    assert choice.finish_reason == "stop"
    doc = json.loads(choice.message.content or "")
    assert set(doc) == {"name", "age"} and isinstance(doc["age"], int)
    any_object = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Give me a JSON object."}],
        max_tokens=96,
        temperature=0,
        response_format={"type": "json_object"},
    )
    text = any_object.choices[0].message.content or ""
    if any_object.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:
        assert text.lstrip().startswith("{")
