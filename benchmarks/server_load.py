"""Server load: backplan serve against llama-cpp-python's server, side by side in one run.

    python benchmarks/server_load.py [--results DIR] [--rounds N] [--max-tokens N] [--quick]

Both servers run on 127.0.0.1 with the same GGUF (SmolLM2-135M by default), the same CPU
threads, the verifier off. Clients send non-streaming ``/v1/completions`` requests (the same
16 prompts, temperature 0, the same ``max_tokens``) at 1, 4 and 16 concurrent clients; each
client sends its next request as soon as the previous one is answered. Per level and server:
requests/s (answered requests over the wall time of the level), p50/p95 latency, completion
tokens/s. Levels and servers are interleaved round-robin; each figure is the median over the
rounds. ``python -m llama_cpp.server`` serves one request at a time; backplan decodes up to
``--parallel`` requests together in one llama.cpp context.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    f"Here is a long, detailed story about {s}. It begins on a quiet morning when"
    for s in (
        "a lighthouse keeper",
        "a lost robot",
        "two rival bakers",
        "a mountain village",
        "an old violin",
        "a desert caravan",
        "a city library",
        "a night train",
        "a chess champion",
        "a garden of glass",
        "a sailor and a whale",
        "a clockmaker",
        "a school of wizards",
        "a small red kite",
        "a forgotten island",
        "a winter market",
    )
]
LEVELS = (1, 4, 16)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self, name: str, cmd: list[str], port: int, ready_path: str, extra: dict[str, Any]
    ) -> None:
        self.name = name
        self.cmd = cmd
        self.url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.extra = extra  # body fields this server needs for the same decoding
        self.log = open(f"/tmp/server_load_{name}_{port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited: see {self.log.name}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} not ready after {timeout}s: see {self.log.name}")

    def rss_mib(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def drive(
    url: str,
    path: str,
    body_for: Callable[[int], dict[str, Any]],
    *,
    clients: int,
    n_requests: int,
    timeout_s: float = 600,
) -> tuple[list[tuple[float, dict[str, Any]]], list[str], float]:
    """``clients`` threads, each POSTing ``body_for(i)`` to ``path`` back to back until
    ``n_requests`` are done: (latency, JSON body) of each 200 answer, the errors, wall seconds."""
    todo = iter(range(n_requests))
    lock = threading.Lock()
    answers: list[tuple[float, dict[str, Any]]] = []
    errors: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=timeout_s) as c:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = c.post(path, json=body_for(i))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                with lock:
                    answers.append((dt, r.json()))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, errors, time.perf_counter() - t0


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank); NaN for none."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _level(server: Server, clients: int, n_requests: int, max_tokens: int) -> dict[str, Any]:
    """``clients`` threads, each sending requests back to back until ``n_requests`` are done."""

    def body(i: int) -> dict[str, Any]:
        return {
            "prompt": PROMPTS[i % len(PROMPTS)],
            "max_tokens": max_tokens,
            "temperature": 0,
            **server.extra,
        }

    answers, errors, wall = drive(
        server.url, "/v1/completions", body, clients=clients, n_requests=n_requests
    )
    latencies = [dt for dt, _ in answers]
    tokens = [int(a["usage"]["completion_tokens"]) for _, a in answers]
    lat = sorted(latencies)
    return {
        "requests": len(lat),
        "errors": errors,
        "wall_s": wall,
        "req_s": len(lat) / wall,
        "tok_s": sum(tokens) / wall,
        "min_s": lat[0] if lat else float("nan"),
        "p50_s": percentile(lat, 0.50),
        "p95_s": percentile(lat, 0.95),
        "mean_completion_tokens": statistics.mean(tokens) if tokens else 0.0,
        "latencies_s": [round(x, 3) for x in latencies],
    }


def _fingerprint() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    versions = {}
    for pkg in ("llama_cpp_python", "fastapi", "uvicorn", "httpx"):
        try:
            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            versions[pkg] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "packages": versions,
    }


def write_results(results: Path | None, name: str, result: dict[str, Any], md: str) -> None:
    """Print the markdown; with a results folder, write ``name``.json and .md atomically."""
    print(md)
    if results is None:
        return
    from runtime.atomic import write_text_atomic

    results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(results / f"{name}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(results / f"{name}.md", md)
    print(f"wrote {results / name}.json and .md")


def _markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [
        f"# Server load ({cfg['model']}, max_tokens {cfg['max_tokens']}, temperature 0, "
        f"median of {cfg['rounds']} rounds, {cfg['threads']} threads, "
        f"{result['seconds']:.0f} s)",
        "",
        f"backplan serve --parallel {cfg['parallel']} (verifier off) against "
        "`python -m llama_cpp.server` on the same model and machine; non-streaming "
        "/v1/completions, each client sends its next request when answered.",
        "",
        "| clients | server | req/s | ratio | min s | p50 s | p95 s | tok/s | tokens/req "
        "| errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in result["levels"]:
        base = level["servers"]["llama_cpp.server"]["req_s"]
        for name, row in level["servers"].items():
            ratio = row["req_s"] / base if base else float("nan")
            lines.append(
                f"| {level['clients']} | {name} | {row['req_s']:.2f} | {ratio:.2f} | "
                f"{row['min_s']:.2f} | {row['p50_s']:.2f} | {row['p95_s']:.2f} | "
                f"{row['tok_s']:.1f} | "
                f"{row['mean_completion_tokens']:.1f} | {row['errors']} |"
            )
    one = result["levels"][0]["servers"]
    best = one["llama_cpp.server"]["min_s"]
    if best and best == best:  # not NaN
        lines += [
            "",
            f"Speed of llama_cpp.server varies between requests of the same work (its fastest "
            f"at 1 client: {best:.2f} s, p50 {one['llama_cpp.server']['p50_s']:.2f} s). Against "
            f"its fastest request sustained (1 / {best:.2f} s = {1 / best:.2f} req/s) backplan "
            f"would be {one['backplan']['req_s'] * best:.2f}x at 1 client, "
            f"{result['levels'][-1]['servers']['backplan']['req_s'] * best:.2f}x at 16.",
        ]
    lines += [
        "",
        f"Target: backplan >= 0.9x llama_cpp.server at 1 client and above it at 4 and 16. "
        f"Met: {result['target_met']}.",
        "",
        f"Resident memory after the last round (MiB): {result['rss_mib']}. 1-minute load "
        "average before/after each level is in the JSON (other work on the machine skews "
        "timings).",
        f"Machine: {result['fingerprint']['cpu']}, {result['fingerprint']['cores']} cores.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument(
        "--requests", type=int, default=12, help="Requests per level (at least 2 per client)."
    )
    ap.add_argument("--parallel", type=int, default=8, help="backplan's slots.")
    ap.add_argument("--n-ctx", type=int, default=1024, help="backplan's context per slot.")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--quick", action="store_true", help="One round, fewer requests.")
    ap.add_argument(
        "--results",
        type=Path,
        default=None,
        help="Write <DIR>/server_load.{json,md} (full runs: benchmarks/results).",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.requests = 1, 4

    from runtime.models.fetch import model_path

    path = str(model_path(args.model))
    t_start = time.perf_counter()

    def launch(name: str) -> Server:
        port = _free_port()
        if name == "backplan":
            cmd = [
                sys.executable,
                "-m",
                "runtime.server",
                "--model",
                path,
                "--port",
                str(port),
                "--parallel",
                str(args.parallel),
                "--n-ctx",
                str(args.n_ctx),
                "--queue",
                "256",
                "--n-threads",
                str(args.threads),
                "--verifier",
                "none",
                "--strategy",
                "plain",
            ]
            return Server(name, cmd, port, "/ready", {})
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            path,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            str(args.threads),
            "--n_threads_batch",
            str(args.threads),
            "--logits_all",
            "False",
            "--verbose",
            "False",
        ]
        # its completions default to repeat_penalty 1.1: turn it off so both decode greedily
        # the same way (logits_all off too: its default keeps every position's logits)
        return Server(name, cmd, port, "/v1/models", {"repeat_penalty": 1.0})

    names = ["backplan", "llama_cpp.server"]
    raw: dict[int, dict[str, list[dict[str, Any]]]] = {c: {n: [] for n in names} for c in LEVELS}
    rss: dict[str, float] = {}
    for rnd in range(args.rounds):
        # one server at a time (nothing idle beside it), order alternating between rounds
        for name in names if rnd % 2 == 0 else names[::-1]:
            server = launch(name)
            try:
                server.wait_ready()
                _level(server, 2, 2, 8)  # warm up: first-request costs out of the measurement
                for clients in LEVELS:
                    n = max(args.requests, 2 * clients)
                    load0 = os.getloadavg()[0]
                    res = _level(server, clients, n, args.max_tokens)
                    res["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
                    raw[clients][name].append(res)
                    print(
                        f"round {rnd + 1} clients {clients:2d} {name:17s} "
                        f"{res['req_s']:6.2f} req/s p50 {res['p50_s']:.2f}s "
                        f"p95 {res['p95_s']:.2f}s {res['tok_s']:7.1f} tok/s "
                        f"errors {len(res['errors'])} load {res['loadavg_1m']}",
                        flush=True,
                    )
                rss[name] = round(server.rss_mib(), 1)
            finally:
                server.stop()

    levels = []
    for clients in LEVELS:
        row: dict[str, Any] = {"clients": clients, "servers": {}}
        for name, runs in raw[clients].items():
            row["servers"][name] = {
                key: statistics.median(r[key] for r in runs)
                for key in ("req_s", "tok_s", "min_s", "p50_s", "p95_s", "mean_completion_tokens")
            } | {"errors": sum(len(r["errors"]) for r in runs), "rounds": runs}
        ours = row["servers"]["backplan"]["req_s"]
        theirs = row["servers"]["llama_cpp.server"]["req_s"]
        row["ratio"] = ours / theirs if theirs else None
        levels.append(row)
    ratios = {lv["clients"]: lv["ratio"] for lv in levels}
    target = bool(
        ratios[1] and ratios[1] >= 0.9 and all(ratios[c] and ratios[c] > 1.0 for c in (4, 16))
    )
    result = {
        "benchmark": "server_load",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "servers": {
            "backplan": f"python -m runtime.server --parallel {args.parallel} --n-ctx "
            f"{args.n_ctx} --n-threads {args.threads} --verifier none --strategy plain",
            "llama_cpp.server": f"python -m llama_cpp.server --n_ctx 2048 --n_threads "
            f"{args.threads} --n_threads_batch {args.threads} --logits_all False "
            "(requests: repeat_penalty 1.0)",
        },
        "config": {
            "model": args.model,
            "max_tokens": args.max_tokens,
            "rounds": args.rounds,
            "requests_per_level": {c: max(args.requests, 2 * c) for c in LEVELS},
            "parallel": args.parallel,
            "threads": args.threads,
            "prompts": PROMPTS,
        },
        "levels": levels,
        "ratios": ratios,
        "target_met": target,
        "rss_mib": rss,
        "fingerprint": _fingerprint(),
        "seconds": time.perf_counter() - t_start,
    }
    md = _markdown(result)
    print(md)
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "server_load.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.results / "server_load.md").write_text(md)
        print(f"wrote {args.results / 'server_load.json'} and server_load.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
