"""Token choice: greedy, bans, seeded sampling."""

from __future__ import annotations

import numpy as np

from runtime.samplers.choice import SamplingParams, TokenChooser


def test_greedy_and_bans() -> None:
    logits = np.array([0.1, 3.0, 2.0, -1.0], dtype=np.float32)
    ch = TokenChooser(SamplingParams(), np.random.default_rng(0))
    assert ch.choose(logits) == 1
    assert ch.choose(logits, {1}) == 2
    assert ch.choose(logits, {1, 2}) == 0


def test_seeded_sampling_is_reproducible_and_respects_bans() -> None:
    logits = np.random.default_rng(3).normal(size=1000).astype(np.float32)
    params = SamplingParams(temperature=1.0, top_k=50, top_p=0.9)
    a = [TokenChooser(params, np.random.default_rng(5)).choose(logits) for _ in range(3)]
    b = [TokenChooser(params, np.random.default_rng(5)).choose(logits) for _ in range(3)]
    assert a == b
    ch = TokenChooser(params, np.random.default_rng(7))
    top = set(np.argsort(-logits)[:50].tolist())
    draws = {ch.choose(logits, {int(np.argmax(logits))}) for _ in range(200)}
    assert int(np.argmax(logits)) not in draws
    assert draws <= top | set(np.argsort(-logits)[:51].tolist())
