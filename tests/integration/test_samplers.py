"""Strategies on real llama.cpp (SmolLM2-135M): rejection, streaming, seeds, exact counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from scripted_verifiers import Accepting, FailsFirstAnswers, RejectTokens

from runtime.engine.llama import Model
from runtime.generation import Generation, Runtime, RuntimeSettings
from runtime.samplers.choice import SamplingParams
from runtime.samplers.strategies import ThresholdParams, VGBParams
from runtime.samplers.trace import Trace
from runtime.verifiers.base import Verifier
from runtime.verifiers.factory import shipped_head_for
from runtime.verifiers.head import ValueHead
from runtime.verifiers.latent import LatentVerifier
from runtime.verifiers.separate import SeparateModelVerifier

pytestmark = pytest.mark.integration

PROMPT = "Write a Python function that adds two numbers."


def _run(
    smol: Model,
    strategy: str,
    verifier: Verifier | None,
    *,
    n: int = 48,
    seed: int = 0,
    temperature: float = 0.0,
    prompt: str = PROMPT,
    **params: object,
) -> tuple[Generation, Trace]:
    settings = RuntimeSettings(
        strategy=strategy,  # type: ignore[arg-type]
        threshold=ThresholdParams(**params.get("threshold", {})),  # type: ignore[arg-type]
        vgb=VGBParams(**params.get("vgb", {})),
    )  # type: ignore[arg-type]
    rt = Runtime(settings, model=smol, verifier=verifier)
    try:
        gen = rt.generate(
            rt.prompt_tokens(prompt),
            max_tokens=n,
            seed=seed,
            sampling=SamplingParams(temperature=temperature),
        )
    finally:
        rt.close()
    return gen, gen.trace


def test_rejected_token_is_avoided_and_counted(smol: Model) -> None:
    plain, _ = _run(smol, "plain", None)
    first = plain.tokens[0]
    gen, trace = _run(smol, "threshold", RejectTokens({first}))
    assert gen.tokens[0] != first
    assert first not in gen.tokens[:1]
    assert trace.rejected_tokens >= 1 and trace.rollbacks >= 1
    assert trace.rolled_back_tokens >= 1


def test_rollback_evaluates_only_regenerated_tokens(smol: Model) -> None:
    plain, _ = _run(smol, "plain", None)
    banned = set(plain.tokens[3:9])  # forces several rejections along the way
    gen, t = _run(
        smol,
        "threshold",
        RejectTokens(banned),
        threshold={"rollback_tokens": 3, "max_backtracks": 8},
    )
    assert t.rollbacks >= 2
    assert t.main_reevaluated_tokens == 0
    # every pushed token was evaluated exactly once: the prompt, the output, the rolled back
    assert t.main_forward_tokens == t.prompt_tokens + t.emitted_tokens + t.rolled_back_tokens


class Recording(Verifier):
    """Passes everything to ``inner`` and keeps the values it returned, in order."""

    def __init__(self, inner: Verifier) -> None:
        super().__init__()
        self.inner = inner
        self.name, self.needs_hidden = inner.name, inner.needs_hidden
        self.preferred_block, self.stats = inner.preferred_block, inner.stats
        self.seen: list[float] = []

    @property
    def threshold(self) -> float:
        return self.inner.threshold

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        value = self.inner.begin(prompt_tokens, prompt_hidden)
        self.seen.append(value)
        return value

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        self.inner.extend(tokens, hidden)

    def values(self) -> np.ndarray:
        out = self.inner.values()
        self.seen.extend(float(v) for v in out)
        return out

    def rollback(self, n: int) -> None:
        self.inner.rollback(n)


def test_an_equal_size_verifier_copy_scores_as_the_latent_head(smol: Model) -> None:
    """The seed's separate-verifier setup with the main model's own weights: a second copy
    reading the same tokens gives the latent head's values (same hidden states, up to
    llama.cpp's batch-split rounding), so it buys nothing for twice the weights' memory."""
    shipped = shipped_head_for("smollm2-135m")
    assert shipped is not None
    head = ValueHead.load(shipped)
    latent = Recording(LatentVerifier(head))
    copy_model = Model(smol.path, n_gpu_layers=0)
    separate = Recording(SeparateModelVerifier(copy_model, head, n_threads=2))
    try:
        a, ta = _run(smol, "threshold", latent, n=40)
        b, tb = _run(smol, "threshold", separate, n=40)
    finally:
        separate.inner.close()  # type: ignore[attr-defined]
        copy_model.close()
    assert a.tokens == b.tokens
    assert len(latent.seen) == len(separate.seen) > len(a.tokens) // 2
    assert np.ptp(latent.seen) > 0.01  # the head tells prefixes apart: equal values mean something
    np.testing.assert_allclose(separate.seen, latent.seen, atol=2e-3)
    # the cost: the copy evaluates every token again; the latent head evaluates none
    assert ta.verifier_forward_tokens == 0
    assert tb.verifier_forward_tokens - tb.verifier_prompt_tokens >= len(b.tokens)


def test_latent_head_fitted_on_test_data_steers_away_from_digits(smol: Model) -> None:
    digit_prompt = "List the numbers from 1 to 30, separated by commas."
    # collect hidden states of prefixes from a plain run; label prefixes ending in a digit 0
    rt = Runtime(
        RuntimeSettings(strategy="plain"),
        model=smol,
        verifier=LatentVerifier(ValueHead.constant(smol.n_embd)),
    )
    hidden, labels = [], []
    for seed in range(3):
        tokens = rt.prompt_tokens(digit_prompt)
        state_rows: list[np.ndarray] = []
        stream = rt.stream(
            tokens, max_tokens=40, seed=seed, sampling=SamplingParams(temperature=0.8)
        )
        gen = stream.collect()
        # re-evaluate to read hidden states of every prefix (test data made here)
        from runtime.engine.llama import Context

        ctx = Context(smol, n_ctx=256, n_threads=2, embeddings=True)
        ctx.decode(tokens + gen.tokens, all_outputs=True)
        state_rows = list(ctx.hidden_all(len(tokens) + len(gen.tokens))[len(tokens) :])
        ctx.close()
        for tok, h in zip(gen.tokens, state_rows, strict=True):
            hidden.append(h)
            labels.append(0 if any(ch.isdigit() for ch in smol.detokenize([tok])) else 1)
    rt.close()
    assert 0 < sum(labels) < len(labels)
    head = ValueHead.fit_logistic(np.array(hidden), np.array(labels), threshold=0.5)

    def digits(text: str) -> int:
        return sum(ch.isdigit() for ch in text)

    plain, _ = _run(smol, "plain", None, n=40, prompt=digit_prompt)
    steered, t = _run(
        smol,
        "threshold",
        LatentVerifier(head),
        n=40,
        prompt=digit_prompt,
        threshold={"max_backtracks": 40},
    )
    assert digits(plain.text) > 5
    assert t.rejected_tokens > 0 and t.head_evals >= t.emitted_tokens
    assert digits(steered.text) < digits(plain.text)


def test_streaming_never_emits_a_token_later_rolled_back(smol: Model) -> None:
    plain, _ = _run(smol, "plain", None)
    banned = set(plain.tokens[2:12:2])
    settings = RuntimeSettings(
        strategy="threshold",
        threshold=ThresholdParams(rollback_tokens=4, block=6, max_backtracks=10),
    )
    rt = Runtime(settings, model=smol, verifier=RejectTokens(banned))
    stream = rt.stream(rt.prompt_tokens(PROMPT), max_tokens=48, seed=0)
    chunks = list(stream)
    rt.close()
    result = stream.result
    assert result is not None and result.trace.rollbacks >= 1
    streamed = ""
    for chunk in chunks:
        streamed += chunk
        assert result.text.startswith(streamed)  # nothing released was ever taken back
    assert streamed == result.text


@pytest.mark.parametrize("strategy", ["threshold", "vgb"])
def test_runs_are_reproducible_under_a_seed(smol: Model, strategy: str) -> None:
    plain, _ = _run(smol, "plain", None)
    verifier_a = RejectTokens(set(plain.tokens[1:6]))
    verifier_b = RejectTokens(set(plain.tokens[1:6]))
    kw = {"n": 40, "seed": 11, "temperature": 0.9}
    a, ta = _run(smol, strategy, verifier_a, **kw)  # type: ignore[arg-type]
    b, tb = _run(smol, strategy, verifier_b, **kw)  # type: ignore[arg-type]
    assert a.tokens == b.tokens
    assert (ta.rollbacks, ta.generated_tokens, ta.walk_steps) == (
        tb.rollbacks,
        tb.generated_tokens,
        tb.walk_steps,
    )


def test_vgb_walk_backtracks_from_rejected_actions(smol: Model) -> None:
    plain, _ = _run(smol, "plain", None)
    gen, t = _run(
        smol,
        "vgb",
        RejectTokens(set(plain.tokens[:4])),
        n=40,
        seed=3,
        temperature=0.7,
        vgb={"action_tokens": 4, "line_actions": False},
    )
    assert t.walk_steps > 0
    assert t.rollbacks >= 1
    # back moves land on action boundaries, whose logits are kept: nothing is re-evaluated
    assert t.main_reevaluated_tokens == 0
    assert t.main_forward_tokens == t.prompt_tokens + t.emitted_tokens + t.rolled_back_tokens


WRONG_EXAMPLE = (
    "Complete the following Python function. Reply with the whole function in one "
    '```python code block.\n\n```python\ndef add(a: int, b: int) -> int:\n    """Add.\n'
    '    >>> add(2, 2)\n    5\n    """\n```'
)


