"""Servers started with a verifier: the default applies, per-request overrides stay cheap."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from srvproc import ServerProcess, running

pytestmark = [pytest.mark.server, pytest.mark.integration]

SEPARATE_FLAGS = "--verifier model:smollm2-135m=constant --strategy threshold --parallel 2"
LATENT_FLAGS = "--verifier latent=constant --strategy vgb --parallel 2"
BODY = {"prompt": "def add(a, b):\n", "max_tokens": 24, "temperature": 0}


def _post(server: ServerProcess, **extra: Any) -> httpx.Response:
    return httpx.post(server.url + "/v1/completions", json={**BODY, **extra}, timeout=120)


def test_separate_verifier_model_loaded_once_and_chosen_per_request() -> None:
    with running(SEPARATE_FLAGS.split()) as server:
        r = _post(server)
        assert r.status_code == 200, r.text
        bt = r.json()["backtrack"]
        assert bt["verifier"] == "model:smollm2-135m" and bt["strategy"] == "threshold"
        assert bt["verifier_forward_tokens"] > 0 and bt["forward_per_token"] > 1.5
        for spec, name in (
            ("none", "none"),
            ("syntax", "syntax"),
            ("syntax+model:smollm2-135m=constant", "syntax+model:"),
        ):
            r = _post(server, backplan={"verifier": spec})
            assert r.status_code == 200, r.text
            assert r.json()["backtrack"]["verifier"].startswith(name), r.json()["backtrack"]
        r = _post(server, backplan={"verifier": "latent=constant"})
        assert r.status_code == 400 and "latent" in r.json()["error"]["message"]
        r = _post(server, backplan={"verifier": "model:qwen2.5-coder-0.5b=constant"})
        assert r.status_code == 400 and "did not load" in r.json()["error"]["message"]


def test_latent_server_reads_hidden_states() -> None:
    with running(LATENT_FLAGS.split()) as server:
        r = _post(server, seed=1)
        assert r.status_code == 200, r.text
        bt = r.json()["backtrack"]
        assert bt["verifier"].startswith("latent") and bt["strategy"] == "vgb"
        r = _post(server, backplan={"verifier": "latent=constant+syntax", "strategy": "threshold"})
        assert r.status_code == 200, r.text
        r = _post(server, backplan={"verifier": "none", "strategy": "plain"})
        assert r.status_code == 200 and r.json()["backtrack"]["verifier"] == "none"
