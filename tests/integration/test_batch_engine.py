"""Parallel slots on real llama.cpp: several generations decoded together in one context."""

from __future__ import annotations

import threading

import pytest

from runtime.engine.batch import BatchEngine
from runtime.engine.llama import Model
from runtime.generation import Generation, Runtime, RuntimeSettings
from runtime.samplers.choice import SamplingParams
from runtime.verifiers.syntax import PythonSyntaxVerifier

pytestmark = pytest.mark.integration

PROMPTS = [
    "Write a Python function that adds two numbers.",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
]


def _alone(smol: Model, prompt: str, strategy: str = "plain") -> Generation:
    rt = Runtime(
        RuntimeSettings(strategy=strategy),
        model=smol,  # type: ignore[arg-type]
        verifier=PythonSyntaxVerifier(smol.piece) if strategy != "plain" else None,
    )
    try:
        return rt.generate(rt.prompt_tokens(prompt), max_tokens=32, seed=0)
    finally:
        rt.close()


def test_concurrent_slots_match_their_own_sequential_outputs(smol: Model) -> None:
    expected = [_alone(smol, p) for p in PROMPTS]
    engine = BatchEngine(smol, n_slots=4, n_ctx_per_slot=512, n_threads=2)
    results: list[Generation | None] = [None] * 4
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            rt = Runtime(RuntimeSettings(), model=smol, ctx=engine.slot(i))
            results[i] = rt.generate(
                rt.prompt_tokens(PROMPTS[i]), max_tokens=32, seed=0, sampling=SamplingParams()
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    engine.close()
    assert not errors, errors
    # batching is real: fewer llama_decode calls than tokens evaluated
    assert engine.batches < engine.batched_tokens
    for got, want in zip(results, expected, strict=True):
        assert got is not None
        # greedy decoding of the same prompt: the same text whatever else shares the batch
        # (allow the rare last-token tie a batched matmul may round differently)
        common = sum(1 for a, b in zip(got.tokens, want.tokens, strict=False) if a == b)
        assert common >= min(len(want.tokens), len(got.tokens)) - 1


def test_slot_rollback_only_touches_its_sequence(smol: Model) -> None:
    engine = BatchEngine(smol, n_slots=2, n_ctx_per_slot=256, n_threads=2)
    a, b = engine.slot(0), engine.slot(1)
    toks = smol.tokenize("def add(a, b):\n    return")
    a.decode(toks)
    b.decode(toks)
    a.decode_one(100)
    a.decode_one(101)
    a.truncate(len(toks))  # roll slot 0 back two tokens
    a.decode_one(102)
    b.decode_one(102)
    assert a.n_past == b.n_past == len(toks) + 1
    # same prefix on both sequences now: the same next-token logits
    assert (abs(a.logits() - b.logits()) < 2e-2).all()
    engine.close()
