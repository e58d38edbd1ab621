"""The prefix being generated, kept in step across the main model, the verifier and the caches.

Strategies move it forward (``push``), score it (``score_pending``) and move it back
(``rollback_to``). A rollback truncates the KV cache; the next-token logits at the new end come
from a small cache of copies, so only regenerated tokens are evaluated again. If the logits
there were not kept, the last kept token is re-evaluated once and counted in the trace.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from runtime.engine.grammar import Grammar
from runtime.engine.llama import Model
from runtime.engine.protocol import DecodeContext
from runtime.samplers.choice import TokenChooser
from runtime.samplers.logprobs import TokenLogprob, token_logprob
from runtime.samplers.trace import Trace
from runtime.verifiers.base import Verifier


class LogitsCache:
    """Copies of next-token logits by prefix length; recycles its buffers."""

    def __init__(self, n_vocab: int, keep_last: int) -> None:
        self.n_vocab = n_vocab
        self.keep_last = keep_last
        self._by_len: dict[int, np.ndarray] = {}
        self._pinned: set[int] = set()
        self._free: list[np.ndarray] = []

    def put(self, length: int, logits: np.ndarray, *, pin: bool = False) -> None:
        buf = self._by_len.get(length)
        if buf is None:
            buf = self._free.pop() if self._free else np.empty(self.n_vocab, dtype=np.float32)
            self._by_len[length] = buf
        np.copyto(buf, logits)
        if pin:
            self._pinned.add(length)
        old = length - self.keep_last
        if old >= 0 and old not in self._pinned and old in self._by_len:
            self._free.append(self._by_len.pop(old))

    def get(self, length: int) -> np.ndarray | None:
        return self._by_len.get(length)

    def drop_above(self, length: int) -> None:
        """Logits for longer prefixes are stale once the prefix is cut back to ``length``."""
        for key in [k for k in self._by_len if k > length]:
            self._free.append(self._by_len.pop(key))
            self._pinned.discard(key)

    def pin(self, length: int) -> None:
        if length in self._by_len:
            self._pinned.add(length)


class DecodeState:
    """Main context + verifier + generated tokens, their values and the ban lists."""

    def __init__(
        self,
        model: Model,
        ctx: DecodeContext,
        verifier: Verifier | None,
        chooser: TokenChooser,
        trace: Trace,
        *,
        keep_logits: int = 0,
        top_logprobs: int | None = None,
        grammar: Grammar | None = None,
    ) -> None:
        self.model = model
        self.grammar = grammar  # a constraint on every token drawn (structured output)
        self.ctx = ctx
        self.verifier = verifier
        self.chooser = chooser
        self.trace = trace
        self.want_hidden = bool(verifier and verifier.needs_hidden)
        self.cache = LogitsCache(model.n_vocab, keep_logits) if keep_logits or verifier else None
        self.prompt_len = 0
        self.tokens: list[int] = []
        self.values: list[float] = []  # values[i] = V(tokens[: i + 1]) once scored
        #: None: not asked; else the alternatives to report per token (logprobs[i]: tokens[i])
        self.top_logprobs = top_logprobs
        self.logprobs: list[TokenLogprob] = []
        self.root_value = 1.0
        self._hashes: list[int] = [0]  # _hashes[i] identifies tokens[:i]
        self._bans: dict[int, set[int]] = {}
        self._fresh = True  # ctx's last logits belong to the current end of the prefix
        self._eog_ban: set[int] = (
            set(np.flatnonzero(model.eog_mask).tolist()) if chooser.params.ignore_eos else set()
        )

    # -- setup ----------------------------------------------------------------------------------
    def start(self, prompt: Sequence[int], *, reuse: int = 0) -> None:
        """Evaluate the prompt; ``reuse``: its first tokens are already in the context's KV
        cache (a slot's previous request began the same way), so only the rest is evaluated.
        The last prompt token is always evaluated: its logits and hidden state start the
        generation."""
        t0 = time.perf_counter()
        reuse = max(0, min(reuse, len(prompt) - 1, self.ctx.n_past))
        if reuse:
            self.ctx.truncate(reuse)
            self.ctx.decode(list(prompt[reuse:]))
        else:
            self.ctx.reset()
            self.ctx.decode(list(prompt))
        self.trace.cached_prompt_tokens = reuse
        self.prompt_len = len(prompt)
        self.trace.prompt_tokens = len(prompt)
        t1 = time.perf_counter()
        self.trace.seconds.prefill_s += t1 - t0
        if self.cache is not None:
            self.cache.put(0, self.ctx.logits(), pin=True)
        if self.verifier is not None:
            hidden = self.ctx.hidden()[None, :].copy() if self.want_hidden else None
            self.root_value = self.verifier.begin(prompt, hidden)
            self.trace.seconds.verify_s += time.perf_counter() - t1

    # -- moving forward -------------------------------------------------------------------------
    def next_logits(self) -> np.ndarray:
        if self._fresh:
            return self.ctx.logits()
        n = len(self.tokens)
        cached = self.cache.get(n) if self.cache is not None else None
        if cached is not None:
            return cached
        # not kept: re-evaluate the last token of the prefix (counted in the trace)
        t0 = time.perf_counter()
        last = self.tokens[-1] if n else None
        self.ctx.truncate(self.prompt_len + n - 1)
        if last is None:
            raise RuntimeError("prompt logits must always be cached")  # pragma: no cover
        self.ctx.decode_one(last)
        self.trace.main_reevaluated_tokens += 1
        self.trace.seconds.decode_s += time.perf_counter() - t0
        self._fresh = True
        return self.ctx.logits()

    def sample(self) -> int:
        logits = self.next_logits()
        t0 = time.perf_counter()
        banned = self._bans.get(self._hashes[-1])
        if self._eog_ban:
            banned = self._eog_ban | banned if banned else self._eog_ban
        tok = self.chooser.choose(logits, banned)
        if self.grammar is not None and not self.grammar.allows(tok):
            tok = self.chooser.choose(self.grammar.masked(logits), banned)
        self.trace.seconds.sample_s += time.perf_counter() - t0
        self.trace.generated_tokens += 1
        return tok

    def push(self, token: int, *, keep_logits: bool = True, pin: bool = False) -> None:
        """Append ``token``: evaluate it in the main model and hand it to the verifier."""
        if self.top_logprobs is not None:  # the distribution it was drawn from, before it
            self.logprobs.append(token_logprob(self.next_logits(), token, self.top_logprobs))
        t0 = time.perf_counter()
        self.ctx.decode_one(token)
        t1 = time.perf_counter()
        self.trace.seconds.decode_s += t1 - t0
        if self.grammar is not None:
            self.grammar.accept(token)
        self.tokens.append(token)
        self._hashes.append(hash((self._hashes[-1], token)))
        self._fresh = True
        if self.cache is not None and (keep_logits or pin):
            self.cache.put(len(self.tokens), self.ctx.logits(), pin=pin)
        if self.verifier is not None:
            hidden = self.ctx.hidden()[None, :].copy() if self.want_hidden else None
            self.verifier.extend((token,), hidden)
            self.trace.seconds.verify_s += time.perf_counter() - t1

    def score_pending(self) -> np.ndarray:
        """Ask the verifier for the values of the tokens not yet scored; record them."""
        if self.verifier is None:
            return np.empty(0)
        t0 = time.perf_counter()
        vals = self.verifier.values()
        self.trace.seconds.verify_s += time.perf_counter() - t0
        self.values.extend(float(v) for v in vals)
        return vals

    def value_at(self, length: int) -> float:
        """V(tokens[:length]); the prompt's value for 0. The prefix must have been scored."""
        return self.root_value if length == 0 else self.values[length - 1]

    # -- moving back ----------------------------------------------------------------------------
    def ban(self, position: int, token: int) -> None:
        """Never again choose ``token`` right after ``tokens[:position]``."""
        self._bans.setdefault(self._hashes[position], set()).add(token)

    def ban_end(self, position: int) -> None:
        """Never again end the text right after ``tokens[:position]`` (a verifier refused)."""
        eog = np.flatnonzero(self.model.eog_mask).tolist()
        self._bans.setdefault(self._hashes[position], set()).update(eog)

    def end_refused(self) -> bool:
        """True when the verifier refuses to let the text end here; ending here is then banned
        and the trace counts a rejection."""
        if self.verifier is None or self.verifier.end_ok():
            return False
        self.ban_end(len(self.tokens))
        self.trace.rejected_tokens += 1
        return True

    def rollback_to(self, length: int) -> None:
        n = len(self.tokens) - length
        if n <= 0:
            return
        t0 = time.perf_counter()
        self.ctx.truncate(self.prompt_len + length)
        if self.verifier is not None:
            self.verifier.rollback(n)
        del self.tokens[length:]
        if self.grammar is not None:
            self.grammar.rewind(self.tokens)
        del self._hashes[length + 1 :]
        del self.values[length:]
        del self.logprobs[length:]
        if self.cache is not None:
            self.cache.drop_above(length)
        self._fresh = False
        self.trace.rolled_back_tokens += n
        self.trace.rollbacks += 1
        self.trace.seconds.sample_s += time.perf_counter() - t0

    def is_end(self, token: int) -> bool:
        return self.model.is_eog(token)
