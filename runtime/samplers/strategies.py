"""Decoding strategies: plain, threshold backtracking (the seed's), and VGB (arXiv 2510.03149).

A strategy drives a :class:`~runtime.samplers.state.DecodeState` and yields the committed
length each time it grows: tokens below it can no longer be rolled back, so streaming may
release them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from runtime.samplers.choice import TokenChooser
from runtime.samplers.state import DecodeState

if TYPE_CHECKING:
    from runtime.samplers.regenerate import RegenerateParams


#: The strategies a request or a setting may name (one list: runtime settings, CLI, server).
StrategyName = Literal["plain", "threshold", "vgb", "regenerate"]
STRATEGY_HELP = "plain, threshold, vgb, or regenerate (whole answers judged at their end)."


class Strategy(ABC):
    name: str = "strategy"
    #: logits kept per position so a rollback does not re-evaluate (0: none needed)
    keep_logits: int = 0

    @abstractmethod
    def run(self, state: DecodeState, max_tokens: int) -> Iterator[int]:
        """Generate; yield the committed length whenever it grows; set the finish reason."""

    def _final_value(self, state: DecodeState) -> None:
        if state.verifier is not None:
            state.score_pending()
            state.trace.final_value = state.value_at(len(state.tokens))


class PlainStrategy(Strategy):
    """Sample and append; a verifier, if any, only scores (for measurement), never acts."""

    name = "plain"

    def run(self, state: DecodeState, max_tokens: int) -> Iterator[int]:
        state.trace.finish_reason = "length"
        while len(state.tokens) < max_tokens:
            tok = state.sample()
            if state.is_end(tok):
                state.trace.finish_reason = "stop"
                break
            state.push(tok, keep_logits=False)
            yield len(state.tokens)
        self._final_value(state)


class ThresholdParams(BaseModel):
    """The seed's backtracking: reject below the threshold, roll back k, ban, regenerate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Reject values below this (default: the verifier's calibrated threshold).",
    )
    rollback_tokens: int = Field(
        1, ge=1, le=64, description="k: tokens removed per rejection, counting the flagged one."
    )
    max_backtracks: int = Field(16, ge=0, description="Budget of rejections per generation.")
    block: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Tokens generated between verifier calls (default: "
        "the verifier's preferred batch).",
    )
    resample_temperature: float = Field(
        0.8,
        ge=0.0,
        le=5.0,
        description="After a whole answer is rejected (e.g. it fails the prompt's examples), "
        "greedy decoding would only write it again: regenerate at this temperature "
        "(seeded). 0 keeps greedy.",
    )


class ThresholdStrategy(Strategy):
    name = "threshold"

    def __init__(self, params: ThresholdParams | None = None) -> None:
        self.params = params or ThresholdParams()
        self.keep_logits = self.params.rollback_tokens + (self.params.block or 16) + 1

    def run(self, state: DecodeState, max_tokens: int) -> Iterator[int]:
        p = self.params
        ver = state.verifier
        if ver is None:
            yield from PlainStrategy().run(state, max_tokens)
            return
        threshold = ver.threshold if p.threshold is None else p.threshold
        block = p.block or ver.preferred_block
        if state.cache is not None:
            state.cache.keep_last = max(state.cache.keep_last, block + p.rollback_tokens + 1)
        budget = p.max_backtracks
        committed = 0
        trace = state.trace
        while True:
            stopped = False
            start = len(state.tokens)
            while len(state.tokens) < max_tokens and len(state.tokens) - start < block:
                tok = state.sample()
                if state.is_end(tok):
                    stopped = True
                    break
                state.push(tok)
            vals = state.score_pending()
            base = len(state.tokens) - len(vals)
            flagged = -1
            if budget > 0:
                below = np.flatnonzero(vals < threshold)
                if below.size:
                    flagged = base + int(below[0])
            if flagged >= 0:
                budget -= 1
                trace.rejected_tokens += 1
                restart = ver.restart_point(flagged)
                if restart is not None:  # a whole answer failed: write it again, differently
                    replay = ver.replacement(flagged)
                    state.rollback_to(max(committed, restart))
                    if replay and committed <= restart:  # out of tries: the best earlier one
                        for tok in replay:
                            state.push(tok)
                        trace.replayed_tokens += len(replay)
                    else:
                        self._resample(state)
                    continue
                blamed = max(committed, ver.blame(flagged))
                state.ban(blamed, state.tokens[blamed])
                state.rollback_to(max(committed, blamed - p.rollback_tokens + 1))
                continue
            if stopped and budget > 0 and state.end_refused():
                budget -= 1  # the answer may not end here: generation goes on from here
                continue
            cut = ver.complete_at()
            if cut is not None and cut[0] >= committed:
                state.rollback_to(cut[0])  # the answer ended there: what follows is cut
                for tok in cut[1]:
                    state.push(tok)
                trace.replayed_tokens += len(cut[1])
                stopped = True
            done = stopped or len(state.tokens) >= max_tokens
            if done:
                trace.finish_reason = "stop" if stopped else "length"
                fallback = None if stopped or budget == 0 else ver.at_length()
                if fallback is not None and fallback[0] >= committed:
                    # the limit cut an answer off before it could be judged: the verifier puts
                    # back the best one it judged earlier (nothing from there was streamed)
                    state.rollback_to(fallback[0])
                    for tok in fallback[1]:
                        state.push(tok)
                    trace.replayed_tokens += len(fallback[1])
                break
            safe = len(state.tokens) if budget == 0 else len(state.tokens) - p.rollback_tokens + 1
            hold = ver.hold_from() if budget > 0 else None
            if hold is not None:
                safe = min(safe, hold)
            if safe > committed:
                committed = safe
                yield committed
        yield len(state.tokens)
        self._final_value(state)

    def _resample(self, state: DecodeState) -> None:
        params = state.chooser.params
        if params.temperature == 0.0 and self.params.resample_temperature > 0.0:
            state.chooser = TokenChooser(
                params.model_copy(update={"temperature": self.params.resample_temperature}),
                state.chooser.rng,
            )


