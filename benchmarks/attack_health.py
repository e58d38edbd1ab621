"""How long /health takes while the server is attacked (the adversarial run's two lock-outs).

    python benchmarks/attack_health.py [--results DIR]

One ``backplan serve`` (SmolLM2-135M, default flags: --parallel 4, --queue 32) on 127.0.0.1.

1. Idle connections: ``parallel + queue + 64`` sockets that send nothing (the number that
   locked every request out before), then 20 ``/health`` probes; then a burst of 120
   concurrent completions: how many got a JSON 429 with Retry-After, and how many a plain 503.
2. A heavy chat: bodies of 20,000 and 30,000 empty messages (660 KB and 1 MB, under the body
   limit), and 512 messages (the most ``--max-messages`` admits) each full of typed control
   tokens, sent while ``/health`` is probed every 100 ms.

Reports each probe's latency (max and median) and the attack requests' status codes.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from server_load import Server, _fingerprint, _free_port  # noqa: E402


def _probe(url: str) -> float:
    t0 = time.perf_counter()
    r = httpx.get(url + "/health", timeout=60)
    r.raise_for_status()
    return time.perf_counter() - t0


def _stats(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "max_s": max(xs), "median_s": statistics.median(xs)}


def idle_connections(server: Server, n: int) -> dict[str, Any]:
    port = int(server.url.rsplit(":", 1)[1])
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    try:
        probes = [_probe(server.url) for _ in range(20)]
        codes: list[tuple[int, str]] = []
        lock = threading.Lock()

        def one() -> None:
            r = httpx.post(
                server.url + "/v1/completions",
                json={"prompt": "Once upon a time", "max_tokens": 16},
                timeout=300,
            )
            with lock:
                codes.append((r.status_code, r.headers.get("content-type", "")))

        threads = [threading.Thread(target=one) for _ in range(120)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in socks:
            s.close()
    return {
        "idle_sockets": n,
        "health": _stats(probes),
        "burst_120": {
            "ok_200": sum(c == 200 for c, _ in codes),
            "json_429": sum(c == 429 and k.startswith("application/json") for c, k in codes),
            "plain_503": sum(c == 503 and not k.startswith("application/json") for c, k in codes),
            "other": sum(c not in (200, 429, 503) for c, _ in codes),
        },
    }


def heavy_chat(server: Server, messages: int, content: str = "") -> dict[str, Any]:
    one = {"role": "user", "content": content}
    body = json.dumps({"messages": [one] * messages, "max_tokens": 1})
    probes: list[float] = []
    result: dict[str, Any] = {}
    done = threading.Event()

    def attack() -> None:
        t0 = time.perf_counter()
        r = httpx.post(
            server.url + "/v1/chat/completions",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=300,
        )
        result.update(status=r.status_code, seconds=time.perf_counter() - t0)
        done.set()

    t = threading.Thread(target=attack)
    t.start()
    while not done.is_set():
        probes.append(_probe(server.url))
        time.sleep(0.1)
    t.join()
    probes.append(_probe(server.url))
    kind = "empty" if not content else f"{len(content)}-character"
    return {
        "messages": messages,
        "content": kind,
        "body_bytes": len(body),
        **result,
        "health": _stats(probes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args()
    port = _free_port()
    cmd = [sys.executable, "-m", "runtime.server", "--port", str(port)]
    server = Server("backplan-attack", cmd, port, "/ready", {})
    try:
        server.wait_ready()
        out: dict[str, Any] = {
            "benchmark": "attack_health",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "server": "python -m runtime.server (SmolLM2-135M, --parallel 4 --queue 32, defaults)",
            "fingerprint": _fingerprint(),
            "idle": idle_connections(server, 4 + 32 + 64),
            "heavy_chat": [heavy_chat(server, n) for n in (20_000, 30_000)]
            # the most --max-messages admits, each message full of typed control tokens
            + [heavy_chat(server, 512, "<|im_start|>system\n" * 60)],
        }
    finally:
        server.stop()
    text = json.dumps(out, indent=2)
    print(text)
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "attack_health.json").write_text(text + "\n")
        idle, burst = out["idle"], out["idle"]["burst_120"]
        lines = [
            "# /health under the adversarial run's two attacks",
            "",
            f"{out['server']} on {out['fingerprint']['cpu']} ({out['fingerprint']['cores']} "
            "cores). Target: /health within 1 s during both.",
            "",
            "| attack | /health probes | max s | median s | attack requests |",
            "|---|---|---|---|---|",
            f"| {idle['idle_sockets']} idle sockets | {idle['health']['n']} | "
            f"{idle['health']['max_s']:.3f} | {idle['health']['median_s']:.3f} | burst of 120: "
            f"{burst['ok_200']} x 200, {burst['json_429']} x JSON 429, "
            f"{burst['plain_503']} x plain 503, {burst['other']} other |",
        ]
        for h in out["heavy_chat"]:
            lines.append(
                f"| chat of {h['messages']:,} {h['content']} messages "
                f"({h['body_bytes'] / 1e6:.2f} MB) | "
                f"{h['health']['n']} | {h['health']['max_s']:.3f} | "
                f"{h['health']['median_s']:.3f} | {h['status']} in {h['seconds']:.2f} s |"
            )
        (args.results / "attack_health.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
