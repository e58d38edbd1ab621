"""Several sequences decoded together in one llama.cpp context (parallel slots).

Each slot is a :class:`SlotContext` with the same interface as
:class:`~runtime.engine.llama.Context`, so the samplers and verifiers run unchanged, one
generation per slot, each in its own thread. A slot's ``decode`` does not call llama.cpp
itself: it hands its tokens to the engine's scheduler thread and waits. The scheduler gathers
what the busy slots have submitted (it waits briefly until every busy slot has spoken), packs
it into one batch with each slot's sequence id and positions, runs one ``llama_decode``, copies
each slot's logits (and hidden states) out, and wakes the slots. A batch of k tokens costs far
less than k single decodes, so throughput grows with the number of active slots.

Rollback (``truncate``) removes one sequence's positions from the shared KV cache.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from runtime.engine.llama import Model
from runtime.engine.multiseq import MultiSeqContext, Row
from runtime.errors import ContextOverflowError, EngineError

log = logging.getLogger(__name__)


@dataclass
class _Request:
    slot: int
    tokens: list[int]
    all_outputs: bool
    done: threading.Event = field(default_factory=threading.Event)
    logits: list[np.ndarray] = field(default_factory=list)
    hidden: list[np.ndarray] = field(default_factory=list)
    error: BaseException | None = None
    next_index: int = 0  # tokens already sent to llama.cpp (long prompts span rounds)


class BatchEngine:
    """One context, ``n_slots`` sequences, a scheduler thread that batches their decodes."""

    def __init__(
        self,
        model: Model,
        *,
        n_slots: int,
        n_ctx_per_slot: int = 2048,
        n_batch: int = 512,
        embeddings: bool = False,
        n_threads: int | None = None,
        gather_ms: float = 2.0,
    ) -> None:
        self.model = model
        self.n_slots = n_slots
        self._ctx: MultiSeqContext | None = MultiSeqContext(
            model,
            n_ctx=n_ctx_per_slot * n_slots,
            n_batch=n_batch,
            n_seq=n_slots,
            embeddings=embeddings,
            n_threads=n_threads,
        )
        self.n_ctx_per_slot = self._ctx.n_ctx // n_slots
        self.n_batch = self._ctx.n_batch
        self.embeddings = embeddings
        self._gather_s = gather_ms / 1000.0
        self._cond = threading.Condition()
        self._pending: dict[int, _Request] = {}
        self._busy: set[int] = set()
        self._stop = False
        self._kv_lock = threading.Lock()
        self.batches = 0
        self.batched_tokens = 0
        self._thread = threading.Thread(target=self._loop, name="batch-engine", daemon=True)
        self._thread.start()
        self._slots = [SlotContext(self, i) for i in range(n_slots)]

    def slot(self, i: int) -> SlotContext:
        return self._slots[i]

    # -- slot side --------------------------------------------------------------------------
    def set_busy(self, slot: int, busy: bool) -> None:
        """A busy slot is generating: the scheduler waits (briefly) for its next token."""
        with self._cond:
            if busy:
                self._busy.add(slot)
            else:
                self._busy.discard(slot)
            self._cond.notify_all()

    def submit(self, req: _Request) -> _Request:
        with self._cond:
            if self._stop:
                raise EngineError("the engine is shut down")
            self._pending[req.slot] = req
            self._cond.notify_all()
        req.done.wait()
        if req.error is not None:
            raise req.error
        return req

    def remove(self, slot: int, p0: int) -> None:
        with self._kv_lock:
            if self._ctx is None:
                raise EngineError("the engine is shut down")
            self._ctx.remove(slot, p0)

    # -- scheduler side ---------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    for req in self._pending.values():
                        req.error = EngineError("the engine is shut down")
                        req.done.set()
                    return
                deadline = time.monotonic() + self._gather_s
                while not self._busy.issubset(self._pending) and not self._stop:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                work = list(self._pending.values())
            try:
                finished = self._run(work)
            except BaseException as exc:  # noqa: BLE001 - hand any failure to the waiting slots
                with self._cond:
                    for req in work:
                        self._pending.pop(req.slot, None)
                        req.error = (
                            exc
                            if isinstance(exc, EngineError)
                            else EngineError(f"llama.cpp decode failed: {exc}")
                        )
                        req.done.set()
                continue
            with self._cond:
                for req in finished:
                    self._pending.pop(req.slot, None)
                    req.done.set()

    def _run(self, work: list[_Request]) -> list[_Request]:
        """One llama_decode over as much pending work as fits; return the requests finished."""
        rows: list[Row] = []
        wanting: list[_Request] = []  # the request of each row that keeps an output
        # rows in sequence order: llama.cpp splits a batch whose sequences interleave into
        # more micro-batches (measured: 4 decode rows in slot order 55 ms, shuffled 80 ms)
        for req in sorted(work, key=lambda r: r.slot):
            slot = self._slots[req.slot]
            while req.next_index < len(req.tokens) and len(rows) < self.n_batch:
                i = req.next_index
                want = req.all_outputs or i == len(req.tokens) - 1
                rows.append(Row(req.tokens[i], slot.n_past + i, req.slot, want))
                if want:
                    wanting.append(req)
                req.next_index += 1
        with self._kv_lock:
            if self._ctx is None:
                raise EngineError("the engine is shut down")
            outputs = self._ctx.decode(rows)
        self.batches += 1
        self.batched_tokens += len(rows)
        for req, (logits, hidden) in zip(wanting, outputs, strict=True):
            req.logits.append(logits)
            if hidden is not None:
                req.hidden.append(hidden)
        finished = []
        for req in work:
            if req.next_index >= len(req.tokens):
                finished.append(req)
        return finished

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(5)
        with self._kv_lock:
            if self._ctx is not None:
                self._ctx.close()
                self._ctx = None


class SlotContext:
    """One sequence of a :class:`BatchEngine`, with :class:`Context`'s interface."""

    def __init__(self, engine: BatchEngine, slot: int) -> None:
        self.engine = engine
        self.slot = slot
        self.model = engine.model
        self.n_ctx = engine.n_ctx_per_slot
        self.n_batch = engine.n_batch
        self.embeddings = engine.embeddings
        self.hidden_layer: int | None = None  # the batched contexts tap no layer
        self.n_past = 0
        self.forward_tokens = 0
        self.decode_calls = 0
        self._logits: list[np.ndarray] = []
        self._hidden: list[np.ndarray] = []

    def decode(self, tokens: Sequence[int], *, all_outputs: bool = False) -> int:
        n = len(tokens)
        if n == 0:
            return len(self._logits)
        if self.n_past + n > self.n_ctx:
            raise ContextOverflowError(
                f"{self.n_past + n} tokens do not fit a slot's context "
                f"of {self.n_ctx}; shorten the prompt or lower "
                "max_tokens"
            )
        req = self.engine.submit(_Request(self.slot, list(tokens), all_outputs))
        self.n_past += n
        self.forward_tokens += n
        self.decode_calls += 1
        self._logits, self._hidden = req.logits, req.hidden
        return len(self._logits)

    def decode_one(self, token: int) -> None:
        self.decode((token,))

    def logits(self, i: int = -1) -> np.ndarray:
        return self._logits[i]

    def hidden(self, i: int = -1) -> np.ndarray:
        if not self.embeddings:
            raise EngineError("hidden states need an engine created with embeddings=True")
        return self._hidden[i]

    def hidden_all(self, n: int) -> np.ndarray:
        return np.stack(self._hidden[len(self._hidden) - n :])

    def truncate(self, n_keep: int) -> None:
        if n_keep < 0 or n_keep > self.n_past:
            raise EngineError(f"cannot truncate to {n_keep}: the slot holds {self.n_past}")
        if n_keep < self.n_past:
            self.engine.remove(self.slot, n_keep)
            self.n_past = n_keep

    def reset(self) -> None:
        self.engine.remove(self.slot, 0)
        self.n_past = 0

    def set_busy(self, busy: bool) -> None:
        self.engine.set_busy(self.slot, busy)

    def close(self) -> None:
        """Slots belong to their engine; closing one only frees its sequence."""
        with contextlib.suppress(EngineError):
            self.reset()