class VGBParams(BaseModel):
    """Verifier-guided backtracking (VGB): a random walk on the tree of partial generations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action_tokens: int = Field(16, ge=1, le=256, description="Most tokens in one action.")
    line_actions: bool = Field(True, description="An action also ends after a newline.")
    max_steps: int | None = Field(
        None, ge=1, description="Walk steps before finishing plainly (default: 4 x max_tokens)."
    )
    token_budget: float = Field(
        4.0,
        gt=0,
        description="Stop walking back once the walk has sampled this many times max_tokens "
        "tokens; then finish plainly. Bounds VGB's compute when values barely discriminate "
        "(an exact or flat value function backtracks half the time).",
    )
    window: int | None = Field(
        None,
        ge=1,
        description="Never step back more than this many actions below "
        "the deepest point reached, so output can stream; "
        "unset: exact walk, output at the end.",
    )


class VGBStrategy(Strategy):
    """From prefix u the walk proposes a child c ~ pi(. | u) (one action) and moves back with
    probability V(u) / (V(u) + V(c)), else to c: the one-proposal estimate of the
    Sinclair-Jerrum step (docs/architecture.md, "VGB"). The root (or, with a window, the
    committed floor) has no parent: there the walk stays, discarding the child, with that same
    probability, so a child the verifier values at 0 is never entered (the exact walk gives it
    probability pi(c|u) V(c) / D = 0). A finished prefix is accepted with probability 1/2, else
    the walk steps back.
    """

    name = "vgb"

    def __init__(self, params: VGBParams | None = None) -> None:
        self.params = params or VGBParams()
        self.keep_logits = self.params.action_tokens + 1

    def _action(self, state: DecodeState, max_tokens: int) -> bool:
        """Sample one action; return True when it ended the generation (end of text)."""
        p = self.params
        start = len(state.tokens)
        while len(state.tokens) < max_tokens and len(state.tokens) - start < p.action_tokens:
            tok = state.sample()
            if state.is_end(tok):
                self._pin(state, start)
                return True
            state.push(tok, keep_logits=False)
            if p.line_actions and b"\n" in state.model.piece(tok):
                break
        self._pin(state, start)
        return False

    @staticmethod
    def _pin(state: DecodeState, start: int) -> None:
        """Keep the logits at a new action boundary: the walk may come back to it."""
        if state.cache is not None and len(state.tokens) > start:
            state.cache.put(len(state.tokens), state.ctx.logits(), pin=True)

    def run(self, state: DecodeState, max_tokens: int) -> Iterator[int]:
        p = self.params
        ver = state.verifier
        rng: np.random.Generator = state.chooser.rng
        max_steps = p.max_steps or 4 * max_tokens
        budget_tokens = p.token_budget * max_tokens
        bounds = [0]  # token length at each depth of the walk
        ended = [False]  # whether the prefix at that depth is finished (end of text)
        deepest = 0
        floor = 0
        steps = 0
        trace = state.trace
        while True:
            depth = len(bounds) - 1
            length = bounds[-1]
            leaf = ended[-1] or length >= max_tokens
            if leaf:
                exhausted = steps >= max_steps or trace.generated_tokens >= budget_tokens
                if depth <= floor or exhausted or rng.random() < 0.5:
                    trace.finish_reason = "stop" if ended[-1] else "length"
                    break
                steps += 1
                trace.rejected_tokens += 1
                state.rollback_to(bounds[-2])
                bounds.pop()
                ended.pop()
                continue
            end = self._action(state, max_tokens)
            steps += 1
            if ver is not None:
                vals = state.score_pending()
                v_child = float(vals[-1]) if len(vals) else state.value_at(length)
                if end and state.end_refused():
                    v_child = 0.0  # ending there is refused: the walk does not enter it
            else:
                v_child = 1.0
            go_back = stay = False
            walking = steps < max_steps and trace.generated_tokens < budget_tokens
            if walking and ver is not None:
                v_here = state.value_at(length)
                total = v_here + v_child
                if depth > floor:
                    p_back = 0.5 if total <= 0.0 else v_here / total
                    go_back = bool(rng.random() < p_back)
                elif total > 0.0:  # no parent: the same odds keep the walk where it is
                    stay = bool(rng.random() < v_here / total)
            if stay:
                trace.rejected_tokens += 1
                state.rollback_to(length)
                continue
            if go_back:
                trace.rejected_tokens += 1
                state.rollback_to(bounds[-2])
                bounds.pop()
                ended.pop()
                continue
            bounds.append(len(state.tokens))
            ended.append(end)
            if len(bounds) - 1 > deepest:
                deepest = len(bounds) - 1
                if p.window is not None and deepest - p.window > floor:
                    floor = deepest - p.window
                    yield bounds[floor]
        trace.walk_steps = steps
        yield len(state.tokens)
        self._final_value(state)


def make_strategy(
    name: str,
    *,
    threshold: ThresholdParams | None = None,
    vgb: VGBParams | None = None,
    regenerate: RegenerateParams | None = None,
) -> Strategy:
    from runtime.errors import UsageError
    from runtime.samplers.regenerate import RegenerateStrategy

    if name == "plain":
        return PlainStrategy()
    if name == "threshold":
        return ThresholdStrategy(threshold)
    if name == "vgb":
        return VGBStrategy(vgb)
    if name == "regenerate":
        return RegenerateStrategy(regenerate)
    raise UsageError(f"unknown strategy {name!r}; choose plain, threshold, vgb or regenerate")
