"""The cost of the Ray hop: backplan on Ray Serve against ``backplan serve``, in one run.

    python benchmarks/ray_serve_overhead.py [--results DIR] [--rounds N]

Same model (SmolLM2-135M), same slots and threads per engine: ``backplan serve`` directly,
then one Serve replica of the same app behind Serve's proxy (a local Ray cluster on
127.0.0.1), then two replicas (each with half the threads: this machine's cores are the limit).
Clients send non-streaming ``/v1/completions`` (16 prompts, greedy, ``max_tokens`` 32) at 1, 4
and 16 concurrent clients; requests/s and p50/p95 latency; every figure is the median over
the rounds, the setups interleaved within each round.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from server_load import PROMPTS, Server, _fingerprint, _free_port, drive, percentile, write_results  # noqa: E402

LEVELS = (1, 4, 16)


def _level(url: str, clients: int, n: int) -> dict[str, Any]:
    def body(i: int) -> dict[str, Any]:
        return {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 32, "temperature": 0}

    answers, errors, wall = drive(url, "/v1/completions", body, clients=clients, n_requests=n)
    lat = sorted(dt for dt, _ in answers)
    return {
        "req_s": len(lat) / wall,
        "p50_s": percentile(lat, 0.5),
        "p95_s": percentile(lat, 0.95),
        "errors": len(errors),
    }


def _levels(url: str, requests: int) -> dict[str, dict[str, Any]]:
    _level(url, 2, 2)  # warm up
    return {str(c): _level(url, c, max(requests, 2 * c)) for c in LEVELS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args(argv)

    import ray
    from ray import serve

    from runtime.fleet.serve_app import build
    from runtime.fleet.spec import FleetSpec
    from runtime.models.fetch import model_path
    from runtime.models.registry import lookup

    path = str(model_path("smollm2-135m"))
    smol = lookup("smollm2-135m")
    assert smol is not None
    t_start = time.perf_counter()
    raw: dict[str, list[dict[str, dict[str, Any]]]] = {"serve": [], "ray 1": [], "ray 2": []}
    ray.init(num_cpus=args.threads * 2, include_dashboard=False, logging_level=logging.WARNING)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    url = f"http://127.0.0.1:{port}"

    def fleet(replicas: int) -> None:
        spec = FleetSpec(
            candidate_id="bench/smollm2-135m",
            model="smollm2-135m",
            model_sha256=smol.sha256,
            replicas=replicas,
            min_replicas=replicas,
            max_replicas=replicas,
            cpus_per_replica=max(1, args.threads // replicas),
            memory_gb_per_replica=0.5,
            parallel=args.parallel,
            queue=256,
            n_ctx=1024,
        )
        serve.run(build({"fleet": spec.model_dump(mode="json")}), name="b", route_prefix="/")

    try:
        for rnd in range(args.rounds):
            order = ["serve", "ray 1", "ray 2"] if rnd % 2 == 0 else ["ray 2", "ray 1", "serve"]
            for setup in order:
                if setup == "serve":
                    p = _free_port()
                    cmd = [sys.executable, "-m", "runtime.server", "--model", path]
                    cmd += ["--port", str(p), "--parallel", str(args.parallel), "--n-ctx", "1024"]
                    cmd += ["--queue", "256", "--n-threads", str(args.threads)]
                    server = Server("backplan", cmd, p, "/ready", {})
                    try:
                        server.wait_ready()
                        res = _levels(server.url, args.requests)
                    finally:
                        server.stop()
                else:
                    fleet(int(setup[-1]))
                    res = _levels(url, args.requests)
                    serve.delete("b")
                raw[setup].append(res)
                print(f"round {rnd + 1} {setup:6s} {json.dumps(res)}", flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()

    summary = {
        setup: {
            c: {k: statistics.median(r[c][k] for r in runs) for k in ("req_s", "p50_s", "p95_s")}
            for c in map(str, LEVELS)
        }
        for setup, runs in raw.items()
    }
    ratios = {
        f"{setup} / serve at {c}": summary[setup][c]["req_s"] / summary["serve"][c]["req_s"]
        for setup in ("ray 1", "ray 2")
        for c in map(str, LEVELS)
    }
    result = {
        "benchmark": "ray_serve_overhead",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {
            "model": "smollm2-135m",
            "rounds": args.rounds,
            "parallel": args.parallel,
            "threads": args.threads,
            "requests_per_level": {c: max(args.requests, 2 * c) for c in LEVELS},
        },
        "summary": summary,
        "ratios": ratios,
        "target_met": all(ratios[f"ray 1 / serve at {c}"] >= 0.85 for c in ("4", "16")),
        "raw": raw,
        "fingerprint": _fingerprint(),
        "seconds": time.perf_counter() - t_start,
    }
    write_results(args.results, "ray_serve_overhead", result, _markdown(result))
    return 0


def _markdown(result: dict[str, Any]) -> str:
    cfg, s = result["config"], result["summary"]
    lines = [
        f"# The Ray hop: backplan on Ray Serve against backplan serve ({cfg['model']}, "
        f"{cfg['parallel']} slots per engine, median of {cfg['rounds']} rounds, "
        f"{result['seconds']:.0f} s)",
        "",
        "Non-streaming `/v1/completions`, 16 prompts, greedy, max_tokens 32; each client sends "
        "its next request when answered. `ray 1`: one Serve replica of the same app behind "
        f"Serve's proxy (local cluster), {cfg['threads']} threads; `ray 2`: two replicas of "
        f"{max(1, cfg['threads'] // 2)} thread(s) each.",
        "",
        "| clients | setup | req/s | x serve | p50 s | p95 s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for c in map(str, LEVELS):
        base = s["serve"][c]["req_s"]
        for setup in ("serve", "ray 1", "ray 2"):
            row = s[setup][c]
            lines.append(
                f"| {c} | {setup} | {row['req_s']:.2f} | {row['req_s'] / base:.2f} | "
                f"{row['p50_s']:.2f} | {row['p95_s']:.2f} |"
            )
    fp = result["fingerprint"]
    lines += [
        "",
        f"Target: one Serve replica >= 0.85x backplan serve's requests/s at 4 and 16 clients. "
        f"Met: {result['target_met']}.",
        "",
        f"Machine: {fp['cpu']}, {fp['cores']} cores: two replicas share the same two cores "
        "(each engine gets half the threads), so this measures the split, not a second "
        "machine's worth of capacity.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
