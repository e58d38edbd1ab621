"""Run the profile: every configuration side by side on the same prompts, repeats interleaved.

Each configuration is loaded once in its own worker process (see :mod:`.worker`); the runner
asks them in turn for one repeat each, so machine noise hits all configurations alike, then
turns the samples into a :class:`~planner.profiler.schema.Profile` with medians, spreads and
ratios to plain.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.profiler.fingerprint import fingerprint
from planner.profiler.schema import (
    BacktrackFigures,
    ComputeFigures,
    ConfigProfile,
    DecodeFigures,
    EnergyFigures,
    MemoryFigures,
    ModelInfo,
    Profile,
    ProfileError,
    ProfileSettings,
    QualityFigures,
    Stat,
)
from planner.profiler.worker import WorkerSpec, describe_error, serve
from runtime.home import home
from runtime.models.registry import DEFAULT_MODEL
from runtime.telemetry.meters import DEFAULT_WATTS_PER_CORE, make_meter

log = logging.getLogger(__name__)

GB = 1e9
SPREAD_WARN_PCT = 15.0

#: Function stubs with one stated example each, asked for as ``backplan eval`` asks (a chat
#: prompt, the stub in a code block): what a coding assistant is given, and what the examples
#: verifier can check. The first complete soonest (``--quick`` uses one).
STUBS = (
    'def merge_sorted(a: list, b: list) -> list:\n    """Merge two sorted lists into one '
    'sorted list.\n    merge_sorted([1, 3], [2]) == [1, 2, 3]\n    """\n',
    'def count_vowels(s: str) -> int:\n    """Count the vowels in s.\n    '
    'count_vowels("hello") == 2\n    """\n',
    'def is_prime(n: int) -> bool:\n    """True when n is a prime number.\n    '
    'is_prime(7) == True\n    """\n',
    'def fib(n: int) -> int:\n    """The n-th Fibonacci number, computed iteratively.\n    '
    'fib(10) == 55\n    """\n',
)


def _prompt(stub: str) -> str:
    from planner.quality.harness import INSTRUCTION

    return f"{INSTRUCTION}\n\n```python\n{stub}```"


@dataclass(frozen=True)
class ProfileConfig:
    """One configuration: strategy + verifier; ``{model}`` and ``{head}`` are filled in."""

    name: str
    strategy: str
    verifier: str
    temperature: float
    description: str
    attempts: int | None = None  # the regenerate strategy's (None: its default)
    accept: Literal["threshold", "value"] | None = None  # its rule (None: threshold)


CONFIGS: dict[str, ProfileConfig] = {
    c.name: c
    for c in (
        ProfileConfig("plain", "plain", "none", 0.0, "no verifier (the reference)"),
        ProfileConfig(
            "latent-threshold",
            "threshold",
            "latent={head}",
            0.0,
            "value head on the main model's hidden state, threshold backtracking",
        ),
        ProfileConfig("latent-vgb", "vgb", "latent={head}", 0.7, "latent head, VGB walk"),
        ProfileConfig(
            "separate-threshold",
            "threshold",
            "model:{model}={head}",
            0.0,
            "separate equal-size verifier model, threshold backtracking",
        ),
        ProfileConfig(
            "separate-vgb",
            "vgb",
            "model:{model}={head}",
            0.7,
            "separate equal-size verifier model, VGB walk",
        ),
        ProfileConfig(
            "syntax-threshold",
            "threshold",
            "syntax",
            0.0,
            "Python-syntax verifier, threshold backtracking",
        ),
        ProfileConfig("syntax-vgb", "vgb", "syntax", 0.7, "Python-syntax verifier, VGB walk"),
        ProfileConfig(
            "examples-threshold",
            "threshold",
            "syntax+examples=8",
            0.0,
            "syntax and the prompt's examples run in the jail, threshold backtracking",
        ),
        ProfileConfig(
            "latent-regenerate",
            "regenerate",
            "latent={head}",
            0.0,
            "latent head judging whole answers: regenerated while below its threshold",
        ),
        ProfileConfig(
            "examples-regenerate",
            "regenerate",
            "syntax+examples=8+latent={head}",
            0.0,
            "the prompt's examples decide first, the latent head ranks whole answers",
        ),
        ProfileConfig(
            "examples-vgb-answers",
            "regenerate",
            "syntax+examples=8+latent={head}",
            0.7,
            "VGB over whole answers: up to 4 sampled, each kept with probability its value "
            "(0 where the prompt's examples fail)",
            attempts=4,
            accept="value",
        ),
        ProfileConfig(
            "examples-vgb-answers-a2",
            "regenerate",
            "syntax+examples=8+latent={head}",
            0.7,
            "VGB over whole answers, at most 2: half the regenerations of the 4-answer walk",
            attempts=2,
            accept="value",
        ),
    )
}


