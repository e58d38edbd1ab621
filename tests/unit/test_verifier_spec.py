"""The one verifier grammar: parsing, properties, canonical and planning forms, refusals."""

from __future__ import annotations

import pytest

from runtime.errors import UsageError
from runtime.verifiers.registry import KINDS, spec_help
from runtime.verifiers.shipped import HEADS_DIR
from runtime.verifiers.spec import VerifierPart, VerifierSpec


def test_parts_and_properties() -> None:
    spec = VerifierSpec.parse(" syntax + examples=8 ")
    assert [str(p) for p in spec.parts] == ["syntax", "examples=8"]
    assert spec.parts[1].count == 8 and VerifierSpec.parse("examples").parts[0].count == 3
    assert spec.runs_code and not spec.needs_hidden_states and not spec.needs_second_model
    latent = VerifierSpec.parse("latent=constant+model:smollm2-135m=h.npz")
    assert latent.needs_hidden_states and latent.needs_second_model and latent.learned
    assert latent.verifier_models == ("smollm2-135m",) and not latent.runs_code
    assert latent.parts[1] == VerifierPart("model", "h.npz", "smollm2-135m")
    assert VerifierSpec.parse("tests").needs_request_checks
    assert VerifierSpec.parse("none").is_none and str(VerifierSpec.parse("")) == "none"


def test_canonical_spelling_round_trips() -> None:
    for text in ("syntax+examples=8", "latent", "model:hf:o/r/f.gguf=h.npz", "tests=2", "none"):
        assert str(VerifierSpec.parse(text)) == text
        assert VerifierSpec.parse(str(VerifierSpec.parse(text))) == VerifierSpec.parse(text)


def test_plan_key_normalises_order_shipped_heads_and_self() -> None:
    assert VerifierSpec.parse("examples=8+syntax").plan_key() == "syntax+examples=8"
    shipped = next(HEADS_DIR.glob("*.crossfit.json"))
    as_run = VerifierSpec.parse(f"latent=runtime/verifiers/heads/{shipped.name}")
    assert as_run.plan_key() == "latent"  # the shipped head, scored cross-fitted
    assert VerifierSpec.parse("latent=mine.npz").plan_key() == "latent=mine.npz"
    copy = VerifierSpec.parse("model:qwen2.5-coder-0.5b")
    assert copy.plan_key("qwen2.5-coder-0.5b") == "model:self"
    assert copy.plan_key("qwen2.5-coder-1.5b") == "model:qwen2.5-coder-0.5b"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("sytax", "did you mean syntax"),
        ("exampels=2", "did you mean examples"),
        ("bogus", "no verifier has that name"),
        ("syntax=3", "takes no value"),
        ("examples=x", "whole number from 0 to 64"),
        ("examples=65", "whole number from 0 to 64"),
        ("latent=", "needs a value"),
        ("model:", "needs a model name"),
        ("syntax++latent", "an empty part"),
        ("syntax+", "an empty part"),
        ("none+syntax", "none stacks with nothing"),
        ("syntax+syntax", "appears twice"),
    ],
)
def test_bad_spellings_are_refused_in_one_line(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as err:
        VerifierSpec.parse(text)
    message = str(err.value)
    assert "\n" not in message and spec_help(short=True) in message


def test_every_kind_is_spelled_in_the_help() -> None:
    for kind in KINDS.values():
        assert kind.spelling in spec_help()
