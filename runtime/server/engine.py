"""The server's core: one model, a batch engine of parallel slots, a bounded queue in front.

Each admitted request gets a slot and a thread of its own that runs a fresh
:class:`~runtime.generation.Runtime` (its own verifier and strategy) on that slot; the
:class:`~runtime.engine.batch.BatchEngine` decodes all busy slots together. The thread talks to
the event loop through an asyncio queue of events (started, committed text, finished, failed).
A request is stopped between decodes when its client goes away or its time is up: its slot's
context is wrapped so the next decode raises, which ends the generation and frees the slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from runtime.engine.batch import BatchEngine
from runtime.engine.grammar import Grammar
from runtime.engine.llama import Model, gpu_offload_supported
from runtime.errors import BackplanError, UsageError
from runtime.generation import Generation, GenerationStream, Runtime, RuntimeSettings
from runtime.models.fetch import model_path
from runtime.models.registry import lookup
from runtime.samplers.logprobs import TokenLogprob
from runtime.server.errors import APIError, from_backplan
from runtime.server.jobs import (
    Chunk,
    Failed,
    Finished,
    GenerationRequest,
    GuardedSlot,
    Job,
    SlotPool,
    Started,
    StopMatcher,
    Stopped,
)
from runtime.server.metrics import Metrics
from runtime.server.settings import ServerSettings
from runtime.telemetry.meters import make_meter
from runtime.verifiers.base import Verifier
from runtime.verifiers.factory import build_verifier
from runtime.verifiers.registry import SELF
from runtime.verifiers.request_tests import check_tests
from runtime.verifiers.spec import VerifierSpec
from runtime.verifiers.syntax import SyntaxMode

log = logging.getLogger(__name__)

MAX_VERIFIER_PARTS = 4


def within(model: Model, logprobs: list[TokenLogprob], text: str) -> list[TokenLogprob]:
    """The entries of the tokens that lie wholly inside ``text`` (a stop string may cut the
    output short of the generated tokens)."""
    limit = len(text.encode("utf-8"))
    out, used = [], 0
    for lp in logprobs:
        used += len(model.piece(lp.token))
        if used > limit:
            break
        out.append(lp)
    return out


class ServerCore:
    """Everything the routes share: settings, model, engine, slots, metrics."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        spec = lookup(settings.model)
        if spec is not None:
            self.model_id = spec.name
            self._names = {spec.name.casefold(), *(a.casefold() for a in spec.aliases)}
        else:
            ref = settings.model.removeprefix("hf:")
            name = Path(ref).name
            self.model_id = name[:-5] if name.lower().endswith(".gguf") else name
            self._names = {self.model_id.casefold(), name.casefold()}
        self._names.add(settings.model.casefold())
        self.created = int(time.time())
        self.metrics = Metrics(settings.parallel)
        self.model: Model | None = None
        self.engine: BatchEngine | None = None
        self.verifier_models: dict[str, Model] = {}
        self.default_spec = VerifierSpec.parse(settings.verifier)
        self.embeddings = self.default_spec.needs_hidden_states
        self.ready = False
        self.draining = False
        self.load_error: str | None = None
        self.pool = SlotPool(settings.parallel)
        #: per slot, the tokens its KV cache holds after its last request (the prompt cache)
        self._cached: list[list[int]] = [[] for _ in range(settings.parallel)]
        self.loop: asyncio.AbstractEventLoop | None = None
        self._threads: set[threading.Thread] = set()
        self._ewma_s = 2.0

    # -- lifecycle ------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the model (and verifier models), check the default verifier, start the engine."""
        s = self.settings
        try:
            t0 = time.perf_counter()
            model = Model(model_path(s.model))
            self.model = model
            self.metrics.attach_meter(make_meter(gpu_offload=gpu_offload_supported()))
            for name in self.default_spec.verifier_models:
                if name not in self.verifier_models:
                    ref = s.model if name == SELF else name
                    self.verifier_models[name] = Model(model_path(ref))
            check = self._build_verifier(s.verifier)
            if check is not None:
                check.close()
            self.engine = BatchEngine(
                model,
                n_slots=s.parallel,
                n_ctx_per_slot=s.n_ctx,
                embeddings=self.embeddings,
                n_threads=s.n_threads,
            )
            self.ready = True
            log.warning(
                "backplan serve: %s ready in %.1fs (%d slots of %d tokens, verifier %s, "
                "strategy %s)",
                self.model_id,
                time.perf_counter() - t0,
                s.parallel,
                self.engine.n_ctx_per_slot,
                s.verifier,
                s.strategy,
            )
        except BackplanError as exc:
            self.load_error = str(exc)
            log.error("error: %s", exc)
        except Exception as exc:  # noqa: BLE001 - reported on /ready, the server stays up
            self.load_error = f"loading failed: {exc}"
            log.exception("loading failed")

    def close(self) -> None:
        for t in list(self._threads):
            t.join(30)
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        for m in self.verifier_models.values():
            m.close()
        if self.model is not None:
            self.model.close()
            self.model = None

    # -- requests -------------------------------------------------------------------------------
    def require_ready(self) -> None:
        if self.draining:
            raise APIError(
                503,
                "the server is shutting down; retry on another instance",
                code="shutting_down",
                headers={"Retry-After": "5"},
            )
        if not self.ready:
            if self.load_error:
                raise APIError(
                    503, f"the model failed to load: {self.load_error}", code="model_load_failed"
                )
            raise APIError(
                503,
                "the model is still loading; retry in a few seconds",
                code="loading",
                headers={"Retry-After": "2"},
            )

    def check_model(self, name: str | None) -> None:
        if name is None or name.strip().casefold() in self._names:
            return
        raise APIError(
            404,
            f"the model '{name}' is not served here; this server serves '{self.model_id}' "
            "(GET /v1/models)",
            code="model_not_found",
            param="model",
        )

    def check_verifier(self, spec: str, tests: list[str] | None = None) -> str:
        """Validate a per-request verifier spec (and its tests) against what this server can
        build cheaply and was allowed to run; the canonical spelling."""
        where = "backplan.verifier"
        try:
            parsed = VerifierSpec.parse(spec)
        except UsageError as exc:
            raise APIError(400, str(exc), param=where) from None
        if tests and parsed.part("tests") is None:
            raise APIError(
                400,
                'backplan.tests are run only by the tests verifier; add "tests" to '
                "backplan.verifier (e.g. syntax+tests)",
                param="backplan.tests",
            )
        if len(parsed.parts) > MAX_VERIFIER_PARTS:
            raise APIError(
                400, f"at most {MAX_VERIFIER_PARTS} stacked verifiers per request", param=where
            )
        own = set(self.default_spec.parts)
        for part in parsed.parts:
            info = part.info
            if info.runs_code and not self.settings.allow_code_execution:
                raise APIError(
                    400,
                    f"the {part.kind} verifier runs model output, which this server does not "
                    "do; the operator can allow it with --allow-code-execution",
                    param=where,
                    code="code_execution_disabled",
                )
            if info.request_checks:
                if not tests:
                    raise APIError(
                        400,
                        'the tests verifier needs the request\'s tests: "backplan": '
                        '{"verifier": "tests", "tests": ["assert f(1) == 2"]}',
                        param="backplan.tests",
                    )
                try:
                    check_tests(tests)
                except UsageError as exc:
                    raise APIError(400, f"backplan.tests: {exc}", param="backplan.tests") from None
                continue
            if info.arg != "head":
                continue
            if part.kind == "latent" and not self.embeddings:
                raise APIError(
                    400,
                    "this server was started without a latent verifier, so its engine "
                    "reads no hidden states; start it with --verifier latent=HEAD to allow "
                    "latent verifiers per request",
                    param=where,
                )
            if part.kind == "model" and part.model not in self.verifier_models:
                raise APIError(
                    400,
                    f"verifier model:{part.model} needs a second model that this server did "
                    f"not load; start the server with --verifier model:{part.model}=HEAD to "
                    "allow it",
                    param=where,
                )
            if part.arg != "constant" and part not in own:
                raise APIError(
                    400,
                    f"per-request heads for {str(part).partition('=')[0]} are 'constant' or "
                    f"the server's own ({self.settings.verifier}); head files are chosen by "
                    "the operator",
                    param=where,
                )
        return str(parsed)

    def _load_verifier_model(self, ref: str) -> Model:
        try:
            return self.verifier_models[ref]
        except KeyError:
            raise UsageError(f"verifier model {ref} is not loaded on this server") from None

    def _build_verifier(
        self,
        spec: str,
        syntax_mode: SyntaxMode = "fenced",
        tests: Sequence[str] = (),
        *,
        code_before: str = "",
        code_after: str = "",
    ) -> Verifier | None:
        assert self.model is not None
        return build_verifier(
            spec,
            self.model,
            n_ctx=self.settings.n_ctx,
            n_threads=self.settings.n_threads,
            syntax_mode=syntax_mode,
            prefix_code=code_before,
            suffix_code=code_after,
            load_model=self._load_verifier_model,
            checks=tests,
        )

    def retry_after(self) -> str:
        waves = (self.pool.waiting + self.pool.active) / max(1, self.settings.parallel)
        return str(max(1, min(60, math.ceil(self._ewma_s * max(1.0, waves)))))

    def cached_prefix(self, slot: int, prompt: Sequence[int]) -> int:
        """Tokens at the start of ``prompt`` that ``slot``'s KV cache already holds."""
        if not self.settings.prompt_cache:
            return 0
        held = self._cached[slot]
        n = min(len(held), len(prompt))
        i = 0
        while i < n and held[i] == prompt[i]:
            i += 1
        return i

    async def acquire(
        self,
        deadline: float,
        disconnected: Callable[[], Awaitable[bool]] | None,
        prompt: Sequence[int] = (),
    ) -> int:
        pool, m = self.pool, self.metrics
        if not pool.free and pool.waiting >= self.settings.queue:
            m.refused.labels("queue_full").inc()
            raise APIError(
                429,
                f"all {self.settings.parallel} slots are busy and {pool.waiting} requests "
                "are queued; retry after the Retry-After seconds",
                code="queue_full",
                headers={"Retry-After": self.retry_after()},
            )
        m.queue_depth.inc()
        try:
            prefer = (lambda slot: self.cached_prefix(slot, prompt)) if prompt else None
            slot = await pool.acquire(deadline - time.monotonic(), disconnected, prefer)
        except asyncio.TimeoutError:
            m.refused.labels("queue_timeout").inc()
            raise APIError(
                503,
                f"no slot became free within the {self.settings.timeout_s:g}s request "
                "timeout; retry later",
                code="queue_timeout",
                headers={"Retry-After": self.retry_after()},
            ) from None
        finally:
            m.queue_depth.dec()
        m.active.inc()
        return slot

    def start(self, req: GenerationRequest, slot: int) -> Job:
        assert self.loop is not None
        job = Job(self.loop, req, slot)
        thread = threading.Thread(target=self._run, args=(job,), name=f"slot-{slot}", daemon=True)
        self._threads.add(thread)
        thread.start()
        return job

    def _release(self, job: Job, thread: threading.Thread) -> None:
        """On the loop: the job's thread is done with its slot."""
        self._threads.discard(thread)
        seconds = time.monotonic() - job.t_start
        self._ewma_s = 0.8 * self._ewma_s + 0.2 * seconds
        self.metrics.active.dec()
        self.pool.release(job.slot)

    def _run(self, job: Job) -> None:
        """The generation thread of one request."""
        req = job.req
        verifier: Verifier | None = None
        rt: Runtime | None = None
        grammar: Grammar | None = None
        try:
            assert self.engine is not None and self.model is not None
            verifier = self._build_verifier(
                req.verifier,
                req.syntax_mode,
                req.tests,
                code_before=req.code_before,
                code_after=req.code_after,
            )
            settings = RuntimeSettings(  # the verifier is built above, from the request
                model=self.settings.model,
                verifier=req.verifier,
                strategy=req.strategy,  # type: ignore[arg-type]
                n_ctx=self.settings.n_ctx,
                n_threads=self.settings.n_threads,
            )
            rt = Runtime(
                settings,
                model=self.model,
                verifier=verifier,
                ctx=GuardedSlot(self.engine.slot(job.slot), job),
            )
            verifier = None  # the runtime owns it now
            if req.grammar is not None:
                grammar = Grammar(self.model, req.grammar)
            reuse = self.cached_prefix(job.slot, req.prompt_tokens) if req.cache_prompt else 0
            self._cached[job.slot] = []  # unknown until this request ends well
            try:
                stream = rt.stream(
                    req.prompt_tokens,
                    max_tokens=req.max_tokens,
                    sampling=req.sampling,
                    seed=req.seed,
                    reuse_prefix=reuse,
                    logprobs=req.logprobs,
                    grammar=grammar,
                )
            except Stopped:
                if job.timed_out:
                    raise APIError(
                        503,
                        f"the prompt was not evaluated within the {self.settings.timeout_s:g}"
                        "s request timeout; retry later",
                        code="timeout",
                    ) from None
                raise
            job.post(Started())
            fin = self._generate(job, stream)
            if self.settings.prompt_cache:
                self._cached[job.slot] = list(req.prompt_tokens) + fin.tokens
            reason = "cancelled" if job.cancel.is_set() else fin.finish_reason
            self.metrics.record(fin.trace, reason)
            job.post(fin)
        except Stopped:
            pass  # cancelled before it started: nobody waits for an answer
        except APIError as exc:
            job.post(Failed(exc))
        except BackplanError as exc:
            job.post(Failed(from_backplan(exc)))
        except Exception as exc:  # noqa: BLE001 - the server keeps serving
            log.exception("generation failed")
            job.post(Failed(APIError(500, f"generation failed: {exc}")))
        finally:
            job.done = True
            if rt is not None:
                rt.close()
            elif verifier is not None:
                verifier.close()
            if grammar is not None:
                grammar.close()
            thread = threading.current_thread()
            with contextlib.suppress(RuntimeError):
                job.loop.call_soon_threadsafe(self._release, job, thread)

    def _generate(self, job: Job, stream: GenerationStream) -> Finished:
        matcher = StopMatcher(job.req.stop)
        parts: list[str] = []

        def emit(text: str) -> None:
            if text:
                parts.append(text)
                if job.req.stream:
                    job.post(Chunk(text))

        hit = False
        it = iter(stream)
        try:
            for chunk in it:
                out, hit = matcher.feed(chunk)
                emit(out)
                if hit:
                    break
        except Stopped:
            pass
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        if not hit:
            emit(matcher.flush())
        result: Generation | None = stream.result
        if result is None or hit:
            # cut short (stop string, time out): the trace so far
            result = stream.finish()
        trace = result.trace
        finish = "stop" if hit else ("length" if job.timed_out else trace.finish_reason)
        trace.finish_reason = finish
        text = "".join(parts)
        logprobs = None
        if result.logprobs is not None:
            assert self.model is not None
            logprobs = within(self.model, result.logprobs, text)
        return Finished(
            text, trace, finish, job.timed_out, list(result.tokens), logprobs, matcher.hit
        )
