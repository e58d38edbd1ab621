"""Latent verifier: a value head on the main model's own last hidden state (no second model)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from runtime.errors import HeadError
from runtime.verifiers.base import Verifier
from runtime.verifiers.head import ValueHead


class LatentVerifier(Verifier):
    """Costs one small matrix product per token; the hidden state comes from the same decode.

    A head fitted on whole answers' mean hidden state (``features`` ``mean`` or ``last+mean``)
    reads, at each token, the mean over the answer so far (a running sum per position, so a
    rollback stays exact)."""

    needs_hidden = True
    graded = True
    preferred_block = 1

    def __init__(self, head: ValueHead) -> None:
        super().__init__()
        self.head = head
        self.name = f"latent({head.metadata.kind})"
        self._pending: list[np.ndarray] = []
        self._n = 0
        self._features = head.metadata.features
        self.hidden_layer = head.metadata.layer
        self._cum: list[np.ndarray] = []  # running sums of hidden states (mean heads only)

    @property
    def threshold(self) -> float:
        return self.head.threshold

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        if prompt_hidden is None:
            raise HeadError("the latent verifier needs the main model's hidden states")
        self._pending.clear()
        self._n = 0
        self._cum.clear()
        t0 = time.perf_counter()
        value = float(self.head.predict(self._rows(prompt_hidden[-1:], first=0))[-1])
        self.stats.head_evals += 1
        self.stats.seconds += time.perf_counter() - t0
        return value

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        if hidden is None or len(hidden) != len(tokens):
            raise HeadError("the latent verifier needs one hidden state per token")
        self._pending.append(hidden)
        self._n += len(tokens)
        if self._features in ("mean", "last+mean"):
            total = self._cum[-1] if self._cum else np.zeros(hidden.shape[1], np.float64)
            for row in hidden:
                total = total + row
                self._cum.append(total)

    def _rows(self, hidden: np.ndarray, first: int) -> np.ndarray:
        """The head's input for positions ``first``.. of the answer, given their hidden states
        (position -1 / an empty answer: the prompt's last state stands for the mean)."""
        if self._features in ("prefix", "last"):
            return hidden
        if self._cum and first >= 0:
            n = np.arange(first + 1, first + 1 + len(hidden), dtype=np.float64)[:, None]
            mean = (np.asarray(self._cum[first : first + len(hidden)]) / n).astype(np.float32)
        else:
            mean = hidden
        return mean if self._features == "mean" else np.concatenate([hidden, mean], axis=1)

    def values(self) -> np.ndarray:
        if not self._pending:
            return np.empty(0)
        t0 = time.perf_counter()
        rows = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending.clear()
        out = self.head.predict(self._rows(rows, first=self._n - len(rows)))
        self.stats.calls += 1
        self.stats.head_evals += len(out)
        self.stats.seconds += time.perf_counter() - t0
        return out

    def rollback(self, n: int) -> None:
        pending = sum(len(p) for p in self._pending)
        drop = min(n, pending)
        while drop > 0:
            last = self._pending[-1]
            if len(last) <= drop:
                self._pending.pop()
                drop -= len(last)
            else:
                self._pending[-1] = last[: len(last) - drop]
                drop = 0
        self._n -= n
        del self._cum[max(0, self._n) :]
