"""backplan serve against llama.cpp's own llama-server, side by side in one run.

    benchmarks/setup_llama_server.sh        # once: builds llama-server from the vendored llama.cpp
    python benchmarks/llama_server_compare.py --llama-server PATH [--results DIR] [--rounds N]

Both servers run on 127.0.0.1, one at a time, with the same GGUF (Qwen2.5-Coder-0.5B: it has
FIM tokens), the same slots (``--parallel``), context per slot and CPU threads; llama-server is
built from the llama.cpp that the installed llama-cpp-python vendors, with the same CPU flags.
Per round and server:

- load: non-streaming ``/v1/completions`` of 16 code prompts, greedy, ``max_tokens`` 32, at 1,
  4 and 16 concurrent clients (each sends its next request when answered): requests/s and
  p50/p95 latency. backplan twice: verifier off, and ``syntax`` (threshold strategy);
- a 2,000-token chat (a stdlib module as the system message), streamed: time to first token
  of the first turn and of the second (the conversation resent with one more question);
- fill-in-the-middle: ``/infill`` on 16 stdlib gaps (benchmarks/fim_cases.py), greedy,
  ``n_predict`` 32, at 1 and 4 clients: requests/s (backplan off and ``syntax``).

Servers alternate order between rounds; every figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fim_cases import build_cases  # noqa: E402
from server_load import Server, _fingerprint, _free_port, drive, percentile, write_results  # noqa: E402

LEVELS = (1, 4, 16)
FIM_LEVELS = (1, 4)
PROMPTS = [
    f'def {name}({args}):\n    """{doc}"""\n'
    for name, args, doc in (
        ("fibonacci", "n", "Return the n-th Fibonacci number."),
        ("is_prime", "n", "Return True when n is a prime number."),
        ("flatten", "items", "Flatten a list of lists into one list."),
        ("word_counts", "text", "Count how often each word occurs in text."),
        ("median", "values", "Return the median of a list of numbers."),
        ("reverse_words", "sentence", "Reverse the order of the words in a sentence."),
        ("gcd", "a, b", "Return the greatest common divisor of a and b."),
        ("chunks", "items, size", "Split items into lists of at most size elements."),
        ("roman", "n", "Return n as a Roman numeral."),
        ("transpose", "matrix", "Transpose a matrix given as a list of rows."),
        ("dedupe", "items", "Remove duplicates from items, keeping the first of each."),
        ("capitalize_all", "words", "Capitalize every word in a list."),
        ("running_sum", "values", "Return the running sums of a list of numbers."),
        ("vowels", "text", "Count the vowels in text."),
        ("merge_sorted", "a, b", "Merge two sorted lists into one sorted list."),
        ("parse_csv_line", "line", "Split one CSV line into its fields."),
    )
]
CHAT_MODULES = ("textwrap", "shlex", "fnmatch", "glob", "bisect", "colorsys", "heapq")
CONFIGS = {
    "llama-server": ("llama-server", {}),
    "backplan": ("backplan", {"backplan": {"verifier": "none", "strategy": "plain"}}),
    "backplan syntax": ("backplan", {"backplan": {"verifier": "syntax", "strategy": "threshold"}}),
}


def _load(url: str, extra: dict[str, Any], clients: int, n: int) -> dict[str, Any]:
    def body(i: int) -> dict[str, Any]:
        return {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 32, "temperature": 0, **extra}

    answers, errors, wall = drive(url, "/v1/completions", body, clients=clients, n_requests=n)
    lat = sorted(dt for dt, _ in answers)
    tokens = [int(a["usage"]["completion_tokens"]) for _, a in answers]
    return {
        "req_s": len(lat) / wall,
        "p50_s": percentile(lat, 0.5),
        "p95_s": percentile(lat, 0.95),
        "tokens_per_request": statistics.mean(tokens) if tokens else 0.0,
        "errors": len(errors),
    }


def _fim(url: str, extra: dict[str, Any], clients: int, cases: list[Any]) -> dict[str, Any]:
    def body(i: int) -> dict[str, Any]:
        c = cases[i % len(cases)]
        return {
            "input_prefix": c.prefix,
            "input_suffix": c.suffix,
            "n_predict": 32,
            "temperature": 0,
            **extra,
        }

    answers, errors, wall = drive(url, "/infill", body, clients=clients, n_requests=len(cases))
    lat = sorted(dt for dt, _ in answers)
    return {"req_s": len(lat) / wall, "p50_s": percentile(lat, 0.5), "errors": len(errors)}


def _ttft(url: str, messages: list[dict[str, str]], extra: dict[str, Any]) -> tuple[float, str]:
    """Seconds to the first streamed content, and the whole answer."""
    body = {"messages": messages, "max_tokens": 24, "temperature": 0, "stream": True, **extra}
    t0 = time.perf_counter()
    first = None
    parts = []
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            text = (choices[0].get("delta") or {}).get("content") if choices else None
            if text:
                if first is None:
                    first = time.perf_counter() - t0
                parts.append(text)
    return (first if first is not None else float("nan")), "".join(parts)


def _chat(url: str, extra: dict[str, Any], round_no: int) -> dict[str, Any]:
    import sysconfig

    module = CHAT_MODULES[round_no % len(CHAT_MODULES)]
    source = (Path(sysconfig.get_paths()["stdlib"]) / f"{module}.py").read_text()[:7000]
    messages = [
        {"role": "system", "content": f"You answer questions about this module:\n\n{source}"},
        {"role": "user", "content": "What does this module do, in one sentence?"},
    ]
    first, answer = _ttft(url, messages, extra)
    messages += [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Name one function it defines."},
    ]
    second, _ = _ttft(url, messages, extra)
    return {"module": module, "first_ttft_s": first, "second_ttft_s": second}


def _launch(kind: str, path: str, args: argparse.Namespace) -> Server:
    port = _free_port()
    if kind == "backplan":
        cmd = [sys.executable, "-m", "runtime.server", "--model", path, "--port", str(port)]
        cmd += ["--parallel", str(args.parallel), "--n-ctx", str(args.n_ctx), "--queue", "256"]
        cmd += ["--n-threads", str(args.threads), "--max-prompt-tokens", str(args.n_ctx)]
        return Server("backplan", cmd, port, "/ready", {})
    cmd = [str(args.llama_server), "-m", path, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["-np", str(args.parallel), "-c", str(args.parallel * args.n_ctx)]
    cmd += ["-t", str(args.threads), "-tb", str(args.threads), "--no-webui"]
    return Server("llama-server", cmd, port, "/health", {})


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-server", type=Path, required=True, help="llama-server binary.")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--n-ctx", type=int, default=4096, help="Context per slot.")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args(argv)

    from runtime.models.fetch import model_path

    path = str(model_path(args.model))
    cases = build_cases(16)
    t_start = time.perf_counter()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in CONFIGS}
    for rnd in range(args.rounds):
        kinds = ["llama-server", "backplan"] if rnd % 2 == 0 else ["backplan", "llama-server"]
        for kind in kinds:
            server = _launch(kind, path, args)
            try:
                server.wait_ready()
                _load(server.url, {}, 2, 2)  # warm up
                for name, (k, extra) in CONFIGS.items():
                    if k != kind:
                        continue
                    for clients in LEVELS:
                        res = _load(server.url, extra, clients, max(8, 2 * clients))
                        raw[name].setdefault(f"load_{clients}", []).append(res)
                        print(f"round {rnd + 1} {name:15s} {clients:2d} clients {res}", flush=True)
                    for clients in FIM_LEVELS:
                        res = _fim(server.url, extra, clients, cases)
                        raw[name].setdefault(f"fim_{clients}", []).append(res)
                        print(f"round {rnd + 1} {name:15s} fim {clients} {res}", flush=True)
                    if name != "backplan syntax":
                        res = _chat(server.url, extra, rnd)
                        raw[name].setdefault("chat", []).append(res)
                        print(f"round {rnd + 1} {name:15s} chat {res}", flush=True)
            finally:
                server.stop()

    summary = {name: {k: _median(runs) for k, runs in parts.items()} for name, parts in raw.items()}
    ratios = {
        f"{name} / llama-server {key}": summary[name][key]["req_s"]
        / summary["llama-server"][key]["req_s"]
        for name in ("backplan", "backplan syntax")
        for key in [*(f"load_{c}" for c in LEVELS), *(f"fim_{c}" for c in FIM_LEVELS)]
    }
    chat = summary["backplan"]["chat"]
    result = {
        "benchmark": "llama_server_compare",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {
            "model": args.model,
            "rounds": args.rounds,
            "parallel": args.parallel,
            "n_ctx_per_slot": args.n_ctx,
            "threads": args.threads,
            "llama_server": str(args.llama_server),
        },
        "summary": summary,
        "ratios": ratios,
        "targets": {
            "verifier off >= 0.8x llama-server req/s at 1, 4, 16": all(
                ratios[f"backplan / llama-server load_{c}"] >= 0.8 for c in LEVELS
            ),
            "second-turn TTFT <= 0.3x the first": chat["second_ttft_s"]
            <= 0.3 * chat["first_ttft_s"],
        },
        "raw": raw,
        "fingerprint": _fingerprint(),
        "seconds": time.perf_counter() - t_start,
    }
    write_results(args.results, "llama_server_compare", result, _markdown(result))
    return 0


def _markdown(result: dict[str, Any]) -> str:
    cfg, s = result["config"], result["summary"]
    lines = [
        f"# backplan serve against llama-server ({cfg['model']}, {cfg['parallel']} slots of "
        f"{cfg['n_ctx_per_slot']} tokens, {cfg['threads']} threads, median of {cfg['rounds']} "
        f"rounds, {result['seconds']:.0f} s)",
        "",
        "llama-server built from the llama.cpp that llama-cpp-python vendors (same commit, same "
        "CPU flags: benchmarks/setup_llama_server.sh). Non-streaming `/v1/completions`, 16 code "
        "prompts, greedy, max_tokens 32; each client sends its next request when answered.",
        "",
        "| clients | server | req/s | x llama-server | p50 s | p95 s | tokens/req | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in LEVELS:
        base = s["llama-server"][f"load_{c}"]["req_s"]
        for name in CONFIGS:
            row = s[name][f"load_{c}"]
            lines.append(
                f"| {c} | {name} | {row['req_s']:.2f} | {row['req_s'] / base:.2f} | "
                f"{row['p50_s']:.2f} | {row['p95_s']:.2f} | {row['tokens_per_request']:.1f} | "
                f"{row['errors']:.0f} |"
            )
    lines += [
        "",
        "Fill-in-the-middle, `/infill`, 16 stdlib gaps, greedy, n_predict 32:",
        "",
        "| clients | server | req/s | x llama-server | p50 s |",
        "|---:|---|---:|---:|---:|",
    ]
    for c in FIM_LEVELS:
        base = s["llama-server"][f"fim_{c}"]["req_s"]
        for name in CONFIGS:
            row = s[name][f"fim_{c}"]
            lines.append(
                f"| {c} | {name} | {row['req_s']:.2f} | {row['req_s'] / base:.2f} | "
                f"{row['p50_s']:.2f} |"
            )
    lines += [
        "",
        "A 2,000-token chat (a stdlib module as the system message), streamed, time to first "
        "token:",
        "",
        "| server | first turn s | second turn s | second / first |",
        "|---|---:|---:|---:|",
    ]
    for name in ("llama-server", "backplan"):
        row = s[name]["chat"]
        lines.append(
            f"| {name} | {row['first_ttft_s']:.2f} | {row['second_ttft_s']:.2f} | "
            f"{row['second_ttft_s'] / row['first_ttft_s']:.2f} |"
        )
    lines += ["", "Targets:"]
    lines += [f"- {k}: {'met' if v else 'missed'}" for k, v in result["targets"].items()]
    fp = result["fingerprint"]
    lines += ["", f"Machine: {fp['cpu']}, {fp['cores']} cores.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
