"""A stack of verifiers: the value of a prefix is the product of its verifiers' values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from runtime.errors import UsageError
from runtime.verifiers.base import Verifier, VerifierStats


class StackedVerifier(Verifier):
    """All checks must pass: values multiply, so any hard reject (0) rejects the prefix."""

    def __init__(self, verifiers: Sequence[Verifier]) -> None:
        super().__init__()
        self.verifiers = list(verifiers)
        self.name = "+".join(v.name for v in self.verifiers)
        self.needs_hidden = any(v.needs_hidden for v in self.verifiers)
        layers = {v.hidden_layer for v in self.verifiers if v.needs_hidden}
        if len(layers) > 1:
            names = sorted("final" if x is None else f"layer {x}" for x in layers)
            raise UsageError(
                f"these verifiers read the hidden states of different layers ({', '.join(names)}); "
                "stack heads fitted on the same layer"
            )
        self.hidden_layer = next(iter(layers), None)
        self.preferred_block = max(v.preferred_block for v in self.verifiers)
        self.graded = any(v.graded for v in self.verifiers)

    @property
    def threshold(self) -> float:
        # the product falls below the strictest member's threshold when that member rejects
        return max(v.threshold for v in self.verifiers)

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        value = 1.0
        for v in self.verifiers:
            value *= v.begin(prompt_tokens, prompt_hidden)
        return value

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        for v in self.verifiers:
            v.extend(tokens, hidden)

    def values(self) -> np.ndarray:
        out: np.ndarray | None = None
        for v in self.verifiers:
            vals = v.values()
            out = vals if out is None else out * vals
        return out if out is not None else np.empty(0)

    def rollback(self, n: int) -> None:
        for v in self.verifiers:
            v.rollback(n)

    def restart_point(self, flagged: int) -> int | None:
        points = [p for v in self.verifiers if (p := v.restart_point(flagged)) is not None]
        return min(points) if points else None

    def blame(self, flagged: int) -> int:
        return min(v.blame(flagged) for v in self.verifiers)

    def replacement(self, flagged: int) -> Sequence[int] | None:
        points = [(p, v) for v in self.verifiers if (p := v.restart_point(flagged)) is not None]
        if not points:
            return None
        return min(points, key=lambda pv: pv[0])[1].replacement(flagged)

    def at_length(self) -> tuple[int, Sequence[int]] | None:
        found = [f for v in self.verifiers if (f := v.at_length()) is not None]
        return min(found, key=lambda f: f[0]) if found else None

    def end_ok(self) -> bool:
        return all(v.end_ok() for v in self.verifiers)

    def complete_at(self) -> tuple[int, Sequence[int]] | None:
        found = [c for v in self.verifiers if (c := v.complete_at()) is not None]
        return min(found, key=lambda c: c[0]) if found else None

    def answer_failures(self) -> int | None:
        found = [f for v in self.verifiers if (f := v.answer_failures()) is not None]
        return sum(found) if found else None

    @property
    def answer_threshold(self) -> float:
        # 0/1 members are 1 on a kept answer, so the product's end value is the graded
        # members' own: their threshold decides (the strictest member's otherwise)
        graded = [v.answer_threshold for v in self.verifiers if v.graded]
        return max(graded) if graded else self.threshold

    def hold_from(self) -> int | None:
        holds = [h for v in self.verifiers if (h := v.hold_from()) is not None]
        return min(holds) if holds else None

    @property  # type: ignore[override]
    def stats(self) -> VerifierStats:
        total = VerifierStats()
        for v in self.verifiers:
            s = v.stats
            total.calls = max(total.calls, s.calls)
            total.forward_tokens += s.forward_tokens
            total.prompt_tokens += s.prompt_tokens
            total.head_evals += s.head_evals
            total.seconds += s.seconds
            total.code_runs += s.code_runs
            total.code_cpu_s += s.code_cpu_s
            total.code_wall_s += s.code_wall_s
            total.isolation = total.isolation or s.isolation
        return total

    @stats.setter
    def stats(self, value: VerifierStats) -> None:  # base __init__ assigns; members own stats
        pass

    def close(self) -> None:
        for v in self.verifiers:
            v.close()
