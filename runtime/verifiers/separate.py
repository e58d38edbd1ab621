"""Separate verifier model: a second GGUF with its own context, KV cache and value head.

This is the seed's "verifier of equal size". It shares the main model's tokenizer, follows the
same prefix, and evaluates its pending tokens in one batch when asked for values, so on a CPU a
block of k tokens costs much less than k single decodes, and on a GPU about one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from runtime.engine.llama import Context, Model
from runtime.errors import HeadError, UsageError
from runtime.verifiers.base import Verifier
from runtime.verifiers.head import ValueHead


class SeparateModelVerifier(Verifier):
    graded = True
    needs_hidden = False

    def __init__(
        self,
        model: Model,
        head: ValueHead,
        *,
        n_ctx: int = 2048,
        block: int = 16,
        n_threads: int | None = None,
        main_vocab: int | None = None,
        label: str = "model",
    ) -> None:
        super().__init__()
        head.check_model(model.n_embd)
        if main_vocab is not None and main_vocab != model.n_vocab:
            raise UsageError(
                f"the verifier model's vocabulary ({model.n_vocab}) differs from the "
                f"main model's ({main_vocab}); pick a verifier of the same family"
            )
        self.model = model
        self.head = head
        self.name = f"model:{label}"
        self.preferred_block = max(1, block)
        self.ctx = Context(
            model,
            n_ctx=n_ctx,
            n_batch=max(64, block),
            embeddings=True,
            n_threads=n_threads,
            hidden_layer=head.metadata.layer,
        )
        self._pending: list[int] = []

    @property
    def threshold(self) -> float:
        return self.head.threshold

    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        t0 = time.perf_counter()
        self.ctx.reset()
        self._pending.clear()
        self.ctx.decode(list(prompt_tokens))
        self.stats.forward_tokens += len(prompt_tokens)
        self.stats.prompt_tokens += len(prompt_tokens)
        value = float(self.head.predict(self.ctx.hidden(-1))[-1])
        self.stats.head_evals += 1
        self.stats.seconds += time.perf_counter() - t0
        return value

    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        self._pending.extend(tokens)

    def values(self) -> np.ndarray:
        if not self._pending:
            return np.empty(0)
        t0 = time.perf_counter()
        n = len(self._pending)
        self.ctx.decode(self._pending, all_outputs=True)
        self._pending.clear()
        out = self.head.predict(self.ctx.hidden_all(n))
        self.stats.calls += 1
        self.stats.forward_tokens += n
        self.stats.head_evals += n
        self.stats.seconds += time.perf_counter() - t0
        return out

    def rollback(self, n: int) -> None:
        drop = min(n, len(self._pending))
        if drop:
            del self._pending[len(self._pending) - drop :]
        rest = n - drop
        if rest:
            if rest > self.ctx.n_past:
                raise HeadError("verifier rolled back past its prompt")
            self.ctx.truncate(self.ctx.n_past - rest)

    def close(self) -> None:
        self.ctx.close()
