"""Test verifiers that implement the real :class:`~runtime.verifiers.base.Verifier` interface
with a rule a test states exactly (shared by the scripted and the llama.cpp sampler tests)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from runtime.verifiers.base import Verifier


class RejectTokens(Verifier):
    """A programmatic verifier (the real interface): a prefix holding a banned id is worth 0."""

    name = "reject-tokens"

    def __init__(self, banned: set[int]) -> None:
        super().__init__()
        self.banned = banned
        self._tokens: list[int] = []
        self._scored = 0

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        self._tokens, self._scored = [], 0
        return 1.0

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        self._tokens.extend(tokens)

    def values(self) -> np.ndarray:
        out = [
            0.0 if self.banned.intersection(self._tokens[: i + 1]) else 1.0
            for i in range(self._scored, len(self._tokens))
        ]
        self._scored = len(self._tokens)
        self.stats.calls += 1
        return np.array(out)

    def rollback(self, n: int) -> None:
        del self._tokens[len(self._tokens) - n :]
        self._scored = min(self._scored, len(self._tokens))


class Accepting(Verifier):
    """Values every prefix 1 and keeps count of the tokens: a base for verifiers that act
    through the interface's other hooks."""

    def __init__(self) -> None:
        super().__init__()
        self._n = self._scored = 0

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        self._n = self._scored = 0
        return 1.0

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        self._n += len(tokens)

    def values(self) -> np.ndarray:
        out = np.ones(self._n - self._scored)
        self._scored = self._n
        return out

    def rollback(self, n: int) -> None:
        self._n -= n
        self._scored = min(self._scored, self._n)


class FailsFirstAnswers(Accepting):
    """A whole-answer check (the real interface): the first ``fails`` answers each fail one
    check, later ones pass. An answer ends where everything is rolled back."""

    name = "fails-first"

    def __init__(self, fails: int) -> None:
        super().__init__()
        self.fails = fails
        self.answers = 0

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        self.answers = 0
        return super().begin(prompt_tokens, prompt_hidden)

    def rollback(self, n: int) -> None:
        super().rollback(n)
        if self._n == 0:
            self.answers += 1

    def answer_failures(self) -> int | None:
        return 1 if self.answers < self.fails else 0
