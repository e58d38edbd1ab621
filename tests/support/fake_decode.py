"""A scripted stand-in for llama.cpp that implements the real interface the samplers use.

:class:`ScriptedModel` has the :class:`~runtime.engine.llama.Model` attributes a generation
reads (vocabulary size, pieces, end-of-generation tokens); :class:`ScriptedContext` implements
:class:`~runtime.engine.protocol.DecodeContext`: decode, logits, hidden states, truncate.
Its next-token logits are a bigram table (``table[last_token]``: logits over the vocabulary),
so a test states exactly what the "model" prefers, and every forward evaluation is counted
as llama.cpp's context counts them. Used where the logic is under test, not llama.cpp: the
real engine is tested against SmolLM2 in tests/integration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class ScriptedModel:
    """A vocabulary of single pieces; ``eos`` ends a generation."""

    def __init__(self, pieces: Sequence[str], eos: int) -> None:
        self.path = Path("scripted.gguf")
        self._pieces = [p.encode() for p in pieces]
        self.n_vocab = len(pieces)
        self.n_embd = 4
        self.eos_token = eos
        self.eog_mask = np.zeros(self.n_vocab, dtype=bool)
        self.eog_mask[eos] = True

    def piece(self, token: int) -> bytes:
        return b"" if token == self.eos_token else self._pieces[token]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode()

    def is_eog(self, token: int) -> bool:
        return bool(self.eog_mask[token])

    def ids(self, text: str) -> list[int]:
        """Tokens of ``text``, one piece per character (the test vocabularies are letters)."""
        index = {p.decode(): i for i, p in enumerate(self._pieces)}
        return [index[ch] for ch in text]


class ScriptedContext:
    """One sequence: ``table[last token]`` gives the next-token logits (``default`` after
    tokens the table does not name). Hidden states are the last token one-hot, padded."""

    def __init__(
        self,
        model: ScriptedModel,
        table: Mapping[int, Sequence[float]],
        *,
        default: Sequence[float] | None = None,
        n_ctx: int = 512,
        embeddings: bool = False,
    ) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.embeddings = embeddings
        self.hidden_layer: int | None = None
        self.table = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}
        self.default = np.asarray(
            default if default is not None else np.zeros(model.n_vocab), dtype=np.float32
        )
        self.tokens: list[int] = []
        self.forward_tokens = 0
        self._outputs: list[np.ndarray] = []

    @property
    def n_past(self) -> int:
        return len(self.tokens)

    def _logits_after(self, token: int) -> np.ndarray:
        return self.table.get(token, self.default).copy()

    def decode(self, tokens: Sequence[int], *, all_outputs: bool = False) -> int:
        if self.n_past + len(tokens) > self.n_ctx:
            raise RuntimeError("context full")
        self.tokens.extend(tokens)
        self.forward_tokens += len(tokens)
        outs = tokens if all_outputs else tokens[-1:]
        self._outputs = [self._logits_after(t) for t in outs]
        return len(self._outputs)

    def decode_one(self, token: int) -> None:
        self.decode([token])

    def logits(self, i: int = -1) -> np.ndarray:
        return self._outputs[i]

    def hidden(self, i: int = -1) -> np.ndarray:
        h = np.zeros(self.model.n_embd, dtype=np.float32)
        h[self.tokens[i] % self.model.n_embd] = 1.0
        return h

    def hidden_all(self, n: int) -> np.ndarray:
        return np.stack([self.hidden(-n + j) for j in range(n)])

    def truncate(self, n_keep: int) -> None:
        if not 0 <= n_keep <= self.n_past:
            raise RuntimeError(f"cannot truncate to {n_keep}")
        del self.tokens[n_keep:]
        self._outputs = []

    def reset(self) -> None:
        self.tokens.clear()
        self._outputs = []

    def close(self) -> None:
        pass
