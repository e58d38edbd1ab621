"""Fill-in-the-middle on a real server process: ``/infill`` as editor plugins send it (raw HTTP),
``suffix`` on ``/v1/completions`` through the openai client, streaming, the prompt cache, and the
syntax verifier judging the middle in its file. Qwen2.5-Coder-0.5B: SmolLM2 has no FIM tokens
(its server answers 400, tested too)."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from srvproc import ServerProcess, start

pytestmark = [pytest.mark.server, pytest.mark.integration]

BEFORE = "import os\n\n\ndef list_py(root):\n    out = []\n    for name in os.listdir(root):\n"
AFTER = "            out.append(name)\n    return out\n"
SYNTAX = {"verifier": "syntax", "strategy": "threshold"}


@pytest.fixture(scope="module")
def fim_server() -> Iterator[ServerProcess]:
    yield from start(
        ["--model", "qwen2.5-coder-0.5b", "--parallel", "2", "--n-ctx", "1024"]
        + ["--max-tokens-limit", "64", "--timeout-s", "120"]
    )


def _plugin_body(**over: object) -> dict[str, object]:
    """What llama.vim / llama.vscode send to /infill (their extra fields are ignored)."""
    body: dict[str, object] = {
        "input_prefix": BEFORE,
        "input_suffix": AFTER,
        "input_extra": [{"filename": "paths.py", "text": "ROOT = '/srv'\n"}],
        "prompt": "",
        "n_predict": 24,
        "top_k": 40,
        "top_p": 0.99,
        "temperature": 0,
        "stream": False,
        "samplers": ["top_k", "top_p", "infill"],
        "cache_prompt": True,
        "t_max_prompt_ms": 500,
        "t_max_predict_ms": 1000,
    }
    body.update(over)
    return body


def test_infill_answers_as_llama_server_and_reuses_the_prompt(fim_server: ServerProcess) -> None:
    with fim_server.client() as c:
        first = c.post("/infill", json=_plugin_body())
        assert first.status_code == 200, first.text
        a = first.json()
        assert isinstance(a["content"], str) and a["stop"] is True
        assert 0 < a["tokens_predicted"] <= 24
        assert a["stop_type"] in {"eos", "limit"} and a["truncated"] is False
        assert a["timings"]["prompt_n"] == a["tokens_evaluated"] - a["tokens_cached"]
        # the plugin's next keystroke resends the same file: the slot's cache holds it
        second = c.post("/infill", json=_plugin_body(prompt="    ")).json()
    # what comes before the typed text (context files, the prefix) is reused
    assert second["tokens_cached"] > 0.5 * a["tokens_evaluated"]
    assert second["timings"]["prompt_n"] < a["timings"]["prompt_n"]


def test_streamed_infill_sends_the_same_middle(fim_server: ServerProcess) -> None:
    body = _plugin_body(cache_prompt=False, n_predict=12)
    with fim_server.client() as c:
        whole = c.post("/infill", json=body).json()
        parts, final = [], None
        with c.stream("POST", "/infill", json={**body, "stream": True}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    chunk = json.loads(line[6:])
                    if chunk["stop"]:
                        final = chunk
                    else:
                        parts.append(chunk["content"])
    assert "".join(parts) == whole["content"]
    assert final is not None and final["tokens_predicted"] == whole["tokens_predicted"]


def test_syntax_verifier_leaves_the_file_parsable(fim_server: ServerProcess) -> None:
    with fim_server.client() as c:
        r = c.post("/infill", json=_plugin_body(backplan=SYNTAX, input_extra=[]))
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["backtrack"]["verifier"] == "syntax"
    ast.parse(BEFORE + a["content"] + AFTER)  # raises if the middle broke the file


def test_completions_with_suffix_through_the_openai_client(fim_server: ServerProcess) -> None:
    client = openai.OpenAI(base_url=fim_server.url + "/v1", api_key="unused", max_retries=0)
    out = client.completions.create(
        model="qwen2.5-coder-0.5b",
        prompt=BEFORE,
        suffix=AFTER,
        max_tokens=24,
        temperature=0,
        extra_body={"backplan": SYNTAX},
    )
    text = out.choices[0].text
    ast.parse(BEFORE + text + AFTER)
    assert out.usage is not None and out.usage.completion_tokens > 0


def test_fim_problems_are_one_line_400s(fim_server: ServerProcess) -> None:
    with fim_server.client() as c:
        ids = c.post("/v1/completions", json={"prompt": [1, 2, 3], "suffix": "x", "max_tokens": 4})
        missing = c.post("/infill", json={"input_prefix": "x = "})
        huge = c.post("/infill", json=_plugin_body(n_predict=5000))
    assert ids.status_code == 400 and "string" in ids.json()["error"]["message"]
    assert missing.status_code == 400 and "input_suffix" in missing.json()["error"]["message"]
    assert huge.status_code == 400 and huge.json()["error"]["code"] == "max_tokens_exceeded"


def test_a_model_without_fim_tokens_gets_a_400_that_says_so(api_server: ServerProcess) -> None:
    with api_server.client() as c:
        infill = c.post("/infill", json=_plugin_body())
        suffix = c.post("/v1/completions", json={"prompt": BEFORE, "suffix": AFTER})
    for r in (infill, suffix):
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "fim_not_supported" and "fill-in-the-middle" in err["message"]
    assert httpx.get(api_server.url + "/health").status_code == 200