def test_failed_examples_restart_the_code_block_and_hold_the_stream(smol: Model) -> None:
    """A whole answer that fails the prompt's (here impossible) example is written again from
    the code block's first line, at the resample temperature, at most N times; the stream
    releases nothing inside the block until it is judged."""
    from runtime.verifiers.examples import DocExamplesVerifier

    verifier = DocExamplesVerifier(smol.piece, max_rejections=2)
    settings = RuntimeSettings(strategy="threshold")
    rt = Runtime(settings, model=smol, verifier=verifier)
    prompt = rt.prompt_tokens(WRONG_EXAMPLE)
    stream = rt.stream(prompt, max_tokens=96, seed=5)
    chunks = list(stream)
    rt.close()
    result = stream.result
    assert result is not None and verifier.examples
    streamed = ""
    for chunk in chunks:
        streamed += chunk
        assert result.text.startswith(streamed)
    assert streamed == result.text
    assert verifier.rejections == 2  # no add() returns 5 for 2 + 2
    # the third answer is judged too; if it did worse than an earlier one, that one is put back
    # (a rejection), or, cut off by the token limit before it was judged, the best earlier one
    # is (no rejection: the limit ended it)
    replays = 1 if result.trace.replayed_tokens else 0
    assert result.trace.rollbacks == 2 + replays
    assert 2 <= result.trace.rejected_tokens <= 2 + replays
    fence = result.text.find("```")
    assert fence >= 0 and "def add" in result.text[fence:]  # each attempt rewrote the block


