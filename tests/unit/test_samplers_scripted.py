"""Threshold and VGB logic on a scripted model (tests/support/fake_decode.py), no llama.cpp.

The "model" is a bigram table, so what it prefers after each token is known, and what a
strategy must then do is computed by hand: a rejection rolls back and bans, a VGB walk never
ends in a prefix its verifier values at 0, and every forward evaluation is counted.
"""

from __future__ import annotations

import pytest
from fake_decode import ScriptedContext, ScriptedModel
from scripted_verifiers import RejectTokens

from runtime.generation import Generation, Runtime, RuntimeSettings
from runtime.samplers.choice import SamplingParams
from runtime.samplers.strategies import ThresholdParams, VGBParams
from runtime.verifiers.base import Verifier

A, B, C, NL, EOS = range(5)
MODEL = ScriptedModel(["a", "b", "c", "\n", "</s>"], eos=EOS)
# after a: b (logit 5) before c (3); after b or c: end; a newline leads to a again
TABLE = {
    A: [0, 5, 3, 0, 0],
    B: [0, 0, 0, 0, 6],
    C: [0, 0, 0, 0, 6],
    NL: [6, 0, 0, 0, 0],
}


def _generate(
    strategy: str,
    verifier: Verifier | None,
    *,
    temperature: float = 0.0,
    seed: int = 0,
    max_tokens: int = 8,
    **params: object,
) -> Generation:
    settings = RuntimeSettings(
        strategy=strategy,  # type: ignore[arg-type]
        threshold=ThresholdParams(**params.get("threshold", {})),  # type: ignore[arg-type]
        vgb=VGBParams(**params.get("vgb", {})),  # type: ignore[arg-type]
    )
    ctx = ScriptedContext(MODEL, TABLE)
    rt = Runtime(settings, model=MODEL, verifier=verifier, ctx=ctx)  # type: ignore[arg-type]
    return rt.generate(
        [NL, A], max_tokens=max_tokens, seed=seed, sampling=SamplingParams(temperature=temperature)
    )


def test_plain_greedy_follows_the_table_one_forward_pass_per_token() -> None:
    gen = _generate("plain", None)
    assert gen.tokens == [B] and gen.text == "b"  # then the end: sampled, never emitted
    t = gen.trace
    assert t.emitted_tokens == 1 and t.main_forward_tokens - t.prompt_tokens == 1
    assert t.generated_tokens == 2 and t.finish_reason == "stop"
    assert t.forward_per_emitted == pytest.approx(1.0) and t.rollbacks == 0


def test_threshold_rolls_back_a_rejected_token_bans_it_and_takes_the_next() -> None:
    gen = _generate("threshold", RejectTokens({B}), threshold={"threshold": 0.5})
    assert gen.tokens == [C]  # b is worth 0: rolled back, banned at that prefix; c next
    t = gen.trace
    assert (t.rollbacks, t.rejected_tokens, t.rolled_back_tokens) == (1, 1, 1)
    # b and c evaluated (the prompt's logits are kept: nothing evaluated again); b, c, end drawn
    assert t.main_forward_tokens - t.prompt_tokens == 2 and t.main_reevaluated_tokens == 0
    assert t.generated_tokens == 3


def test_threshold_budget_bounds_the_rejections() -> None:
    gen = _generate(
        "threshold", RejectTokens({B, C}), threshold={"threshold": 0.5, "max_backtracks": 1}
    )
    assert gen.trace.rollbacks == 1  # b rejected once; c is worth 0 too but the budget is spent
    assert gen.tokens == [C]


@pytest.mark.parametrize("seed", range(8))
def test_vgb_never_enters_a_prefix_valued_zero(seed: int) -> None:
    walk = {"action_tokens": 1, "max_steps": 5000, "token_budget": 500}  # never runs out
    gen = _generate("vgb", RejectTokens({B}), temperature=1.0, seed=seed, vgb=walk)
    # b is proposed about 87% of the time from the root, but V(b) = 0: the walk stays at the
    # root (it has no parent to step back to) and proposes again
    assert gen.tokens == [C]
    assert gen.trace.walk_steps > 1


def test_vgb_out_of_budget_finishes_plainly() -> None:
    walk = {"action_tokens": 1, "max_steps": 1}  # one step: then no more walking
    gen = _generate("vgb", RejectTokens({B}), temperature=0.0, vgb=walk)
    assert gen.tokens == [B]  # greedy's choice stands once the walk may not step


def test_vgb_with_a_flat_value_steps_back_about_half_the_time() -> None:
    steps = back = 0
    for seed in range(20):
        gen = _generate(
            "vgb", RejectTokens(set()), temperature=1.0, seed=seed, vgb={"action_tokens": 1}
        )
        steps += gen.trace.walk_steps
        back += gen.trace.rollbacks
    # with V = 1 everywhere, P(back) = V(u) / (V(u) + V(c)) = 1/2 at every step
    assert 0.3 < back / steps < 0.7