def profile_head(head: str, model: str) -> str:
    """``shipped`` -> the shipped head's file for ``model``, else ``constant`` (logged)."""
    if head != "shipped":
        return head
    from runtime.models.registry import lookup
    from runtime.verifiers.factory import shipped_head_for

    spec = lookup(model)
    path = shipped_head_for(spec.name if spec else None)
    if path is None:
        log.warning(
            "no head is shipped for %s: latent/separate configurations use a constant "
            "head (they measure cost, they never reject)",
            model,
        )
        return "constant"
    log.info("latent/separate configurations use the head shipped for %s: %s", model, path.name)
    return str(path)


class ProfileRequest(BaseModel):
    """What ``backplan profile`` measures. ``quick`` trims prompts and tokens."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="Model to profile.")
    configs: list[str] = Field(
        default_factory=lambda: list(CONFIGS),
        description="Configurations (plain is always included).",
    )
    head: str = Field(
        "shipped",
        description="Head for latent/separate verifiers: a head file, 'shipped' (the head "
        "shipped for the model; constant if none is) or 'constant' (never rejects: cost only).",
    )
    quick: bool = False
    repeats: int = Field(3, ge=3, le=50, description="Repeats per configuration (median).")
    max_tokens: int | None = Field(
        None,
        ge=8,
        le=4096,
        description="Tokens per prompt (default 128: an answer the examples verifier can "
        "check; quick 32).",
    )
    n_prompts: int | None = Field(
        None, ge=1, le=len(STUBS), description="Prompts per repeat (default 2; quick 1)."
    )
    n_ctx: int = Field(1024, ge=256, le=131072)
    quality: int | None = Field(
        None, ge=1, le=164, description="Also measure pass@1 on the first N HumanEval problems."
    )
    quality_dir: str | None = Field(
        None, description="Where per-problem quality results go (default: the home's)."
    )
    n_threads: int | None = Field(None, ge=1, le=512, description="CPU threads (default: all).")
    prefer_gpu: bool = True
    watts_per_core: float = Field(
        DEFAULT_WATTS_PER_CORE, gt=0, description="CPU energy estimate when RAPL is not readable."
    )

    def resolved(self) -> tuple[list[ProfileConfig], list[str], int]:
        unknown = [c for c in self.configs if c not in CONFIGS]
        if unknown:
            raise ProfileError(
                f"unknown configuration {unknown[0]!r}; choose from " + ", ".join(CONFIGS)
            )
        names = ["plain"] + [c for c in self.configs if c != "plain"]
        prompts = [_prompt(s) for s in STUBS[: self.n_prompts or (1 if self.quick else 2)]]
        tokens = self.max_tokens or (32 if self.quick else 128)
        return [CONFIGS[n] for n in dict.fromkeys(names)], prompts, tokens


Progress = Callable[[str, int, int], None]


@contextlib.contextmanager
def _neutral_main() -> Iterator[None]:
    """Spawn workers with an empty ``__main__``.

    A spawned process re-imports the parent's ``__main__``; when the profiler runs inside a
    Streamlit page, a notebook or a test runner that swapped ``__main__``, that would re-run
    someone else's script in every worker.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


