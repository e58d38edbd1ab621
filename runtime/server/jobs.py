"""A request's life in the server: its events, its job, its guarded slot, the slot pool.

A generation thread talks to the event loop through a :class:`Job`'s queue of events
(started, committed text, finished, failed). :class:`GuardedSlot` wraps a slot's context so
the next decode raises :class:`Stopped` once the job is cancelled or out of time;
:class:`SlotPool` hands free slots to waiting requests, first come, first served.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from runtime.engine.batch import SlotContext
from runtime.samplers.choice import SamplingParams
from runtime.samplers.logprobs import TokenLogprob
from runtime.samplers.trace import Trace
from runtime.server.errors import APIError
from runtime.verifiers.syntax import SyntaxMode


# -- events from a generation thread to the event loop ----------------------------------------
@dataclass
class Started:
    """The prompt is evaluated and generation is under way."""


@dataclass
class Chunk:
    text: str


@dataclass
class Finished:
    text: str
    trace: Trace
    finish_reason: str
    timed_out: bool
    tokens: list[int] = field(default_factory=list)  # what the slot's KV cache holds after it
    logprobs: list[TokenLogprob] | None = None  # of the returned text's tokens, when asked
    stop_word: str = ""  # the stop string that ended it, if one did


@dataclass
class Failed:
    error: APIError


Event = Started | Chunk | Finished | Failed


class ClientGone(Exception):
    """The client disconnected while its request waited."""


class Stopped(Exception):
    """Raised inside a generation thread to end it (client gone or time up)."""


@dataclass
class GenerationRequest:
    prompt_tokens: list[int]
    max_tokens: int
    sampling: SamplingParams
    seed: int | None
    verifier: str
    strategy: str
    syntax_mode: SyntaxMode
    tests: list[str]
    stop: list[str]
    stream: bool
    deadline: float  # time.monotonic() after which the generation is cut short
    cache_prompt: bool = True  # reuse the slot's KV cache for the prompt's common prefix
    logprobs: int | None = None  # None: not asked; else alternatives per output token
    code_before: str = ""  # fim mode: the file around the gap, for the syntax verifier
    code_after: str = ""
    grammar: str | None = None  # GBNF every output token must keep (structured output)


class StopMatcher:
    """Finds stop strings in committed text, holding back what could be the start of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""
        self.hit = ""  # the stop string found, once found

    def feed(self, text: str) -> tuple[str, bool]:
        """Text that can be released now, and whether a stop string was found."""
        self.buf += text
        if self.stops:
            hits = [(i, s) for s in self.stops if (i := self.buf.find(s)) >= 0]
            if hits:
                at, self.hit = min(hits)
                out = self.buf[:at]
                self.buf = ""
                return out, True
        if len(self.buf) <= self.hold:
            return "", False
        cut = len(self.buf) - self.hold
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


class Job:
    """One request's generation: its slot, its thread, its events and its stop flag."""

    def __init__(self, loop: asyncio.AbstractEventLoop, req: GenerationRequest, slot: int) -> None:
        self.loop = loop
        self.req = req
        self.slot = slot
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.cancel = threading.Event()
        self.timed_out = False
        self.done = False
        self.t_start = time.monotonic()

    def post(self, event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown): nobody listens
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)

    def check(self) -> None:
        if self.cancel.is_set():
            raise Stopped("cancelled")
        if time.monotonic() > self.req.deadline:
            self.timed_out = True
            raise Stopped("timed out")

    async def next_event(
        self, disconnected: Callable[[], Awaitable[bool]] | None = None, poll_s: float = 0.5
    ) -> Event:
        """The next event; with ``disconnected``, stop the job if the client goes away."""
        if disconnected is None:
            return await self.events.get()
        while True:
            try:
                return await asyncio.wait_for(self.events.get(), poll_s)
            except asyncio.TimeoutError:
                if await disconnected():
                    self.cancel.set()
                    raise ClientGone() from None


class GuardedSlot:
    """A slot's context that raises between decodes once its job is cancelled or out of time."""

    def __init__(self, slot: SlotContext, job: Job) -> None:
        self._slot = slot
        self._job = job
        self.model = slot.model
        self.n_ctx = slot.n_ctx
        self.n_batch = slot.n_batch
        self.embeddings = slot.embeddings
        self.hidden_layer = slot.hidden_layer

    @property
    def n_past(self) -> int:
        return self._slot.n_past

    @n_past.setter
    def n_past(self, value: int) -> None:
        self._slot.n_past = value

    @property
    def forward_tokens(self) -> int:
        return self._slot.forward_tokens

    @forward_tokens.setter
    def forward_tokens(self, value: int) -> None:
        self._slot.forward_tokens = value

    def decode(self, tokens: Sequence[int], *, all_outputs: bool = False) -> int:
        self._job.check()
        return self._slot.decode(tokens, all_outputs=all_outputs)

    def decode_one(self, token: int) -> None:
        self._job.check()
        self._slot.decode_one(token)

    def logits(self, i: int = -1) -> np.ndarray:
        return self._slot.logits(i)

    def hidden(self, i: int = -1) -> np.ndarray:
        return self._slot.hidden(i)

    def hidden_all(self, n: int) -> np.ndarray:
        return self._slot.hidden_all(n)

    def truncate(self, n_keep: int) -> None:
        self._slot.truncate(n_keep)

    def reset(self) -> None:
        self._slot.reset()

    def set_busy(self, busy: bool) -> None:
        self._slot.set_busy(busy)

    def close(self) -> None:
        self._slot.close()


class SlotPool:
    """Free slots, handed to waiters first come, first served; lives on the event loop."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.free = list(range(n - 1, -1, -1))
        self.waiters: deque[asyncio.Future[int]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self.waiters if not w.done())

    @property
    def active(self) -> int:
        return self.n - len(self.free)

    async def acquire(
        self,
        timeout: float,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
        prefer: Callable[[int], int] | None = None,
    ) -> int:
        """A free slot (the one ``prefer`` scores highest, ties: the most recently freed),
        else the next one released, first come first served."""
        if self.free and not self.waiting:
            if prefer is None:
                return self.free.pop()
            best = max(range(len(self.free)), key=lambda i: (prefer(self.free[i]), i))
            return self.free.pop(best)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self.waiters.append(fut)
        deadline = loop.time() + timeout
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise asyncio.TimeoutError
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), min(left, 0.5))
                except asyncio.TimeoutError:
                    if fut.done():
                        return fut.result()
                    if disconnected is not None and await disconnected():
                        raise ClientGone() from None
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release(fut.result())  # handed a slot just as we gave up: pass it on
            else:
                fut.cancel()
            raise
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(fut)

    def release(self, slot: int) -> None:
        while self.waiters:
            w = self.waiters.popleft()
            if not w.done():
                w.set_result(slot)
                return
        self.free.append(slot)
