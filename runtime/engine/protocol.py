"""What the samplers need from a context: one sequence's KV cache with decode and rollback.

:class:`~runtime.engine.llama.Context` (a context of its own) and
:class:`~runtime.engine.batch.SlotContext` (one slot of a batched context) both provide it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from runtime.engine.llama import Model


class DecodeContext(Protocol):
    model: Model
    n_ctx: int
    n_past: int
    forward_tokens: int
    embeddings: bool
    #: the layer hidden() reads (None: the final hidden state)
    hidden_layer: int | None

    def decode(self, tokens: Sequence[int], *, all_outputs: bool = False) -> int: ...

    def decode_one(self, token: int) -> None: ...

    def logits(self, i: int = -1) -> np.ndarray: ...

    def hidden(self, i: int = -1) -> np.ndarray: ...

    def hidden_all(self, n: int) -> np.ndarray: ...

    def truncate(self, n_keep: int) -> None: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...
