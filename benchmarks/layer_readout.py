"""What reading intermediate layers costs: llama.cpp's eval callback, per token, side by side.

    python benchmarks/layer_readout.py [--quick] [--repeats N] [--tokens N] [--results DIR]

A value head could read the residual stream after intermediate layers (``l_out-N``), not only
the last hidden state; llama.cpp hands those over only through the context's eval callback
(:class:`runtime.engine.layers.LayerTap`). Configurations, interleaved round-robin on the same
machine and tokens, each figure the median of the repeats:

  none       no callback: the graph runs uninterrupted (the baseline)
  callback   the callback set, asking for no tensor (what calling Python per node costs)
  mid        one layer read, the middle one
  quarters   the layers at 1/4, 1/2 and 3/4 of the depth
  all        every layer

Two workloads, both with hidden states on (``embeddings=True``, as a latent head runs):
``decode``, single-token decodes after a prompt (the generation hot path, ms per token), and
``pass``, a feature pass over a rollout in chunks of 256 tokens with every output kept (what
building a head's features costs, ms per token). ``ratio`` is ms per token over ``none``'s.
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
CHUNK = 256


def _configs(n_layer: int) -> dict[str, list[int] | None]:
    return {
        "none": None,
        "callback": [],
        "mid": [n_layer // 2],
        "quarters": sorted({n_layer // 4, n_layer // 2, (3 * n_layer) // 4}),
        "all": list(range(n_layer)),
    }


def _runners(model: object, layers: list[int] | None, threads: int, n_tokens: int):  # type: ignore[no-untyped-def]
    from runtime.engine.llama import Context

    ctx = Context(
        model,  # type: ignore[arg-type]
        n_ctx=2048,
        n_batch=CHUNK,
        n_threads=threads,
        embeddings=True,
        layers=layers,
    )
    prompt = model.tokenize(PROMPT)  # type: ignore[attr-defined]
    tokens = [100 + (7 * i) % 5000 for i in range(n_tokens)]
    rollout = [100 + (11 * i) % 5000 for i in range(4 * n_tokens)]

    def decode() -> float:
        ctx.reset()
        ctx.decode(prompt)
        t0 = time.perf_counter()
        for tok in tokens:
            ctx.decode_one(tok)
        return (time.perf_counter() - t0) / n_tokens * 1e3

    def feature_pass() -> float:
        ctx.reset()
        t0 = time.perf_counter()
        for i in range(0, len(rollout), CHUNK):
            ctx.decode(rollout[i : i + CHUNK], all_outputs=True)
        return (time.perf_counter() - t0) / len(rollout) * 1e3

    return ctx, decode, feature_pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="SmolLM2-135M only (about a minute).")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument(
        "--results",
        type=Path,
        default=None,
        help="Also write <dir>/layer_readout.{json,md} (full runs: benchmarks/results).",
    )
    args = ap.parse_args()
    if args.repeats < 5:
        ap.error("--repeats must be at least 5 (medians of fewer are too noisy here)")
    logging.basicConfig(level=logging.WARNING)
    from rich.console import Console
    from rich.progress import Progress

    from runtime.engine.llama import Model
    from runtime.models.fetch import model_path

    console = Console(stderr=True)
    names = ["smollm2-135m"] if args.quick else ["smollm2-135m", "qwen2.5-coder-0.5b"]
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    for name in names:
        model = Model(model_path(name))
        built = {
            key: _runners(model, layers, args.threads, args.tokens)
            for key, layers in _configs(model.n_layer).items()
        }
        samples: dict[tuple[str, str], list[float]] = {}
        for _ctx, decode, feature_pass in built.values():
            decode()  # warm-up, not counted
            feature_pass()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(name, total=args.repeats * len(built) * 2)
            for _ in range(args.repeats):
                for key, (_ctx, decode, feature_pass) in built.items():
                    for work, run in (("decode", decode), ("pass", feature_pass)):
                        samples.setdefault((key, work), []).append(run())
                        progress.advance(task)
        for key, (ctx, _d, _p) in built.items():
            calls = ctx.tap.calls if ctx.tap is not None else 0
            ctx.close()
            for work in ("decode", "pass"):
                vals = samples[(key, work)]
                med = statistics.median(vals)
                base = statistics.median(samples[("none", work)])
                rows.append(
                    {
                        "model": name,
                        "n_layer": model.n_layer,
                        "config": key,
                        "layers_read": len(_configs(model.n_layer)[key] or []),
                        "work": work,
                        "ms_per_token": round(med, 3),
                        "ratio": round(med / base, 3),
                        "spread_pct": round(100 * (max(vals) - min(vals)) / med, 1),
                        "repeats": len(vals),
                        "callback_calls": calls,
                    }
                )
        model.close()
    elapsed = time.perf_counter() - started
    table = _markdown(rows, args, elapsed)
    print(table)
    if args.results is not None:
        from runtime.atomic import write_text_atomic

        meta = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "tokens": args.tokens,
            "repeats": args.repeats,
            "elapsed_s": round(elapsed, 1),
        }
        write_text_atomic(
            args.results / "layer_readout.json",
            json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n",
        )
        write_text_atomic(args.results / "layer_readout.md", table)
    return 0


def _markdown(rows: list[dict[str, object]], args: argparse.Namespace, elapsed: float) -> str:
    lines = [
        f"# Reading intermediate layers: llama.cpp's eval callback ({args.tokens} decode "
        f"tokens, {4 * args.tokens}-token feature pass, median of {args.repeats}, "
        f"{args.threads} threads, {elapsed:.0f} s)",
        "",
        "decode: single-token decodes (the generation hot path); pass: chunks of "
        f"{CHUNK} tokens, every output kept (building a head's features). ratio: ms per token "
        "over `none` (no callback) in the same run.",
        "",
        "| model | config | layers read | work | ms/token | ratio vs none | spread % |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['config']} | {r['layers_read']} | {r['work']} | "
            f"{r['ms_per_token']} | {r['ratio']} | {r['spread_pct']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