class _Worker:
    def __init__(self, ctx: Any, spec: WorkerSpec) -> None:
        self.spec = spec
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=serve, args=(child, spec), daemon=True, name=f"profile-{spec.name}"
        )
        with _neutral_main():
            self.proc.start()
        child.close()
        self.info: dict[str, Any] = {}
        self.samples: list[dict[str, Any]] = []
        self.final: dict[str, Any] = {}

    def expect(self, kind: str, timeout_s: float = 900.0) -> dict[str, Any]:
        if not self.conn.poll(timeout_s):
            raise ProfileError(
                f"configuration {self.spec.name} did not answer in "
                f"{timeout_s:.0f} s; the machine may be overloaded"
            )
        try:
            got, payload = self.conn.recv()
        except EOFError:
            raise ProfileError(
                f"configuration {self.spec.name} crashed (its process exited "
                f"with {self.proc.exitcode})"
            ) from None
        if got == "error":
            raise ProfileError(f"configuration {self.spec.name} failed: {describe_error(payload)}")
        if got != kind:
            raise ProfileError(f"configuration {self.spec.name} answered {got}, not {kind}")
        return dict(payload)

    def kill(self) -> None:
        """Interrupted: end the process now (nothing it holds is worth waiting for)."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(("stop", None))
                self.final = self.expect("stopped", 120)
            except (ProfileError, OSError, BrokenPipeError):
                pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


def run_profile(req: ProfileRequest, progress: Progress | None = None) -> Profile:
    """Measure every configuration of ``req``; raise :class:`ProfileError` on failure."""
    from runtime.engine.llama import gpu_offload_supported
    from runtime.models.fetch import file_sha256, model_path

    configs, prompts, max_tokens = req.resolved()
    path = model_path(req.model)
    head = profile_head(req.head, req.model)
    t_start = time.perf_counter()
    meter = make_meter(
        prefer_gpu=req.prefer_gpu,
        gpu_offload=gpu_offload_supported(),
        watts_per_core=req.watts_per_core,
    )
    meter_info = meter.describe()
    meter.close()
    ctx = mp.get_context("spawn")
    workers: list[_Worker] = []
    total = len(configs) * (req.repeats + 1)
    done = 0

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(label, done, total)

    try:
        for cfg in configs:
            spec = WorkerSpec(
                name=cfg.name,
                model=str(path),
                strategy=cfg.strategy,
                verifier=cfg.verifier.format(model=path, head=head),
                temperature=cfg.temperature,
                attempts=cfg.attempts,
                accept=cfg.accept,
                prompts=tuple(prompts),
                max_tokens=max_tokens,
                n_ctx=req.n_ctx,
                n_threads=req.n_threads,
                prefer_gpu=req.prefer_gpu,
                watts_per_core=req.watts_per_core,
            )
            w = _Worker(ctx, spec)
            workers.append(w)
            w.info = w.expect("ready")  # load one at a time: loading competes for the cores
            tick(f"loaded {cfg.name}")
        for _ in range(req.repeats):
            for w in workers:
                w.conn.send(("run", None))
                w.samples.append(w.expect("sample"))
                tick(f"{w.spec.name}")
    except BaseException:
        # Ctrl-C or a failure: a worker may be loading and would answer a polite stop only
        # after it (minutes on a busy machine): end them now, then let the error through
        for w in workers:
            w.kill()
        raise
    for w in workers:
        w.stop()
    first = workers[0].info
    model = ModelInfo(
        name=req.model,
        path=str(path),
        sha256=_sha_or_none(file_sha256, path),
        n_params=first["n_params"],
        size_bytes=first["main_weights_bytes"],
        n_embd=first["n_embd"],
        n_layer=first["n_layer"],
        n_ctx=first["n_ctx"],
    )
    entries = [
        _summarise(cfg, w, meter_info, head) for cfg, w in zip(configs, workers, strict=True)
    ]
    warnings = _ratios(entries)
    if req.quality:
        _measure_quality(req, path, configs, entries, progress)
    if meter_info.get("energy_source") == "estimate":
        warnings.append(
            "energy: " + str(meter_info.get("energy_estimate", "estimated, no energy counter"))
        )
    fp = fingerprint(meter_info)
    from planner.capacity.local import measure_local

    local = measure_local(req.n_threads)
    fp["local_measurement"] = {
        "bandwidth_gb_s": round(local.bandwidth_gb_s, 2),
        "fp32_tflops": round(local.fp32_tflops, 4),
        "threads": local.threads,
        "how": "numpy: threads summing a 512 MB array; 1024^2 sgemm",
    }
    return Profile(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        fingerprint=fp,
        model=model,
        settings=ProfileSettings(
            prompts=prompts,
            max_tokens=max_tokens,
            repeats=req.repeats,
            n_threads=req.n_threads,
            quick=req.quick,
        ),
        meter=meter_info,
        configs=entries,
        warnings=warnings,
        elapsed_s=round(time.perf_counter() - t_start, 1),
    )


def crossfit_spec(spec: str) -> str:
    """Head files that have a cross-fit manifest beside them are scored by it on HumanEval:
    a head trained on all problems must never score them."""
    from runtime.verifiers.spec import VerifierPart, VerifierSpec

    parts = []
    for part in VerifierSpec.parse(spec).parts:
        ref = part.arg or ""
        if part.info.arg == "head" and ref.endswith(".npz"):
            manifest = Path(ref[: -len(".npz")] + ".crossfit.json")
            if manifest.is_file():
                part = VerifierPart(kind=part.kind, arg=str(manifest), model=part.model)
        parts.append(part)
    return str(VerifierSpec(tuple(parts)))


def _measure_quality(
    req: ProfileRequest,
    path: Any,
    configs: list[ProfileConfig],
    entries: list[ConfigProfile],
    progress: Progress | None,
) -> None:
    """pass@1 of each configuration on the first ``req.quality`` HumanEval problems."""
    from planner.quality.harness import run_humaneval
    from planner.quality.results import EvalConfig

    for cfg, entry in zip(configs, entries, strict=True):
        ecfg = EvalConfig(
            model=str(path),
            verifier=crossfit_spec(entry.verifier),
            strategy=cfg.strategy,
            temperature=cfg.temperature,
            attempts=cfg.attempts,
            accept=cfg.accept,
        )
        folder = Path(req.quality_dir) if req.quality_dir else home().eval_dir
        out = folder / f"profile-{req.model}-{cfg.name}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()  # a profile measures afresh

        def tick(done: int, total: int, passed: int, name: str = cfg.name) -> None:
            if progress is not None:
                progress(f"quality {name} {done}/{total} ({passed} passed)", 0, 0)

        summary = run_humaneval(ecfg, out, limit=req.quality, progress=tick)
        entry.quality = QualityFigures(
            n=summary["n"],
            passed=summary["passed"],
            pass_at_1=summary["pass_at_1"],
            ci95=summary["ci95"],
            results_file=str(out),
        )


def _sha_or_none(fn: Callable[[Any], str], path: Any) -> str | None:
    try:
        return fn(path)
    except OSError:
        return None


def _stat(values: Sequence[float]) -> Stat:
    med = statistics.median(values)
    spread = 100.0 * (max(values) - min(values)) / med if med else 0.0
    return Stat(median=med, spread_pct=round(spread, 1), values=[round(v, 6) for v in values])


def _summarise(cfg: ProfileConfig, w: _Worker, meter: dict[str, Any], head: str) -> ConfigProfile:
    info, samples = w.info, w.samples
    traces = [t for s in samples for t in s["traces"]]
    emitted = sum(t["emitted_tokens"] for t in traces)
    per_repeat = [sum(t["emitted_tokens"] for t in s["traces"]) for s in samples]
    main_fwd = sum(t["main_forward_tokens"] - t["prompt_tokens"] for t in traces)
    ver_fwd = sum(t["verifier_forward_tokens"] - t["verifier_prompt_tokens"] for t in traces)
    heads = sum(t["head_evals"] for t in traces)
    code_runs = sum(t.get("code_runs", 0) for t in traces)
    code_cpu = sum(t.get("code_cpu_s", 0.0) for t in traces)
    code_wall = sum(t.get("code_wall_s", 0.0) for t in traces)
    per = 1.0 / emitted if emitted else 0.0
    flops = 2.0 * (info["n_params"] * main_fwd + info["verifier_params"] * ver_fwd)
    tok_s = [n / s["elapsed_s"] for n, s in zip(per_repeat, samples, strict=True)]
    ttft = [statistics.median(s["ttft_s"]) for s in samples]
    decode_only = [
        sum(t["emitted_tokens"] for t in s["traces"])
        / max(1e-9, sum(t["seconds"]["total_s"] - t["seconds"]["prefill_s"] for t in s["traces"]))
        for s in samples
    ]
    j_tok = [s["energy_j"] / n if n else 0.0 for n, s in zip(per_repeat, samples, strict=True)]
    base = info["baseline_bytes"]
    peak = w.final.get("peak_bytes") or max(s["peak_bytes"] for s in samples)
    steady = w.final.get("steady_bytes") or samples[-1]["memory_bytes"]
    memory = MemoryFigures(
        source=str(meter.get("memory_source", "rss")),
        baseline_gb=base / GB,
        peak_gb=max(0, peak - base) / GB,
        steady_gb=max(0, steady - base) / GB,
        peak_process_gb=peak / GB,
        main_weights_gb=info["main_weights_bytes"] / GB,
        verifier_weights_gb=info["verifier_weights_bytes"] / GB,
        kv_cache_gb=info["kv_cache_bytes"] / GB,
    )
    hundred = 100.0 * per
    return ConfigProfile(
        name=cfg.name,
        strategy=cfg.strategy,
        verifier=w.spec.verifier,
        head=head if "{head}" in cfg.verifier else None,
        temperature=cfg.temperature,
        attempts=cfg.attempts,
        accept=cfg.accept,
        emitted_tokens=int(statistics.median(per_repeat)),
        memory=memory,
        compute=ComputeFigures(
            main_forward_per_emitted=main_fwd * per,
            verifier_forward_per_emitted=ver_fwd * per,
            forward_per_emitted=(main_fwd + ver_fwd) * per,
            head_evals_per_emitted=heads * per,
            gflops_per_emitted=flops * per / 1e9,
            code_runs_per_emitted=code_runs * per,
            code_cpu_s_per_emitted=code_cpu * per,
            code_wall_s_per_emitted=code_wall * per,
        ),
        decode=DecodeFigures(
            tok_s=_stat(tok_s), ttft_s=_stat(ttft), decode_only_tok_s=_stat(decode_only)
        ),
        energy=EnergyFigures(
            source=str(meter.get("energy_source", "estimate")),
            is_estimate=meter.get("energy_source") == "estimate",
            j_per_token=_stat(j_tok),
        ),
        backtracking=BacktrackFigures(
            rollbacks_per_100=sum(t["rollbacks"] for t in traces) * hundred,
            rejected_per_100=sum(t["rejected_tokens"] for t in traces) * hundred,
            rolled_back_tokens_per_100=sum(t["rolled_back_tokens"] for t in traces) * hundred,
            verifier_calls_per_100=sum(t["verifier_calls"] for t in traces) * hundred,
        ),
        memory_ratio=1.0,
        compute_ratio=1.0,
        decode_ratio=1.0,
        energy_ratio=1.0,
    )


def _ratios(entries: list[ConfigProfile]) -> list[str]:
    plain = entries[0]
    warnings = []
    for e in entries:
        e.memory_ratio = _ratio(e.memory.peak_gb, plain.memory.peak_gb)
        e.compute_ratio = _ratio(e.compute.forward_per_emitted, plain.compute.forward_per_emitted)
        e.decode_ratio = _ratio(e.decode.tok_s.median, plain.decode.tok_s.median)
        e.energy_ratio = _ratio(e.energy.j_per_token.median, plain.energy.j_per_token.median)
        if e.decode.tok_s.spread_pct > SPREAD_WARN_PCT:
            why = (
                "a VGB walk's length is random: raise --repeats for a steadier median"
                if e.strategy == "vgb"
                else "how many answers a VGB walk over answers makes is random: raise "
                "--repeats for a steadier median"
                if e.accept == "value"
                else "the machine was busy: re-run, or raise --repeats"
            )
            warnings.append(
                f"{e.name}: tok/s varies by {e.decode.tok_s.spread_pct:.0f}% across repeats; " + why
            )
    return warnings


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else 0.0
