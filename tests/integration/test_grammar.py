"""Structured output on real llama.cpp (SmolLM2-135M): llama.cpp's grammar sampler constrains
every drawn token, and moves back with the sampler's rollbacks (threshold and VGB)."""

from __future__ import annotations

import json

import pytest
from scripted_verifiers import RejectTokens

from runtime.engine.grammar import Grammar, json_object_grammar, json_schema_grammar
from runtime.engine.llama import Model
from runtime.errors import UsageError
from runtime.generation import Generation, Runtime, RuntimeSettings
from runtime.samplers.choice import SamplingParams
from runtime.verifiers.base import Verifier

pytestmark = pytest.mark.integration

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
PROMPT = "Describe a person as JSON with their name and age."


def _generate(
    smol: Model,
    gbnf: str,
    strategy: str = "plain",
    verifier: Verifier | None = None,
    *,
    temperature: float = 0.0,
    seed: int = 0,
) -> Generation:
    rt = Runtime(RuntimeSettings(strategy=strategy), model=smol, verifier=verifier)  # type: ignore[arg-type]
    grammar = Grammar(smol, gbnf)
    try:
        return rt.generate(
            rt.prompt_tokens(PROMPT),
            max_tokens=96,
            seed=seed,
            sampling=SamplingParams(temperature=temperature),
            grammar=grammar,
        )
    finally:
        grammar.close()
        rt.close()


def _check(gen: Generation) -> dict[str, object]:
    assert gen.trace.finish_reason == "stop", gen.text  # the grammar ended it, not the limit
    doc = json.loads(gen.text)
    assert set(doc) == {"name", "age"} and isinstance(doc["age"], int)
    assert isinstance(doc["name"], str) and len(doc["name"]) <= 12
    return doc


def test_the_answer_follows_the_schema(smol: Model) -> None:
    _check(_generate(smol, json_schema_grammar(SCHEMA)))
    doc = json.loads(_generate(smol, json_object_grammar()).text)
    assert isinstance(doc, dict)


def test_a_rollback_rewinds_the_grammar(smol: Model) -> None:
    gbnf = json_schema_grammar(SCHEMA)
    plain = _generate(smol, gbnf)
    # reject the token that opened the name's text: the sampler rolls back over it, the grammar
    # must be back where it was for the next draw (else llama.cpp refuses or the JSON breaks)
    opened = next(t for t in plain.tokens if smol.piece(t).strip(b' "{:\n'))
    gen = _generate(smol, gbnf, "threshold", RejectTokens({opened}))
    assert gen.trace.rollbacks >= 1 and opened not in gen.tokens
    _check(gen)


def test_the_walk_moves_back_and_forth_inside_the_grammar(smol: Model) -> None:
    gbnf = json_schema_grammar(SCHEMA)
    plain = _generate(smol, gbnf)
    banned = {t for t in plain.tokens if smol.piece(t).strip(b' "{:\n')}
    gen = _generate(smol, gbnf, "vgb", RejectTokens(banned), temperature=0.8, seed=3)
    assert gen.trace.rejected_tokens >= 1
    if gen.trace.finish_reason == "stop":
        _check(gen)


def test_a_schema_that_is_no_schema_is_refused(smol: Model) -> None:
    with pytest.raises(UsageError, match="JSON schema"):
        json_schema_grammar({"type": "nonsense"})
    with pytest.raises(UsageError, match="grammar could not be parsed"):
        Grammar(smol, "root ::= (")
    # bounds the converter would write out in full are refused before it runs
    with pytest.raises(UsageError, match="maxLength"):
        json_schema_grammar({"type": "string", "maxLength": 10**9})
    with pytest.raises(UsageError, match="pattern"):
        json_schema_grammar({"type": "string", "pattern": "^a{5000000}$"})
    deep: dict[str, object] = {"type": "string"}
    for _ in range(40):
        deep = {"type": "array", "items": deep}
    with pytest.raises(UsageError, match="deeper"):
        json_schema_grammar(deep)
