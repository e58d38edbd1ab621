"""Check the planner's decode throughput under concurrency against published llama-batched-bench.

    python benchmarks/concurrency_validation.py [--results DIR]

A plan is sized by the aggregate tokens/s of a replica decoding ``c`` sequences at once
(:func:`planner.capacity.roofline.pass_seconds` with ``batch=c``: the weights streamed once,
each sequence's KV cache, each further sequence's multiply-adds, the fixed per-layer cost).
This compares that prediction with the aggregate decode rate (S_TG) that published
``llama-batched-bench`` tables report at 1-32 parallel sequences
(``benchmarks/data/batched_bench_published.yaml``, each run with its source). The efficiency
factors are the documented defaults of ``planner/capacity/efficiency.py``, not fitted here.
Mixture-of-experts and hybrid-recurrent runs are listed but left out: the planner models dense
transformers. Target: median absolute error <= 20% on the published points.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from roofline_validation import DATA, device, gpu_spec, model_shape  # noqa: E402

#: The batch sizes the issue names; tables with others (3, 5, ...) keep only these.
BATCHES = (1, 2, 4, 8, 16, 32)
#: Families the roofline models; anything else (MoE, hybrid recurrent) is reported, not scored.
DENSE = ("qwen2 7b", "gemma3 4b", "gemma-3-4b", "llama 7b", "openllama", "tinyllama", "llama v2")


def _dense(model: str) -> bool:
    m = model.lower()
    return any(k in m for k in DENSE) and "moe" not in m


def predict_points() -> tuple[list[dict[str, Any]], list[str]]:
    from hardware_catalog import load_catalog
    from planner.capacity.efficiency import efficiency_for
    from planner.capacity.roofline import pass_seconds

    runs = yaml.safe_load((DATA / "batched_bench_published.yaml").read_text())["runs"]
    extra = yaml.safe_load((DATA / "validation_gpus.yaml").read_text())
    catalog = load_catalog()
    points, skipped = [], []
    for run in runs:
        if not _dense(run["model"]):
            skipped.append(f"{run['gpu']}: {run['model']} (not a dense transformer)")
            continue
        spec = gpu_spec(run["gpu_key"], extra, catalog)
        if spec is None:
            skipped.append(f"{run['gpu']}: no specification")
            continue
        shape = model_shape({**run, "model_size_gib": None})
        dev = device(run["gpu"], spec)
        eff = efficiency_for(spec["vendor"], spec["kind"])
        for row in run["rows"]:
            if row["b"] not in BATCHES or not row.get("s_tg_tok_s"):
                continue
            b = row["b"]
            t = pass_seconds(dev, shape, eff, batch=b, context=row["pp"] + row["tg"] // 2)
            pred = b / t
            points.append(
                {
                    "gpu": run["gpu"],
                    "gpu_key": run["gpu_key"],
                    "model": run["model"],
                    "quant": run["quant"],
                    "build": run.get("build") or run.get("date"),
                    "pp": row["pp"],
                    "b": b,
                    "published_tok_s": row["s_tg_tok_s"],
                    "predicted_tok_s": round(pred, 1),
                    "error_pct": round(100 * (pred / row["s_tg_tok_s"] - 1), 1),
                    "source": run["source_url"],
                }
            )
    return points, skipped


def summarise(points: list[dict[str, Any]]) -> dict[str, Any]:
    errs = [abs(p["error_pct"]) for p in points]
    return {
        "points": len(points),
        "devices": len({p["gpu_key"] for p in points}),
        "median_abs_error_pct": round(statistics.median(errs), 1) if errs else None,
        "max_abs_error_pct": round(max(errs), 1) if errs else None,
        "target": "median <= 20%",
    }


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for p in points:
        if p["pp"] == min(q["pp"] for q in points if q["gpu"] == p["gpu"]):
            runs.setdefault((p["gpu"], p["model"], str(p["build"])), []).append(p)
    fig, ax = plt.subplots(figsize=(9, 6))
    for i, ((gpu, model, build), pts) in enumerate(sorted(runs.items())):
        pts.sort(key=lambda p: p["b"])
        color = f"C{i % 10}"
        b = [p["b"] for p in pts]
        label = f"{gpu[:24]}, {model[:22]} ({build[:12]})"
        ax.plot(b, [p["published_tok_s"] for p in pts], "o-", color=color, label=label)
        ax.plot(b, [p["predicted_tok_s"] for p in pts], "x--", color=color)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("parallel sequences (B)")
    ax.set_ylabel("aggregate decode tokens/s (S_TG)")
    ax.set_title("Published llama-batched-bench (o, solid) vs backplan's prediction (x, dashed)")
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args()
    points, skipped = predict_points()
    summary = summarise(points)
    by_device = {
        key: summarise([p for p in points if p["gpu_key"] == key])
        for key in sorted({p["gpu_key"] for p in points})
    }
    recent = [p for p in points if str(p["build"]).startswith(("eeee", "11fb", "b828"))]
    md = [
        "# Concurrency validation: predicted vs published llama-batched-bench aggregate decode",
        "",
        f"{summary['points']} points on {summary['devices']} devices; median absolute error "
        f"{summary['median_abs_error_pct']}%, worst {summary['max_abs_error_pct']}% "
        "(target: median <= 20%). The factors are the documented defaults of "
        "`planner/capacity/efficiency.py`, not fitted to these tables.",
        "",
        "| device | points | median abs error % | worst % |",
        "|---|---:|---:|---:|",
    ]
    for gpu, s in by_device.items():
        md.append(
            f"| {gpu} | {s['points']} | {s['median_abs_error_pct']} | {s['max_abs_error_pct']} |"
        )
    if recent:
        r = summarise(recent)
        md += [
            "",
            f"Current builds only (llama.cpp benches/ files, Nov 2025-Feb 2026; {r['points']} "
            f"points): median {r['median_abs_error_pct']}%, worst {r['max_abs_error_pct']}%. "
            "The 2023 tables come from builds whose batched attention did not yet scale "
            "(B = 2 barely faster than B = 1), which no current-build model reproduces.",
        ]
    md += [
        "",
        "| device | model | quant | build | PP | B | published S_TG | predicted | error % |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        md.append(
            f"| {p['gpu']} | {p['model'][:30]} | {p['quant']} | {p['build']} | {p['pp']} | "
            f"{p['b']} | {p['published_tok_s']} | {p['predicted_tok_s']} | {p['error_pct']} |"
        )
    md += ["", "Left out:", ""] + [f"- {s}" for s in skipped]
    text = "\n".join(md) + "\n"
    print("\n".join(md[:12]))
    if args.results is not None:
        from runtime.atomic import write_json_atomic, write_text_atomic

        write_json_atomic(
            args.results / "concurrency_validation.json",
            {"summary": summary, "by_device": by_device, "points": points, "skipped": skipped},
        )
        write_text_atomic(args.results / "concurrency_validation.md", text)
        plot(points, args.results / "concurrency_validation.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
