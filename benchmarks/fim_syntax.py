"""Fill-in-the-middle with and without the syntax verifier, on gaps cut from the stdlib.

    python benchmarks/fim_syntax.py [--results DIR] [--cases N] [--llama-server PATH]

Each case (benchmarks/fim_cases.py: a stdlib function with one to three lines, or the rest of
a line, removed) is sent to ``backplan serve``'s ``/infill`` as an editor plugin sends it,
greedy, ``n_predict`` 64: plain (verifier off), then ``syntax`` with the threshold strategy
(the middle judged in its file). With ``--llama-server`` (benchmarks/setup_llama_server.sh)
llama.cpp's own server answers the same requests as a reference for plain FIM. Per mode: the
share of answers that leave the file parsable, the share that are exactly the removed span
(ignoring whitespace at its ends), and the seconds per request.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fim_cases import FimCase, build_cases, exact, parses, starts_right  # noqa: E402
from server_load import Server, _fingerprint, _free_port, write_results  # noqa: E402

MODES = {
    "backplan plain": {"backplan": {"verifier": "none", "strategy": "plain"}},
    "backplan syntax": {"backplan": {"verifier": "syntax", "strategy": "threshold"}},
}


def _body(case: FimCase, n_predict: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_prefix": case.prefix,
        "input_suffix": case.suffix,
        "input_extra": [],
        "prompt": "",
        "n_predict": n_predict,
        "temperature": 0,
        "top_k": 40,
        "top_p": 0.99,
        "cache_prompt": True,
        **extra,
    }


def _run(
    server: Server, mode: str, extra: dict[str, Any], cases: list[FimCase], n_predict: int
) -> dict[str, Any]:
    rows = []
    with httpx.Client(base_url=server.url, timeout=300) as c:
        for i, case in enumerate(cases):
            t0 = time.perf_counter()
            r = c.post("/infill", json=_body(case, n_predict, extra))
            dt = time.perf_counter() - t0
            r.raise_for_status()
            a = r.json()
            middle = a["content"]
            rows.append(
                {
                    "id": case.id,
                    "kind": case.kind,
                    "parses": parses(case, middle),
                    "exact": exact(case, middle),
                    "starts_right": starts_right(case, middle),
                    "seconds": round(dt, 3),
                    "tokens": a.get("tokens_predicted"),
                    "stop_type": a.get("stop_type"),
                    "rollbacks": (a.get("backtrack") or {}).get("rollbacks"),
                    "middle": middle,
                }
            )
            print(
                f"{mode:16s} {i + 1:3d}/{len(cases)} parses {rows[-1]['parses']!s:5s} "
                f"exact {rows[-1]['exact']!s:5s} {dt:5.2f}s",
                file=sys.stderr,
                flush=True,
            )
    return {"mode": mode, "rows": rows, **_summary(rows)}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    out: dict[str, Any] = {
        "cases": n,
        "parsable": sum(r["parses"] for r in rows),
        "exact": sum(r["exact"] for r in rows),
        "starts_right": sum(r["starts_right"] for r in rows),
        "seconds_per_request": round(sum(r["seconds"] for r in rows) / max(n, 1), 3),
    }
    for kind in ("lines", "rest"):
        sub = [r for r in rows if r["kind"] == kind]
        out[kind] = {
            "cases": len(sub),
            "parsable": sum(r["parses"] for r in sub),
            "exact": sum(r["exact"] for r in sub),
        }
    return out


def _markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [
        f"# Fill-in-the-middle with the syntax verifier ({cfg['model']}, {cfg['cases']} gaps "
        f"from the Python {cfg['python']} stdlib, greedy, n_predict {cfg['n_predict']}, "
        f"{result['seconds']:.0f} s)",
        "",
        "Each gap: one to three whole lines (`lines`) or the rest of a line (`rest`) removed "
        "from a stdlib function (benchmarks/fim_cases.py); the answer is judged in its file.",
        "",
        "| mode | parsable | exact | starts right | lines: parsable / exact "
        "| rest: parsable / exact | s/request |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["runs"]:
        n = run["cases"]
        lines.append(
            f"| {run['mode']} | {run['parsable']}/{n} ({run['parsable'] / n:.0%}) | "
            f"{run['exact']}/{n} ({run['exact'] / n:.0%}) | "
            f"{run['starts_right']}/{n} ({run['starts_right'] / n:.0%}) | "
            f"{run['lines']['parsable']}/{run['lines']['exact']} of {run['lines']['cases']} | "
            f"{run['rest']['parsable']}/{run['rest']['exact']} of {run['rest']['cases']} | "
            f"{run['seconds_per_request']:.2f} |"
        )
    lines += [
        "",
        "*exact*: the middle is the removed span (whitespace at its ends ignored); *starts "
        "right*: it begins with the removed span (then may go on: a plain answer that never "
        "ends before n_predict writes on past the gap, so it is never exact).",
        "",
        f"Target: the parsable share rises with the syntax verifier against plain FIM. "
        f"Met: {result['target_met']}.",
        "",
        f"Machine: {result['fingerprint']['cpu']}, {result['fingerprint']['cores']} cores.",
        "",
    ]
    return "\n".join(lines)


def _rescore(path: Path) -> int:
    """Recompute a stored run's scores (its answers are kept) and rewrite its markdown."""
    from runtime.atomic import write_text_atomic

    result = json.loads(path.read_text())
    cases = {c.id: c for c in build_cases(result["config"]["cases"])}
    for run in result["runs"]:
        for row in run["rows"]:
            case = cases[row["id"]]
            row["parses"] = parses(case, row["middle"])
            row["exact"] = exact(case, row["middle"])
            row["starts_right"] = starts_right(case, row["middle"])
        run.update(_summary(run["rows"]))
    md = _markdown(result)
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    write_text_atomic(path.with_suffix(".md"), md)
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    import platform

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--n-predict", type=int, default=64)
    ap.add_argument("--llama-server", type=Path, default=None, help="llama-server binary.")
    ap.add_argument("--results", type=Path, default=None, help="Write <DIR>/fim_syntax.*")
    ap.add_argument(
        "--rescore", type=Path, default=None, help="Score a stored fim_syntax.json again."
    )
    args = ap.parse_args(argv)
    if args.rescore is not None:
        return _rescore(args.rescore)

    from runtime.models.fetch import model_path

    path = str(model_path(args.model))
    cases = build_cases(args.cases)
    t_start = time.perf_counter()
    runs = []
    port = _free_port()
    cmd = [sys.executable, "-m", "runtime.server", "--model", path, "--port", str(port)]
    cmd += ["--parallel", "1", "--n-ctx", "2048", "--max-tokens-limit", str(args.n_predict)]
    server = Server("backplan", cmd, port, "/ready", {})
    try:
        server.wait_ready()
        for mode, extra in MODES.items():
            runs.append(_run(server, mode, extra, cases, args.n_predict))
    finally:
        server.stop()
    if args.llama_server is not None:
        port = _free_port()
        cmd = [str(args.llama_server), "-m", path, "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["-np", "1", "-c", "2048", "--no-webui"]
        server = Server("llama-server", cmd, port, "/health", {})
        try:
            server.wait_ready()
            runs.append(_run(server, "llama-server plain", {}, cases, args.n_predict))
        finally:
            server.stop()
    by_mode = {r["mode"]: r for r in runs}
    result = {
        "benchmark": "fim_syntax",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {
            "model": args.model,
            "cases": len(cases),
            "n_predict": args.n_predict,
            "python": platform.python_version(),
        },
        "runs": runs,
        "target_met": by_mode["backplan syntax"]["parsable"]
        > by_mode["backplan plain"]["parsable"],
        "fingerprint": _fingerprint(),
        "seconds": time.perf_counter() - t_start,
    }
    write_results(args.results, "fim_syntax", result, _markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
