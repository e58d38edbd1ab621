"""Intermediate layers read through llama.cpp's eval callback, on the real SmolLM2-135M."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.engine.llama import Context, Model
from runtime.errors import UsageError

pytestmark = pytest.mark.integration

PROMPT = "def add(a, b):\n    return a + b\n"


def test_a_tap_reads_each_layer_without_changing_the_computation(smol: Model) -> None:
    tokens = smol.tokenize(PROMPT)
    mid = smol.n_layer // 2
    plain = Context(smol, n_ctx=256, n_threads=2)
    tapped = Context(smol, n_ctx=256, n_threads=2, layers=[0, mid])
    try:
        plain.decode(tokens)
        tapped.decode(tokens, all_outputs=True)
        assert tapped.tap is not None
        np.testing.assert_allclose(tapped.logits(), plain.logits(), rtol=1e-4, atol=1e-4)
        batch = tapped.tap.rows(mid).copy()
        assert batch.shape == (len(tokens), smol.n_embd)
        assert not np.allclose(batch, tapped.tap.rows(0))  # two layers, two streams
        # the same positions decoded one token at a time give the same rows
        tapped.reset()
        singles = []
        for tok in tokens:
            tapped.decode_one(tok)
            assert tapped.tap.rows(mid).shape == (1, smol.n_embd)
            singles.append(tapped.tap.rows(mid)[0].copy())
        np.testing.assert_allclose(np.asarray(singles), batch, rtol=1e-2, atol=1e-2)
        assert tapped.tap.calls > 0
    finally:
        plain.close()
        tapped.close()


def test_a_layer_the_model_lacks_is_refused(smol: Model) -> None:
    with pytest.raises(UsageError, match=f"layers 0-{smol.n_layer - 1}"):
        Context(smol, n_ctx=64, layers=[smol.n_layer])
    with pytest.raises(UsageError, match="not tapped"):
        ctx = Context(smol, n_ctx=64, layers=[])
        try:
            assert ctx.tap is not None
            ctx.tap.rows(0)
        finally:
            ctx.close()
