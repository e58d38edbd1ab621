"""Whole-answer decisions: regenerate an answer its verifier values below the threshold.

The first answer is decoded as the request asks (greedy by default); the verifier judges it
as a whole, at its end. While the best answer so far is valued below the threshold and fewer
than ``attempts`` answers were made, another is sampled at ``temperature`` (seeded) from the
prompt; the highest-valued answer is returned (best-of-N by value when the threshold is 1).
Nothing is streamed before the choice. This is the rule ``backplan verifier replay`` simulates
on stored rollouts (``regenerate below threshold, up to N``), where the learned heads' signal
is: at the end of an answer, not in the middle of it.

Stacked with whole-answer checks (``examples``, ``tests``), the checks decide first: an answer
is kept only when it passes them and its value reaches the threshold, and the answers made are
ranked by fewest failed checks, then by value, so the head ranks the answers that tie on the
checks and decides alone where the prompt states none (the replay's ``examples then head``).
The threshold is the graded (learned) members' own, not a 0/1 check's.

``accept="value"`` is VGB with a whole answer as its one action: on a tree whose only level is
the finished answers, the walk from the root moves to answer y with probability proportional
to pi(y) V(y), which is rejection sampling: every answer is sampled at ``temperature`` (the
first too), kept with probability V(y) (0 where it fails a check); after ``attempts`` the one
failing fewest checks, then the highest-valued, is returned. The replay's ``VGB over answers``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime.samplers.choice import TokenChooser
from runtime.samplers.state import DecodeState
from runtime.samplers.strategies import Strategy

#: The temperature answers are redrawn at when the request itself decodes greedily.
RESAMPLE_TEMPERATURE = 0.8


class RegenerateParams(BaseModel):
    """How many whole answers to make, and how to draw the ones after the first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(
        4, ge=1, le=64, description="Most whole answers per request (the first included)."
    )
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Keep an answer valued at least this (default: the verifier's calibrated "
        "threshold; 1 makes every attempt: best-of-N by value).",
    )
    temperature: float | None = Field(
        None,
        ge=0.0,
        le=5.0,
        description="Sampling temperature of the answers after the first (with accept=value, "
        f"of every answer); default: the request's when it samples, else {RESAMPLE_TEMPERATURE}.",
    )
    accept: Literal["threshold", "value"] = Field(
        "threshold",
        description="threshold: keep the first answer passing its checks and valued at least "
        "the threshold (the first decoded as the request asks). value: VGB over whole "
        "answers: every answer sampled at the temperature, kept with probability equal to "
        "its value.",
    )


class RegenerateStrategy(Strategy):
    name = "regenerate"

    def __init__(self, params: RegenerateParams | None = None) -> None:
        self.params = params or RegenerateParams()

    def _answer(self, state: DecodeState, max_tokens: int) -> str:
        while len(state.tokens) < max_tokens:
            tok = state.sample()
            if state.is_end(tok):
                return "stop"
            state.push(tok, keep_logits=False)
        return "length"

    def run(self, state: DecodeState, max_tokens: int) -> Iterator[int]:
        p = self.params
        ver = state.verifier
        trace = state.trace
        threshold = p.threshold
        if threshold is None:
            threshold = ver.answer_threshold if ver is not None else 0.0
        best: tuple[tuple[int, float], list[int], str] | None = None
        sampled = p.accept == "value"  # VGB: the first answer is a proposal like the rest
        redraw_t = p.temperature
        if redraw_t is None:  # the request's own temperature when it samples
            redraw_t = state.chooser.params.temperature or RESAMPLE_TEMPERATURE
        for attempt in range(p.attempts):
            if attempt:
                state.rollback_to(0)
                trace.rejected_tokens += 1
            if (attempt or sampled) and redraw_t != state.chooser.params.temperature:
                state.chooser = TokenChooser(
                    state.chooser.params.model_copy(update={"temperature": redraw_t}),
                    state.chooser.rng,
                )
            finish = self._answer(state, max_tokens)
            if ver is None:
                best = ((0, 1.0), list(state.tokens), finish)
                break
            state.score_pending()
            value = state.value_at(len(state.tokens))
            if finish == "stop" and state.end_refused():
                value = 0.0  # the verifier refuses this answer as a whole
            trace.answer_values.append(round(value, 4))
            rank = (-(ver.answer_failures() or 0), value)  # fewest failed checks, then value
            # VGB keeps this answer with probability equal to its value (never one failing)
            accepted = sampled and rank[0] == 0 and state.chooser.rng.random() < value
            if accepted or best is None or rank > best[0]:
                best = (rank, list(state.tokens), finish)
            if accepted or (not sampled and best[0][0] == 0 and best[0][1] >= threshold):
                break
        assert best is not None
        _, tokens, finish = best
        if tokens != state.tokens:  # an earlier answer was better: put it back
            state.rollback_to(0)
            for tok in tokens:
                state.push(tok, keep_logits=False)
            trace.replayed_tokens += len(tokens)
            state.score_pending()
        trace.finish_reason = finish
        yield len(state.tokens)
        self._final_value(state)