class HoldThenSwap(Accepting):
    """A whole-answer verifier (the real interface) that holds everything after position
    ``hold`` and, when the token limit cuts the answer off, hands back ``swap`` in its place."""

    name = "hold-then-swap"

    def __init__(self, hold: int, swap: list[int]) -> None:
        super().__init__()
        self.hold, self.swap = hold, swap
        self.asked = 0

    def hold_from(self) -> int | None:
        return self.hold

    def at_length(self) -> tuple[int, Sequence[int]] | None:
        self.asked += 1
        return (self.hold, self.swap) if self.asked == 1 else None


def test_token_limit_inside_a_held_answer_puts_the_verifiers_choice_back(smol: Model) -> None:
    plain, _ = _run(smol, "plain", None, n=24)
    assert len(plain.tokens) == 24  # greedy runs to the limit on this prompt
    swap = plain.tokens[4:9]  # any tokens the model could write there
    verifier = HoldThenSwap(hold=4, swap=swap)
    rt = Runtime(RuntimeSettings(strategy="threshold"), model=smol, verifier=verifier)
    stream = rt.stream(rt.prompt_tokens(PROMPT), max_tokens=24, seed=1)
    chunks = list(stream)
    rt.close()
    result = stream.result
    assert result is not None and verifier.asked == 1
    assert result.tokens == plain.tokens[:4] + swap  # held tail replaced, nothing after it
    assert result.trace.replayed_tokens == len(swap) and result.trace.finish_reason == "length"
    assert "".join(chunks) == result.text  # nothing streamed was taken back


def _answer_head(n_embd: int, features: str, value: float | None = None, seed: int = 0):  # type: ignore[no-untyped-def]
    """A whole-answer head: constant ``value``, or random weights with a standardisation."""
    from runtime.verifiers.head import HeadMetadata

    width = n_embd * (2 if features == "last+mean" else 1)
    rng = np.random.default_rng(seed)
    md = HeadMetadata(n_embd=width, features=features, threshold=0.5)  # type: ignore[arg-type]
    if value is not None:
        logit = float(np.log(value / (1 - value)))
        return ValueHead(md, np.zeros((width, 1)), np.array([logit]))
    return ValueHead(
        md,
        rng.normal(0, 0.05, (width, 1)),
        np.zeros(1),
        mean=rng.normal(0, 1, width),
        scale=np.abs(rng.normal(1, 0.1, width)),
    )


