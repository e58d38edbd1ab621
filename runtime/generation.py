"""The runtime's front door: load a model and a verifier once, then generate or stream.

``Runtime(RuntimeSettings(...))`` is what the CLI, the profiler and the server use; settings
are a pydantic model and the single source of truth for defaults and help text.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.engine.chat import chat_prompt_tokens
from runtime.engine.grammar import Grammar
from runtime.engine.llama import Context, Model
from runtime.engine.protocol import DecodeContext
from runtime.errors import ContextOverflowError, UsageError
from runtime.models.fetch import model_path
from runtime.models.registry import DEFAULT_MODEL
from runtime.samplers.choice import SamplingParams, TokenChooser
from runtime.samplers.logprobs import TokenLogprob
from runtime.samplers.regenerate import RegenerateParams
from runtime.samplers.state import DecodeState
from runtime.samplers.strategies import (
    STRATEGY_HELP,
    Strategy,
    StrategyName,
    ThresholdParams,
    VGBParams,
    make_strategy,
)
from runtime.samplers.trace import Trace
from runtime.verifiers.base import Verifier, VerifierStats
from runtime.verifiers.factory import SPEC_HELP, build_verifier
from runtime.verifiers.registry import SELF
from runtime.verifiers.spec import VerifierSpec

log = logging.getLogger(__name__)


class RuntimeSettings(BaseModel):
    """What to load and how to decode. Every CLI flag of ``generate`` maps to one field."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        DEFAULT_MODEL, description="Registry name, path to a .gguf, or hf:OWNER/REPO/FILE."
    )
    verifier: str = Field("none", description=SPEC_HELP)
    tests: list[str] = Field(
        default_factory=list,
        description="Tests the 'tests' verifier runs on each answer (Python statements).",
    )
    strategy: StrategyName = Field("plain", description=STRATEGY_HELP)
    n_ctx: int = Field(2048, ge=64, le=131072, description="Context length in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads (default: all cores).")
    n_gpu_layers: int | None = Field(
        None,
        description="Layers to offload (default: all when the build has a GPU backend, else none).",
    )
    syntax_mode: Literal["code", "fenced"] = Field(
        "fenced", description="Syntax verifier: whole output is code, or only Markdown fences."
    )
    verifier_block: int = Field(
        16, ge=1, le=256, description="Tokens a verifier model evaluates per batch."
    )
    threshold: ThresholdParams = Field(default_factory=ThresholdParams)
    vgb: VGBParams = Field(default_factory=VGBParams)
    regenerate: RegenerateParams = Field(default_factory=RegenerateParams)

    @field_validator("verifier")
    @classmethod
    def _spec(cls, spec: str) -> str:
        try:
            return str(VerifierSpec.parse(spec))
        except UsageError as exc:  # as a validation error: the flag is named with it
            raise ValueError(str(exc)) from None


class Generation(BaseModel):
    """A finished generation: its text, its tokens and its trace."""

    model_config = ConfigDict(extra="forbid")

    text: str
    tokens: list[int]
    trace: Trace
    logprobs: list[TokenLogprob] | None = Field(
        None, description="Per output token, when asked: its log-probability and alternatives."
    )


class GenerationStream:
    """Iterate to receive committed text as it becomes final; ``result`` is set at the end."""

    def __init__(
        self,
        runtime: Runtime,
        state: DecodeState,
        strategy: Strategy,
        max_tokens: int,
        t_start: float,
        ver_before: VerifierStats | None,
        fwd_before: int,
    ) -> None:
        self._rt = runtime
        self._state = state
        self._strategy = strategy
        self._max_tokens = max_tokens
        self._t_start = t_start
        self._ver_before = ver_before
        self._fwd_before = fwd_before
        self.result: Generation | None = None

    def __iter__(self) -> Iterator[str]:
        state = self._state
        model = self._rt.model
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        sent = 0
        set_busy = getattr(self._rt.ctx, "set_busy", None)
        try:
            for committed in self._strategy.run(state, self._max_tokens):
                if committed > sent:
                    chunk = decoder.decode(
                        b"".join(model.piece(t) for t in state.tokens[sent:committed])
                    )
                    sent = committed
                    if chunk:
                        yield chunk
        finally:
            if set_busy is not None:  # a batch slot: the scheduler stops waiting for it
                set_busy(False)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail
        self.result = self.finish()

    def finish(self) -> Generation:
        """The generation so far: called at the end, or by a caller that stopped iterating
        (a stop string, a timeout)."""
        state, trace = self._state, self._state.trace
        trace.emitted_tokens = len(state.tokens)
        trace.main_forward_tokens = self._rt.ctx.forward_tokens - self._fwd_before
        ver = self._rt.verifier
        if ver is not None and self._ver_before is not None:
            now, before = ver.stats, self._ver_before
            trace.verifier_calls = now.calls - before.calls
            trace.verifier_forward_tokens = now.forward_tokens - before.forward_tokens
            trace.verifier_prompt_tokens = now.prompt_tokens - before.prompt_tokens
            trace.head_evals = now.head_evals - before.head_evals
            trace.code_runs = now.code_runs - before.code_runs
            trace.code_cpu_s = round(now.code_cpu_s - before.code_cpu_s, 4)
            trace.code_wall_s = round(now.code_wall_s - before.code_wall_s, 4)
            trace.isolation = now.isolation
        trace.seconds.total_s = time.perf_counter() - self._t_start
        text = self._rt.model.detokenize(state.tokens)
        logprobs = None if state.top_logprobs is None else list(state.logprobs)
        return Generation(text=text, tokens=list(state.tokens), trace=trace, logprobs=logprobs)

    def collect(self) -> Generation:
        for _ in self:
            pass
        assert self.result is not None
        return self.result


