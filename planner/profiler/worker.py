"""One configuration, loaded in its own process, generating on request.

Each configuration lives in a separate process so its memory is its own (a process's peak
resident set or per-process GPU memory is then that configuration's peak) while the runner
interleaves repeats across configurations. The protocol over the pipe is tiny:
``("run", None)`` -> a sample dict; ``("stop", None)`` -> the final memory dict.
"""

from __future__ import annotations

import logging
import signal
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from runtime.errors import BackplanError


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads and how it generates (plain data: crosses the process boundary)."""

    name: str
    model: str
    strategy: str
    verifier: str
    temperature: float
    prompts: tuple[str, ...]
    max_tokens: int
    n_ctx: int
    n_threads: int | None
    prefer_gpu: bool
    watts_per_core: float
    seed: int = 0
    attempts: int | None = None  # the regenerate strategy's (None: its default)
    accept: str | None = None  # the regenerate strategy's rule (None: threshold)


def serve(conn: Connection, spec: WorkerSpec) -> None:
    """Process entry point: load, report ready, then answer run/stop requests."""
    logging.basicConfig(level=logging.WARNING)
    # Ctrl-C reaches the whole process group: the runner handles it and stops the workers,
    # so a worker ignores it rather than printing its own traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve(conn, spec)
    except (EOFError, BrokenPipeError):
        return  # the runner went away (interrupted): nothing to report to
    except BackplanError as exc:
        conn.send(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - report any crash to the parent, then exit
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _serve(conn: Connection, spec: WorkerSpec) -> None:
    from runtime.engine.llama import gpu_offload_supported
    from runtime.generation import Runtime, RuntimeSettings
    from runtime.samplers.choice import SamplingParams
    from runtime.samplers.regenerate import RegenerateParams
    from runtime.telemetry.meters import make_meter

    meter = make_meter(
        prefer_gpu=spec.prefer_gpu,
        gpu_offload=gpu_offload_supported(),
        watts_per_core=spec.watts_per_core,
        announce=False,
    )
    baseline = meter.read()
    settings = RuntimeSettings(
        model=spec.model,
        strategy=spec.strategy,  # type: ignore[arg-type]
        verifier=spec.verifier,
        n_ctx=spec.n_ctx,
        n_threads=spec.n_threads,
        # unset options keep the strategy's defaults (as ``backplan eval`` does)
        regenerate=RegenerateParams.model_validate(
            {
                k: v
                for k, v in (("attempts", spec.attempts), ("accept", spec.accept))
                if v is not None
            }
        ),
    )
    rt = Runtime(settings)
    ver_models = getattr(rt.verifier, "verifiers", [rt.verifier])
    verifier_weights = sum(
        getattr(v, "model", None).size_bytes  # type: ignore[union-attr]
        for v in ver_models
        if getattr(v, "model", None) is not None
    )
    kv = rt.model.kv_bytes_per_token() * rt.ctx.n_ctx
    for v in ver_models:
        vm = getattr(v, "model", None)
        if vm is not None:
            kv += vm.kv_bytes_per_token() * v.ctx.n_ctx  # type: ignore[union-attr]
    prompts = [rt.prompt_tokens(p) for p in spec.prompts]
    sampling = SamplingParams(temperature=spec.temperature)
    loaded = meter.read()
    conn.send(
        (
            "ready",
            {
                "meter": meter.describe(),
                "main_weights_bytes": rt.model.size_bytes,
                "verifier_weights_bytes": verifier_weights,
                "kv_cache_bytes": kv,
                "n_params": rt.model.n_params,
                "verifier_params": sum(
                    getattr(v, "model", None).n_params  # type: ignore[union-attr]
                    for v in ver_models
                    if getattr(v, "model", None) is not None
                ),
                "n_embd": rt.model.n_embd,
                "n_layer": rt.model.n_layer,
                "n_ctx": rt.ctx.n_ctx,
                "baseline_bytes": baseline.memory_bytes,
                "loaded_bytes": loaded.memory_bytes,
            },
        )
    )
    repeat = 0
    while True:
        cmd, _ = conn.recv()
        if cmd == "stop":
            end = meter.read()
            conn.send(
                ("stopped", {"steady_bytes": end.memory_bytes, "peak_bytes": end.peak_memory_bytes})
            )
            rt.close()
            meter.close()
            return
        traces = []
        ttfts = []
        start = meter.read()
        for i, tokens in enumerate(prompts):
            t0 = time.perf_counter()
            stream = rt.stream(
                tokens,
                max_tokens=spec.max_tokens,
                sampling=sampling,
                seed=spec.seed + 1000 * repeat + i,
            )
            first = None
            for _chunk in stream:
                if first is None:
                    first = time.perf_counter() - t0
            assert stream.result is not None
            traces.append(stream.result.trace.model_dump())
            ttfts.append(first if first is not None else time.perf_counter() - t0)
        window = meter.window(start)
        repeat += 1
        conn.send(
            (
                "sample",
                {
                    "traces": traces,
                    "ttft_s": ttfts,
                    "elapsed_s": window.elapsed_s,
                    "energy_j": window.energy_j,
                    "cpu_s": window.cpu_s,
                    "memory_bytes": window.memory_bytes,
                    "peak_bytes": window.peak_memory_bytes,
                },
            )
        )


def describe_error(payload: Any) -> str:
    return str(payload).strip().splitlines()[0] if payload else "unknown error"
