"""Runtime overhead: emitted tokens/s of backplan against plain llama-cpp-python, side by side.

    python benchmarks/runtime_overhead.py [--quick] [--json PATH] [--repeats N] [--tokens N]

Configurations, all in one run on the same prompt and machine, interleaved round-robin so
noise hits them alike; each figure is the median of the repeats:

  llama_cpp   llama-cpp-python's own ``Llama.generate`` (greedy), the baseline
  plain       backplan, plain strategy
  latent      backplan, threshold strategy, latent head that never rejects (cost only)
  separate    backplan, threshold strategy, separate equal-size verifier model (a second copy
              of the same GGUF, its own context; head never rejects), batched every 16 tokens
  vgb_latent  backplan, VGB walk with the never-rejecting latent head (extra row)

``ratio`` is tok/s over ``llama_cpp`` in the same run. The benchmark also measures the
separate verifier's ceiling on this machine: with d = ms per single-token decode and
b = ms per token of a 16-token batch, a verifier that re-reads every token in batches caps
decode at d / (d + b) of plain.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Write a Python function that merges two sorted lists into one sorted list."
BLOCK = 16


def _llama_cpp_runner(path: Path, n_threads: int, n_tokens: int):  # type: ignore[no-untyped-def]
    import llama_cpp

    llm = llama_cpp.Llama(
        str(path), n_ctx=2048, n_threads=n_threads, n_threads_batch=n_threads, verbose=False
    )
    from runtime.engine.chat import render_chat

    # Same prompt tokens as backplan: render with the same template, tokenize with llama-cpp.
    text = render_chat(_Shared.model(path), [{"role": "user", "content": PROMPT}])
    tokens = llm.tokenize(text.encode(), add_bos=True, special=True)

    def run() -> float:
        llm.reset()
        t0 = time.perf_counter()
        n = 0
        for _tok in llm.generate(tokens, top_k=1, temp=0.0, reset=True):
            n += 1
            if n >= n_tokens:
                break
        return n / (time.perf_counter() - t0)

    return run


class _Shared:
    _models: dict[Path, object] = {}

    @classmethod
    def model(cls, path: Path):  # type: ignore[no-untyped-def]
        from runtime.engine.llama import Model

        if path not in cls._models:
            cls._models[path] = Model(path)
        return cls._models[path]


def _backplan_runner(
    path: Path, name: str, strategy: str, verifier: str, n_threads: int, n_tokens: int
):  # type: ignore[no-untyped-def]
    from runtime.generation import Runtime, RuntimeSettings
    from runtime.samplers.choice import SamplingParams

    settings = RuntimeSettings(
        model=str(path),
        strategy=strategy,
        verifier=verifier,  # type: ignore[arg-type]
        n_threads=n_threads,
        verifier_block=BLOCK,
    )
    rt = Runtime(settings, model=_Shared.model(path))  # type: ignore[arg-type]
    tokens = rt.prompt_tokens(PROMPT)
    temperature = 0.7 if strategy == "vgb" else 0.0
    sampling = SamplingParams(temperature=temperature, ignore_eos=True)

    def run() -> float:
        gen = rt.generate(tokens, max_tokens=n_tokens, sampling=sampling, seed=0)
        t = gen.trace
        return t.emitted_tokens / t.seconds.total_s

    return run


def _ceiling(path: Path, n_threads: int, n_tokens: int) -> dict[str, float]:
    """What a separate verifier costs at best, measured the way a generation runs.

    d: ms per token of single-token decodes over ``n_tokens`` after the prompt; b: ms per token
    of the same positions evaluated in batches of 16. Median of 5.
    """
    from runtime.engine.llama import Context

    model = _Shared.model(path)
    ctx = Context(model, n_ctx=2048, n_threads=n_threads, embeddings=True)  # type: ignore[arg-type]
    prompt = model.tokenize(PROMPT)  # type: ignore[attr-defined]
    tokens = [100 + i for i in range(n_tokens)]
    singles, batches = [], []
    for _ in range(5):
        ctx.reset()
        ctx.decode(prompt)
        t0 = time.perf_counter()
        for tok in tokens:
            ctx.decode_one(tok)
        singles.append((time.perf_counter() - t0) / n_tokens * 1e3)
        ctx.truncate(len(prompt))
        t0 = time.perf_counter()
        for i in range(0, n_tokens, BLOCK):
            ctx.decode(tokens[i : i + BLOCK], all_outputs=True)
        batches.append((time.perf_counter() - t0) / n_tokens * 1e3)
    ctx.close()
    d, b = statistics.median(singles), statistics.median(batches)
    return {
        "decode_ms": round(d, 3),
        "batch16_ms_per_token": round(b, 3),
        "separate_ceiling": round(d / (d + b), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="SmolLM2-135M only (under 2 minutes).")
    ap.add_argument("--json", type=Path, default=None, help="Write the rows as JSON here.")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument(
        "--results",
        type=Path,
        default=None,
        help="Also write <dir>/runtime_overhead.{json,md} (full runs: benchmarks/results).",
    )
    args = ap.parse_args()
    if args.repeats < 5:
        ap.error("--repeats must be at least 5 (medians of fewer are too noisy here)")
    logging.basicConfig(level=logging.WARNING)
    from rich.console import Console
    from rich.progress import Progress

    from runtime.models.fetch import model_path

    console = Console(stderr=True)
    models = ["smollm2-135m"] if args.quick else ["smollm2-135m", "qwen2.5-coder-0.5b"]
    rows: list[dict[str, object]] = []
    ceilings: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for name in models:
        path = model_path(name)
        runners = {
            "llama_cpp": _llama_cpp_runner(path, args.threads, args.tokens),
            "plain": _backplan_runner(path, name, "plain", "none", args.threads, args.tokens),
            "latent": _backplan_runner(
                path, name, "threshold", "latent=constant", args.threads, args.tokens
            ),
            "separate": _backplan_runner(
                path, name, "threshold", f"model:{path}=constant", args.threads, args.tokens
            ),
            "vgb_latent": _backplan_runner(
                path, name, "vgb", "latent=constant", args.threads, args.tokens
            ),
        }
        samples: dict[str, list[float]] = {k: [] for k in runners}
        for run in runners.values():
            run()  # warm-up, not counted
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{name}", total=args.repeats * len(runners))
            for _ in range(args.repeats):
                for key, run in runners.items():
                    samples[key].append(run())
                    progress.advance(task)
        ceilings[name] = _ceiling(path, args.threads, args.tokens)
        base = statistics.median(samples["llama_cpp"])
        for key, vals in samples.items():
            med = statistics.median(vals)
            rows.append(
                {
                    "config": key,
                    "model": name,
                    "tok_s": round(med, 2),
                    "ratio": round(med / base, 3),
                    "spread_pct": round(100 * (max(vals) - min(vals)) / med, 1),
                    "repeats": len(vals),
                }
            )
    elapsed = time.perf_counter() - started
    table = _markdown(rows, ceilings, args, elapsed)
    print(table)
    if args.json is not None:
        _write(args.json, json.dumps(rows, indent=2) + "\n")
    if args.results is not None:
        meta = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "tokens": args.tokens,
            "repeats": args.repeats,
            "elapsed_s": round(elapsed, 1),
            "ceilings": ceilings,
        }
        _write(
            args.results / "runtime_overhead.json",
            json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n",
        )
        _write(args.results / "runtime_overhead.md", table)
    return 0


def _markdown(
    rows: list[dict[str, object]],
    ceilings: dict[str, dict[str, float]],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    lines = [
        f"# Runtime overhead ({args.tokens} tokens, median of {args.repeats}, "
        f"{args.threads} threads, {elapsed:.0f} s)",
        "",
        "| model | config | tok/s | ratio vs llama_cpp | spread % |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['config']} | {r['tok_s']} | {r['ratio']} | {r['spread_pct']} |"
        )
    lines += [
        "",
        "Separate-verifier ceiling on this machine, d / (d + b): d = ms per "
        "single-token decode, b = ms per token in a 16-token batch.",
        "",
        "| model | d ms | b ms | ceiling |",
        "|---|---:|---:|---:|",
    ]
    for name, c in ceilings.items():
        lines.append(
            f"| {name} | {c['decode_ms']} | {c['batch16_ms_per_token']} | {c['separate_ceiling']} |"
        )
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    from runtime.atomic import write_text_atomic

    write_text_atomic(path, text)


if __name__ == "__main__":
    sys.exit(main())