class Runtime:
    """One loaded main model (plus verifier) ready to generate, one request at a time."""

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        *,
        model: Model | None = None,
        verifier: Verifier | None = None,
        ctx: DecodeContext | None = None,
    ) -> None:
        """``ctx``: a context to generate in (e.g. one slot of a BatchEngine); by default the
        runtime makes its own."""
        self.settings = s = settings or RuntimeSettings()
        self.model_file = model.path if model is not None else model_path(s.model)
        self.model = model or Model(self.model_file, n_gpu_layers=s.n_gpu_layers)
        self._owned: list[Model] = []
        if verifier is None:
            verifier = build_verifier(
                s.verifier,
                self.model,
                n_ctx=s.n_ctx,
                n_threads=s.n_threads,
                syntax_mode=s.syntax_mode,
                block=s.verifier_block,
                load_model=self._load_verifier_model,
                checks=s.tests,
            )
        self.verifier = verifier
        self.strategy = make_strategy(
            s.strategy, threshold=s.threshold, vgb=s.vgb, regenerate=s.regenerate
        )
        needs_hidden = bool(verifier and verifier.needs_hidden)
        layer = verifier.hidden_layer if verifier is not None and needs_hidden else None
        if ctx is not None and needs_hidden and not ctx.embeddings:
            raise UsageError("this verifier reads hidden states: the context needs embeddings")
        if ctx is not None and layer != ctx.hidden_layer:
            raise UsageError(
                f"this verifier's head reads layer {layer}'s output, which this engine's "
                "batched contexts do not tap; run it with `backplan generate` or `backplan "
                "eval`, or use a head fitted on the final hidden state"
            )
        self._own_ctx = ctx is None
        self.ctx: DecodeContext = ctx or Context(
            self.model,
            n_ctx=s.n_ctx,
            n_threads=s.n_threads,
            embeddings=needs_hidden,
            hidden_layer=layer,
        )

    def _load_verifier_model(self, ref: str) -> Model:
        path = self.model_file if ref == SELF else model_path(ref)
        if path == self.model_file:
            log.info(
                "verifier model %s is the main model's file: loading a second copy "
                "(its own weights, context and KV cache, as the seed's setup)",
                ref,
            )
        m = Model(path, n_gpu_layers=self.settings.n_gpu_layers)
        self._owned.append(m)
        return m

    @property
    def verifier_name(self) -> str:
        return self.verifier.name if self.verifier is not None else "none"

    # -- prompts --------------------------------------------------------------------------------
    def prompt_tokens(
        self, prompt: str, *, chat: bool = True, system: str | None = None
    ) -> list[int]:
        if not prompt or not prompt.strip():
            raise UsageError("the prompt is empty; pass the text to continue or a question")
        if chat:
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": prompt})
            return chat_prompt_tokens(self.model, messages)
        return self.model.tokenize(prompt, add_special=True, parse_special=False)

    # -- generation -----------------------------------------------------------------------------
    def stream(
        self,
        prompt_tokens: Sequence[int],
        *,
        max_tokens: int = 128,
        sampling: SamplingParams | None = None,
        seed: int | None = None,
        reuse_prefix: int = 0,
        logprobs: int | None = None,
        grammar: Grammar | None = None,
    ) -> GenerationStream:
        """``reuse_prefix``: the first tokens of ``prompt_tokens`` are already in the context's
        KV cache, from the previous generation in it (the server's prompt cache).
        ``logprobs``: report each output token's log-probability and this many alternatives.
        ``grammar``: every token drawn must keep the output in it (the caller closes it)."""
        if not prompt_tokens:
            raise UsageError("the prompt is empty; pass the text to continue or a question")
        if max_tokens < 1:
            raise UsageError("max_tokens must be at least 1")
        room = self.ctx.n_ctx - len(prompt_tokens)
        if room < 1:
            raise ContextOverflowError(
                f"the prompt has {len(prompt_tokens)} tokens and the context holds "
                f"{self.ctx.n_ctx}; shorten the prompt or raise --n-ctx"
            )
        if max_tokens > room:
            log.info("max_tokens %d clamped to the %d tokens left in the context", max_tokens, room)
            max_tokens = room
        sampling = sampling or SamplingParams()
        if seed is None:
            seed = secrets.randbits(31)
        trace = Trace(strategy=self.strategy.name, verifier=self.verifier_name, seed=seed)
        chooser = TokenChooser(sampling, np.random.default_rng(seed))
        state = DecodeState(
            self.model,
            self.ctx,
            self.verifier,
            chooser,
            trace,
            keep_logits=self.strategy.keep_logits,
            top_logprobs=logprobs,
            grammar=grammar,
        )
        ver_before = dataclasses.replace(self.verifier.stats) if self.verifier else None
        fwd_before = self.ctx.forward_tokens
        t0 = time.perf_counter()
        set_busy = getattr(self.ctx, "set_busy", None)
        if set_busy is not None:
            set_busy(True)
        try:
            state.start(prompt_tokens, reuse=reuse_prefix)
        except BaseException:
            if set_busy is not None:
                set_busy(False)
            raise
        return GenerationStream(self, state, self.strategy, max_tokens, t0, ver_before, fwd_before)

    def generate(self, prompt_tokens: Sequence[int], **kwargs: object) -> Generation:
        return self.stream(prompt_tokens, **kwargs).collect()  # type: ignore[arg-type]

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
        if self._own_ctx:
            self.ctx.close()
        for m in self._owned:
            m.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
