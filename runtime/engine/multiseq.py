"""The adapter for one llama.cpp context shared by several sequences (the server's slots).

Like :mod:`runtime.engine.llama` (the other adapter), this is where ``llama_cpp`` is called:
a batch of (token, position, sequence, wants output) rows is one ``llama_decode``, and a
sequence's rollback one ``llama_memory_seq_rm``. The scheduler that fills the batches
(:mod:`runtime.engine.batch`) sees only this class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from runtime.engine.llama import Model, init_context, llama_lib
from runtime.errors import EngineError


class Row(NamedTuple):
    token: int
    pos: int
    seq: int
    output: bool  # keep this row's logits (and hidden state)


class MultiSeqContext:
    """``n_seq`` sequences (ids 0..n_seq-1) in one KV cache of ``n_ctx`` tokens in all."""

    def __init__(
        self,
        model: Model,
        *,
        n_ctx: int,
        n_batch: int,
        n_seq: int,
        embeddings: bool,
        n_threads: int | None,
    ) -> None:
        lib = llama_lib()
        self.model = model
        self.embeddings = embeddings
        self._ctx = init_context(
            model,
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_seq_max=n_seq,
            embeddings=embeddings,
            n_threads=n_threads,
        )
        if not self._ctx:
            raise EngineError(
                f"llama.cpp could not create a context of {n_ctx} tokens for {n_seq} "
                "sequences; lower --parallel or --n-ctx"
            )
        # llama.cpp may round n_ctx up and clamp n_batch: read back what it uses
        self.n_ctx: int = lib.llama_n_ctx(self._ctx)
        self.n_batch: int = min(n_batch, lib.llama_n_batch(self._ctx))
        self._mem = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(self.n_batch, 0, 1)

    def remove(self, seq: int, p0: int) -> None:
        """Drop sequence ``seq``'s positions >= ``p0`` (a rollback; nothing re-evaluated)."""
        if not llama_lib().llama_memory_seq_rm(self._mem, seq, p0, -1):
            raise EngineError(f"llama.cpp refused to roll back sequence {seq} to {p0}")

    def decode(self, rows: Sequence[Row]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """One forward pass over ``rows`` (at most ``n_batch``); (logits, hidden state) copies
        for each row that asked for output, in order."""
        if len(rows) > self.n_batch:
            raise EngineError(f"{len(rows)} rows exceed the batch of {self.n_batch}")
        lib = llama_lib()
        b = self._batch
        for n, row in enumerate(rows):
            b.token[n] = row.token
            b.pos[n] = row.pos
            b.n_seq_id[n] = 1
            b.seq_id[n][0] = row.seq
            b.logits[n] = 1 if row.output else 0
        b.n_tokens = len(rows)
        rc = lib.llama_decode(self._ctx, b)
        if rc != 0:
            raise EngineError(
                f"llama_decode failed with code {rc} ({len(rows)} tokens in the batch); "
                "the context may be full: lower max_tokens or --parallel"
            )
        n_vocab, n_embd = self.model.n_vocab, self.model.n_embd
        out: list[tuple[np.ndarray, np.ndarray | None]] = []
        for n, row in enumerate(rows):
            if not row.output:
                continue
            ptr = lib.llama_get_logits_ith(self._ctx, n)
            logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()
            hidden = None
            if self.embeddings:
                hp = lib.llama_get_embeddings_ith(self._ctx, n)
                hidden = np.ctypeslib.as_array(hp, shape=(n_embd,)).copy()
            out.append((logits, hidden))
        return out

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            lib = llama_lib()
            lib.llama_batch_free(self._batch)
            lib.llama_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self.close()