def test_regenerate_makes_attempts_until_an_answer_clears_the_threshold(smol: Model) -> None:
    from runtime.samplers.regenerate import RegenerateParams

    low = LatentVerifier(_answer_head(smol.n_embd, "last", value=0.1))
    settings = RuntimeSettings(strategy="regenerate", regenerate=RegenerateParams(attempts=3))
    rt = Runtime(settings, model=smol, verifier=low)
    try:
        gen = rt.generate(rt.prompt_tokens(PROMPT), max_tokens=24, seed=1)
        plain = Runtime(RuntimeSettings(), model=smol)
        greedy = plain.generate(plain.prompt_tokens(PROMPT), max_tokens=24)
        plain.close()
    finally:
        rt.close()
    t = gen.trace
    assert len(t.answer_values) == 3 and t.rejected_tokens == 2  # every answer below 0.5
    assert gen.tokens == greedy.tokens  # all tie: the first (greedy) one is put back
    assert t.generated_tokens > 2 * len(gen.tokens) and t.replayed_tokens == len(gen.tokens)
    high = LatentVerifier(_answer_head(smol.n_embd, "last", value=0.9))
    rt = Runtime(settings, model=smol, verifier=high)
    try:
        once = rt.generate(rt.prompt_tokens(PROMPT), max_tokens=24, seed=1)
    finally:
        rt.close()
    assert len(once.trace.answer_values) == 1 and once.tokens == greedy.tokens


def test_regenerate_stacked_with_checks_lets_checks_decide_first_then_the_head(
    smol: Model,
) -> None:
    from runtime.samplers.regenerate import RegenerateParams
    from runtime.verifiers.stack import StackedVerifier

    def run(fails: int, value: float, attempts: int = 4) -> Generation:
        head = _answer_head(smol.n_embd, "last", value=value)
        stack = StackedVerifier([FailsFirstAnswers(fails), LatentVerifier(head)])
        assert stack.answer_threshold == 0.5 and stack.graded  # the head's, not a 0/1 check's
        settings = RuntimeSettings(
            strategy="regenerate", regenerate=RegenerateParams(attempts=attempts)
        )
        rt = Runtime(settings, model=smol, verifier=stack)
        try:
            return rt.generate(rt.prompt_tokens(PROMPT), max_tokens=16, seed=3)
        finally:
            rt.close()

    # the head values every answer 0.9, above its threshold: only the checks make it go on
    passes_third = run(fails=2, value=0.9)
    assert len(passes_third.trace.answer_values) == 3 and passes_third.trace.rejected_tokens == 2
    assert passes_third.trace.replayed_tokens == 0  # the third answer, in place, is returned
    # every answer fails a check: all made, they tie on the checks, the first is put back
    all_fail = run(fails=9, value=0.9, attempts=3)
    assert len(all_fail.trace.answer_values) == 3
    assert all_fail.trace.replayed_tokens == len(all_fail.tokens)
    # the checks pass at once but the head is below its threshold: the head decides alone
    low = run(fails=0, value=0.1, attempts=3)
    assert len(low.trace.answer_values) == 3


def test_regenerate_by_value_is_vgb_over_whole_answers(smol: Model) -> None:
    """Every answer a sample, kept with probability equal to its value (never one failing a
    check); the replay's ``VGB over answers``."""
    from runtime.samplers.regenerate import RegenerateParams
    from runtime.verifiers.stack import StackedVerifier

    def run(fails: int, value: float, seed: int = 3) -> Generation:
        head = LatentVerifier(_answer_head(smol.n_embd, "last", value=value))
        params = RegenerateParams(attempts=3, accept="value", temperature=1.0)
        settings = RuntimeSettings(strategy="regenerate", regenerate=params)
        rt = Runtime(
            settings, model=smol, verifier=StackedVerifier([FailsFirstAnswers(fails), head])
        )
        try:
            return rt.generate(rt.prompt_tokens(PROMPT), max_tokens=16, seed=seed)
        finally:
            rt.close()

    plain = Runtime(RuntimeSettings(), model=smol)
    try:
        greedy = plain.generate(plain.prompt_tokens(PROMPT), max_tokens=16)
    finally:
        plain.close()
    sure = [run(fails=0, value=0.999, seed=s) for s in range(3)]
    assert all(len(g.trace.answer_values) == 1 for g in sure)  # accepted at once
    assert any(g.tokens != greedy.tokens for g in sure)  # the first answer is a sample
    assert len(run(fails=0, value=1e-4).trace.answer_values) == 3  # (almost) never accepted
    assert len(run(fails=9, value=0.999).trace.answer_values) == 3  # fails its check: never


