"""serve --allow-code-execution: what running the prompt's examples in the jail costs a server.

    python benchmarks/code_execution_load.py [--results DIR] [--rounds N] [--quick]

One ``backplan serve --allow-code-execution --verifier syntax+examples=8 --strategy threshold``
on 127.0.0.1 (Qwen2.5-Coder-0.5B by default, ``--parallel 4``); clients send the chat prompts
``backplan eval`` sends (HumanEval's first problems, greedy, ``max_tokens`` 384), either with the
server's verifier or with ``"backplan": {"verifier": "none"}`` on the same server. At 1 and 4
concurrent clients, per configuration: requests/s, p50/p95 latency, checks run in the jail and
their CPU seconds. Configurations and levels are interleaved round-robin; each figure is the
median over the rounds, and the ratios (verified / verifier off) are taken within each round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from server_load import Server, _fingerprint, _free_port, drive, percentile  # noqa: E402

CONFIGS = {"verifier off": {"backplan": {"verifier": "none"}}, "syntax+examples=8": {}}


def _prompts(n: int) -> list[str]:
    from planner.quality.dataset import load_humaneval
    from planner.quality.harness import build_prompt

    return [build_prompt(p) for p in load_humaneval()[:n]]


def _level(
    server: Server, prompts: list[str], clients: int, extra: dict[str, Any], max_tokens: int
) -> dict[str, Any]:
    def body(i: int) -> dict[str, Any]:
        return {
            "messages": [{"role": "user", "content": prompts[i]}],
            "max_tokens": max_tokens,
            "temperature": 0,
            **extra,
        }

    answers, errors, wall = drive(
        server.url,
        "/v1/chat/completions",
        body,
        clients=clients,
        n_requests=len(prompts),
        timeout_s=900,
    )
    lat = sorted(dt for dt, _ in answers)
    backtracks = [a["backtrack"] for _, a in answers]
    return {
        "requests": len(lat),
        "errors": errors,
        "wall_s": wall,
        "req_s": len(lat) / wall,
        "p50_s": percentile(lat, 0.5),
        "p95_s": percentile(lat, 0.95),
        "checks": sum(int(bt.get("code_runs", 0)) for bt in backtracks),
        "check_cpu_s": sum(float(bt.get("code_cpu_s", 0.0)) for bt in backtracks),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--results", type=Path, default=None, help="write JSON + markdown here")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--problems", type=int, default=8, help="HumanEval problems per level")
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--quick", action="store_true", help="SmolLM2-135M, 2 rounds, 4 problems")
    args = ap.parse_args()
    if args.quick:
        args.model, args.rounds, args.problems = "smollm2-135m", 2, 4
    prompts = _prompts(args.problems)
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "runtime.server",
        "--model",
        args.model,
        "--port",
        str(port),
        "--parallel",
        "4",
        "--n-ctx",
        "1024",
        "--allow-code-execution",
        "--verifier",
        "syntax+examples=8",
        "--strategy",
        "threshold",
        "--timeout-s",
        "1800",
    ]
    server = Server("backplan-code", cmd, port, "/ready", {})
    levels = (1, 4)
    samples: dict[str, dict[int, list[dict[str, Any]]]] = {
        name: {n: [] for n in levels} for name in CONFIGS
    }
    try:
        server.wait_ready()
        for extra in CONFIGS.values():  # warm-up: one request each
            _level(server, prompts[:1], 1, extra, args.max_tokens)
        for r in range(args.rounds):
            for clients in levels:
                for name, extra in CONFIGS.items():
                    got = _level(server, prompts, clients, extra, args.max_tokens)
                    samples[name][clients].append(got)
                    print(
                        f"round {r + 1}/{args.rounds} {clients} clients {name}: "
                        f"{got['req_s']:.3f} req/s p95 {got['p95_s']:.1f}s "
                        f"checks {got['checks']} errors {len(got['errors'])}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        server.stop()
    out: dict[str, Any] = {
        "benchmark": "code_execution_load",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": args.model,
        "rounds": args.rounds,
        "problems": args.problems,
        "max_tokens": args.max_tokens,
        "server": "backplan serve --allow-code-execution --verifier syntax+examples=8 "
        "--strategy threshold --parallel 4 (verifier off: the same server, per request)",
        "fingerprint": _fingerprint(),
        "levels": {},
    }
    off, on = CONFIGS
    for clients in levels:
        a, b = samples[off][clients], samples[on][clients]
        row: dict[str, Any] = {}
        for name, runs in ((off, a), (on, b)):
            row[name] = {
                k: statistics.median(x[k] for x in runs)
                for k in ("req_s", "p50_s", "p95_s", "checks", "check_cpu_s")
            }
            row[name]["errors"] = sum(len(x["errors"]) for x in runs)
        pairs = list(zip(a, b, strict=True))
        row["req_s_ratio"] = statistics.median(y["req_s"] / x["req_s"] for x, y in pairs)
        row["p95_ratio"] = statistics.median(y["p95_s"] / x["p95_s"] for x, y in pairs)
        out["levels"][str(clients)] = row
    text = json.dumps(out, indent=2)
    print(text)
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "code_execution_load.json").write_text(text + "\n")
        lines = [
            "# serve --allow-code-execution: the examples verifier's cost on a server",
            "",
            f"{args.model}, {out['server']}; {args.problems} HumanEval chat prompts per level, "
            f"greedy, max_tokens {args.max_tokens}; medians of {args.rounds} interleaved rounds "
            f"on {out['fingerprint']['cpu']} ({out['fingerprint']['cores']} cores). Ratios are "
            "syntax+examples=8 over verifier off, taken within each round.",
            "",
            "| clients | req/s off | req/s examples | ratio | p95 s off | p95 s examples | "
            "p95 ratio | checks/level | check CPU s/level |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for clients, row in out["levels"].items():
            x, y = row[off], row[on]
            lines.append(
                f"| {clients} | {x['req_s']:.3f} | {y['req_s']:.3f} | {row['req_s_ratio']:.2f} "
                f"| {x['p95_s']:.1f} | {y['p95_s']:.1f} | {row['p95_ratio']:.2f} | "
                f"{y['checks']:.0f} | {y['check_cpu_s']:.2f} |"
            )
        (args.results / "code_execution_load.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
