"""backtrack-sampler against backplan: emitted tokens/s with backtracking on, side by side.

    python benchmarks/backtrack_sampler_compare.py [--quick] [--results DIR] [--json PATH]

Both tools run in one process on the same GGUF file, the same chat-formatted prompt (the
same prompt tokens) and the same number of threads; each figure is a median of repeats,
interleaved round-robin so noise hits them alike:

  backtrack_sampler  backtrack-sampler 3.2.1 (PyPI ``backtrack_sampler``) with its llama.cpp
                     provider set up as its README shows (``Llama(..., logits_all=True)``,
                     ``LlamaRAMCache``, ``LlamacppProvider``, ``BacktrackSampler``) and its
                     ``CreativeWritingStrategy``, which backtracks whenever the next-token
                     distribution is flat (README settings, temperature 1, except
                     ``eos_penalty=0``: never end early, the analogue of ``ignore_eos``)
  threshold/syntax   backplan, threshold strategy, syntax verifier, greedy
  threshold/latent   backplan, threshold strategy, never-rejecting latent head, greedy
  vgb/latent         backplan, VGB walk, never-rejecting latent head, temperature 0.7

``speedup`` is a row's tok/s over backtrack-sampler's on the same model, at the same number
of new tokens (128; 64 with ``--quick``): backtrack-sampler's tok/s falls as its output
grows (every step copies all logits so far into Python lists), so only equal lengths compare.
It is slow, so it has fewer repeats (3 by default); the counts are in the table.

Needs ``pip install --no-deps backtrack_sampler==3.2.1`` and ``pip install torch==2.13.0``
(the CPU build); neither is a dependency of backplan.

Prompt tokens: the README hands ``BacktrackSampler.generate`` a prompt string, which the
llama.cpp provider tokenizes with ``special=False``, so chat markers such as
``<|im_start|>`` become plain-text pieces (74 prompt tokens instead of 45 on SmolLM2, and a
longer context makes its every step slower). By default the provider's ``encode`` parses
special tokens instead, and the script checks that both tools then see identical prompt
tokens; ``--readme-tokenize`` keeps the provider's own ``encode``.
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
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Write a Python function that merges two sorted lists into one sorted list."
BS_VERSION = "3.2.1"

# (config label, strategy, verifier, temperature)
BACKPLAN_CONFIGS = [
    ("threshold/syntax", "threshold", "syntax", 0.0),
    ("threshold/latent", "threshold", "latent=constant", 0.0),
    ("vgb/latent", "vgb", "latent=constant", 0.7),
]

Sample = dict[str, Any]  # one timed run: tok_s plus counters


class _Shared:
    _models: dict[Path, object] = {}

    @classmethod
    def model(cls, path: Path):  # type: ignore[no-untyped-def]
        from runtime.engine.llama import Model

        if path not in cls._models:
            cls._models[path] = Model(path)
        return cls._models[path]


def _backplan_runner(
    path: Path, strategy: str, verifier: str, temperature: float, n_threads: int, n_tokens: int
) -> tuple[Callable[[], Sample], list[int]]:
    from runtime.generation import Runtime, RuntimeSettings
    from runtime.samplers.choice import SamplingParams

    settings = RuntimeSettings(
        model=str(path),
        strategy=strategy,  # type: ignore[arg-type]
        verifier=verifier,
        n_threads=n_threads,
    )
    rt = Runtime(settings, model=_Shared.model(path))  # type: ignore[arg-type]
    tokens = rt.prompt_tokens(PROMPT)
    sampling = SamplingParams(temperature=temperature, ignore_eos=True)

    def run() -> Sample:
        gen = rt.generate(tokens, max_tokens=n_tokens, seed=0, sampling=sampling)
        t = gen.trace
        return {
            "tok_s": t.emitted_tokens / t.seconds.total_s,
            "emitted": t.emitted_tokens,
            "rollbacks": t.rollbacks,
            "rolled_back_tokens": t.rolled_back_tokens,
        }

    return run, tokens


def _backtrack_sampler_runner(
    path: Path, n_threads: int, n_tokens: int, readme_tokenize: bool, prompt_tokens: list[int]
) -> tuple[Callable[..., Sample], int]:
    import torch
    from backtrack_sampler import BacktrackSampler, CreativeWritingStrategy
    from backtrack_sampler.provider.llamacpp_provider import LlamacppProvider
    from llama_cpp import Llama, LlamaRAMCache

    from runtime.engine.chat import render_chat

    class ChatProvider(LlamacppProvider):  # type: ignore[misc]
        """The README's provider, but a prompt's chat markers parse as special tokens."""

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # As the README: Llama with logits_all, a RAM cache, the provider on the CPU device.
    llm = Llama(
        model_path=str(path),
        verbose=False,
        n_ctx=2100,
        n_batch=2100,
        logits_all=True,
        n_threads=n_threads,
        n_threads_batch=n_threads,
    )
    cache = LlamaRAMCache(capacity_bytes=100000000)
    provider_cls = LlamacppProvider if readme_tokenize else ChatProvider
    provider = provider_cls(llm, cache, torch.device("cpu"))
    # README settings for the strategy, but never pick EOS (the analogue of ignore_eos).
    strategy = CreativeWritingStrategy(
        provider, top_p_flat=0.65, top_k_threshold_flat=9, eos_penalty=0.0
    )
    sampler = BacktrackSampler(provider, strategy)
    text = render_chat(_Shared.model(path), [{"role": "user", "content": PROMPT}])
    bs_tokens = provider.encode(text, add_special_tokens=False)
    if not readme_tokenize and bs_tokens != prompt_tokens:
        raise RuntimeError("backtrack-sampler and backplan prompt tokens differ")

    # Count backtracks: BacktrackSampler calls remove_latest_cache(n) once per rollback.
    counts = {"rollbacks": 0, "rolled_back_tokens": 0}
    remove = provider.remove_latest_cache

    def counting_remove(nr: int) -> None:
        counts["rollbacks"] += 1
        counts["rolled_back_tokens"] += nr
        remove(nr)

    provider.remove_latest_cache = counting_remove

    def run(seed: int, max_new: int = n_tokens) -> Sample:
        torch.manual_seed(seed)
        counts.update(rollbacks=0, rolled_back_tokens=0)
        t0 = time.perf_counter()
        n = 0
        for _tok in sampler.generate(prompt=text, max_new_tokens=max_new, temperature=1):
            n += 1
        dt = time.perf_counter() - t0
        return {"tok_s": n / dt, "emitted": n, **counts}

    return run, len(bs_tokens)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="SmolLM2-135M only, 64 tokens (about 3 minutes)."
    )
    ap.add_argument("--json", type=Path, default=None, help="Write the rows as JSON here.")
    ap.add_argument("--repeats", type=int, default=5, help="backplan repeats (median).")
    ap.add_argument("--bs-repeats", type=int, default=3, help="backtrack-sampler repeats.")
    ap.add_argument("--tokens", type=int, default=None, help="backplan new tokens (128).")
    ap.add_argument(
        "--bs-tokens", type=int, default=None, help="backtrack-sampler tokens (same as --tokens)."
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--readme-tokenize",
        action="store_true",
        help="Keep the provider's own encode (chat markers as plain text, a longer prompt).",
    )
    ap.add_argument(
        "--results",
        type=Path,
        default=None,
        help="Also write <dir>/backtrack_sampler_compare.{json,md} (full: benchmarks/results).",
    )
    args = ap.parse_args()
    if args.tokens is None:
        args.tokens = 64 if args.quick else 128
    if args.bs_tokens is None:
        args.bs_tokens = args.tokens
    if args.repeats < 5:
        ap.error("--repeats must be at least 5 (medians of fewer are too noisy here)")
    if args.bs_repeats < 3:
        ap.error("--bs-repeats must be at least 3")
    logging.basicConfig(level=logging.WARNING)
    from rich.console import Console
    from rich.progress import Progress

    from runtime.models.fetch import model_path

    console = Console(stderr=True)
    models = ["smollm2-135m"] if args.quick else ["smollm2-135m", "qwen2.5-coder-0.5b"]
    rows: list[dict[str, object]] = []
    prompt_info: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    for name in models:
        path = model_path(name)
        runners: dict[str, Callable[[], Sample]] = {}
        prompt: list[int] = []
        for label, strategy, verifier, temp in BACKPLAN_CONFIGS:
            runners[label], prompt = _backplan_runner(
                path, strategy, verifier, temp, args.threads, args.tokens
            )
        bs_run, bs_prompt = _backtrack_sampler_runner(
            path, args.threads, args.bs_tokens, args.readme_tokenize, prompt
        )
        prompt_info[name] = {"backplan": len(prompt), "backtrack_sampler": bs_prompt}
        samples: dict[str, list[Sample]] = {"backtrack_sampler": [], **{k: [] for k in runners}}
        for run in runners.values():
            run()  # warm-up, not counted
        bs_run(-1, 4)  # warm-up (a few tokens: its runs are long), not counted
        total = args.bs_repeats * args.bs_tokens + args.repeats * len(runners) * args.tokens
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{name} (tokens)", total=total)
            for i in range(max(args.repeats, args.bs_repeats)):
                if i < args.bs_repeats:
                    samples["backtrack_sampler"].append(bs_run(i))
                    progress.advance(task, args.bs_tokens)
                if i < args.repeats:
                    for key, run in runners.items():
                        samples[key].append(run())
                        progress.advance(task, args.tokens)
        base = statistics.median(s["tok_s"] for s in samples["backtrack_sampler"])
        for key, runs in samples.items():
            vals = [s["tok_s"] for s in runs]
            med = statistics.median(vals)
            is_bs = key == "backtrack_sampler"
            rows.append(
                {
                    "tool": f"backtrack-sampler {BS_VERSION}" if is_bs else "backplan",
                    "config": "CreativeWritingStrategy" if is_bs else key,
                    "model": name,
                    "new_tokens": args.bs_tokens if is_bs else args.tokens,
                    "tok_s": round(med, 2),
                    "speedup": round(med / base, 1),
                    "repeats": len(vals),
                    "spread_pct": round(100 * (max(vals) - min(vals)) / med, 1),
                    "emitted": [s["emitted"] for s in runs],
                    "rollbacks": [s["rollbacks"] for s in runs],
                    "rolled_back_tokens": [s["rolled_back_tokens"] for s in runs],
                }
            )
    elapsed = time.perf_counter() - started
    table = _markdown(rows, prompt_info, args, elapsed)
    print(table)
    if args.json is not None:
        _write(args.json, json.dumps(rows, indent=2) + "\n")
    if args.results is not None:
        meta = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "backplan_tokens": args.tokens,
            "backtrack_sampler_tokens": args.bs_tokens,
            "backplan_repeats": args.repeats,
            "backtrack_sampler_repeats": args.bs_repeats,
            "backtrack_sampler_version": BS_VERSION,
            "backtrack_sampler_strategy": (
                "CreativeWritingStrategy(top_p_flat=0.65, top_k_threshold_flat=9, "
                "eos_penalty=0.0), temperature=1, top_k=50 (its default)"
            ),
            "readme_tokenize": args.readme_tokenize,
            "prompt": PROMPT,
            "prompt_tokens": prompt_info,
            "elapsed_s": round(elapsed, 1),
        }
        _write(
            args.results / "backtrack_sampler_compare.json",
            json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n",
        )
        _write(args.results / "backtrack_sampler_compare.md", table)
    return 0


def _markdown(
    rows: list[dict[str, object]],
    prompt_info: dict[str, dict[str, int]],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    bs_note = (
        f"backtrack-sampler: median of {args.bs_repeats}"
        + (" (fewer than 5: its runs are long)" if args.bs_repeats < 5 else "")
        + f"; backplan: median of {args.repeats}"
    )
    lines = [
        f"# backtrack-sampler {BS_VERSION} vs backplan, backtracking on "
        f"({args.threads} threads, {elapsed:.0f} s)",
        "",
        bs_note + ". speedup = tok/s over backtrack-sampler's on the same model.",
        "",
        "| tool | config | model | new_tokens | tok_s | speedup | spread % | rollbacks |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rb = r["rollbacks"]
        assert isinstance(rb, list)
        lines.append(
            f"| {r['tool']} | {r['config']} | {r['model']} | {r['new_tokens']} | {r['tok_s']} "
            f"| {r['speedup']} | {r['spread_pct']} | {'/'.join(map(str, rb))} |"
        )
    tokenize = (
        "the provider's own encode (chat markers as plain text)"
        if args.readme_tokenize
        else "special tokens parsed, identical to backplan's"
    )
    lines += [
        "",
        "backtrack-sampler: its llama.cpp provider as in its README, CreativeWritingStrategy "
        "(top_p_flat=0.65, top_k_threshold_flat=9, eos_penalty=0), temperature 1; "
        f"prompt tokens: {tokenize}. backplan: greedy except vgb/latent (temperature 0.7), "
        "ignore_eos. rollbacks: per run, in run order.",
        "",
        "| model | backplan prompt tokens | backtrack-sampler prompt tokens |",
        "|---|---:|---:|",
    ]
    for name, p in prompt_info.items():
        lines.append(f"| {name} | {p['backplan']} | {p['backtrack_sampler']} |")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    from runtime.atomic import write_text_atomic

    write_text_atomic(path, text)


if __name__ == "__main__":
    sys.exit(main())