def test_vgb_over_answers_samples_at_the_requests_temperature(smol: Model) -> None:
    """With no temperature of its own, VGB over answers draws at the request's: its first
    answer is the request's own sample (an eval at --temperature 0.7 samples at 0.7)."""
    from runtime.samplers.choice import SamplingParams
    from runtime.samplers.regenerate import RegenerateParams

    head = LatentVerifier(_answer_head(smol.n_embd, "last", value=0.999))
    settings = RuntimeSettings(
        strategy="regenerate", regenerate=RegenerateParams(attempts=3, accept="value")
    )
    plain = Runtime(RuntimeSettings(), model=smol)
    vgb = Runtime(settings, model=smol, verifier=head)
    try:
        for temperature, seed in ((0.7, 5), (1.3, 6)):
            sampling = SamplingParams(temperature=temperature)
            prompt = plain.prompt_tokens(PROMPT)
            want = plain.generate(prompt, max_tokens=16, sampling=sampling, seed=seed)
            got = vgb.generate(prompt, max_tokens=16, sampling=sampling, seed=seed)
            assert len(got.trace.answer_values) == 1  # accepted at once
            assert got.tokens == want.tokens
    finally:
        vgb.close()
        plain.close()


def _decode_and_read(smol: Model, head: ValueHead, layers: tuple[int, ...] = ()):  # type: ignore[no-untyped-def]
    """Decode HumanEval/0 with ``head`` as a latent verifier, then read the answer as the
    trainer does (tapping ``layers``): (the generation, its answer features)."""
    from planner.quality.dataset import load_humaneval
    from planner.quality.harness import build_prompt
    from planner.verifier_training.answers import answer_features
    from planner.verifier_training.rollouts import Rollout

    problem = load_humaneval()[0]
    rt = Runtime(RuntimeSettings(), model=smol, verifier=LatentVerifier(head))
    try:
        assert rt.ctx.hidden_layer == head.metadata.layer  # the context taps the head's layer
        gen = rt.generate(rt.prompt_tokens(build_prompt(problem)), max_tokens=32)
    finally:
        rt.close()
    rollout = Rollout(
        task_id=problem.task_id,
        sample="s0",
        completion=gen.text,
        tokens=gen.tokens,
        passed=False,
        status="f",
    )
    return gen, answer_features("smollm2-135m", "smollm2-135m", [rollout], layers=layers)


@pytest.mark.parametrize("features", ["last", "mean", "last+mean"])
def test_the_runtime_reads_an_answer_as_the_trainer_did(
    smol: Model, smol_path: object, features: str
) -> None:
    """A head's value of a finished answer is the same whether the latent verifier computed it
    while decoding or the trainer computed it from the stored rollout."""
    head = _answer_head(smol.n_embd, features)
    gen, feats = _decode_and_read(smol, head)
    offline = float(head.predict(feats.matrix(features))[0])
    assert gen.trace.final_value == pytest.approx(offline, abs=2e-3)


def test_a_head_on_a_middle_layer_reads_it_while_decoding_as_the_trainer_did(
    smol: Model, smol_path: object
) -> None:
    """A head fitted on layer 12's output gets that layer from the eval callback while
    decoding; its value of the finished answer is the trainer's, and not the final state's."""
    final = _answer_head(smol.n_embd, "last+mean")
    head = ValueHead(
        final.metadata.model_copy(update={"layer": 12}),
        final.w1,
        final.b1,
        mean=final.mean,
        scale=final.scale,
    )
    gen, feats = _decode_and_read(smol, head, layers=(12,))
    offline = float(head.predict(feats.matrix("last+mean@12"))[0])
    assert gen.trace.final_value == pytest.approx(offline, abs=2e-3)
    on_final = float(final.predict(feats.matrix("last+mean"))[0])
    assert abs(on_final - offline) > 2e-3  # the layer is what the head read
    # a context that does not tap the layer (as the server's batched slots) is refused
    from runtime.engine.llama import Context
    from runtime.errors import UsageError

    untapped = Context(smol, embeddings=True)
    try:
        with pytest.raises(UsageError, match="layer 12"):
            Runtime(RuntimeSettings(), model=smol, verifier=LatentVerifier(head), ctx=untapped)
    finally:
        untapped.close()
