"""This machine's decode speed predicted from its CPU figures, checked against its profiles.

    python benchmarks/cpu_prediction.py PROFILE.json PROFILE.json [...] [--results DIR]

Each PROFILE is a ``backplan profile`` of a different model made on this machine (plain
decoding is enough: ``--configs plain``). For each, the prediction from the documented CPU
factors, and the prediction with the factors calibrated on the *other* profiles only
(leave-one-out): the held-out model is never part of its own calibration. With ``--probe``,
also llama.cpp's decode time of random-weight clones of each profiled model's shape (from
its header only) (:mod:`planner.capacity.cpu_probe`), probed now: run it on the machine that
made the profiles, with nothing else running. Writes ``cpu_prediction.json`` and
``cpu_prediction.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware_catalog import load_catalog  # noqa: E402
from planner.capacity.prediction import predict_from_profile, probe_for  # noqa: E402
from planner.profiler.schema import load_profile  # noqa: E402
from runtime.atomic import write_text_atomic  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profiles", nargs="+", type=Path)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks/results")
    ap.add_argument("--probe", action="store_true", help="Also probe llama.cpp here.")
    args = ap.parse_args()
    catalog = load_catalog()
    profiles = [load_profile(p) for p in args.profiles]
    rows: list[dict[str, Any]] = []
    for i, prof in enumerate(profiles):
        others = profiles[:i] + profiles[i + 1 :]
        costs = probe_for(prof, on_step=print) if args.probe else None
        res = predict_from_profile(prof, catalog, others, costs)
        res["profile"] = args.profiles[i].name
        rows.append(res)
    med_default = statistics.median(abs(r["error_pct"]) for r in rows)
    med_cal = statistics.median(abs(r["calibrated_error_pct"]) for r in rows)
    out = {
        "rows": rows,
        "median_abs_error_pct_documented": round(med_default, 1),
        "median_abs_error_pct_calibrated": round(med_cal, 1),
        "worst_abs_error_pct_calibrated": round(
            max(abs(r["calibrated_error_pct"]) for r in rows), 1
        ),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Local CPU: predicted vs measured plain decode",
        "",
        f"CPU: {rows[0]['cpu']}; bandwidth {rows[0]['bandwidth_gb_s']} GB/s and "
        f"{rows[0]['fp32_tflops'] * 1000:.0f} GFLOP/s fp32 measured with each profile (numpy).",
        "Calibrated = CPU factors fitted on the *other* profiles (leave-one-out).",
        "",
        "| model | measured tok/s | documented factors | error | calibrated on | "
        "bandwidth eff. | us/layer | calibrated | error |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    probed = [r for r in rows if "probed_decode_tok_s" in r]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['measured_decode_tok_s']} | {r['predicted_decode_tok_s']} | "
            f"{r['error_pct']:+.1f}% | {', '.join(r['calibrated_on'])} | "
            f"{r['calibrated_bandwidth_efficiency']:.2f} | "
            f"{r['calibrated_layer_overhead_us']:.0f} | {r['calibrated_decode_tok_s']} | "
            f"{r['calibrated_error_pct']:+.1f}% |"
        )
    lines += [
        "",
        f"Median absolute error: documented factors {med_default:.1f}%, calibrated "
        f"{med_cal:.1f}% (worst {out['worst_abs_error_pct_calibrated']:.1f}%).",
    ]
    if probed:
        lines += [
            "",
            "## Probed: llama.cpp on random-weight clones of each model's shape, measured now",
            "",
            "Random-weight llama-architecture clones of the shape in each model's header "
            "(widths, heads, vocabulary, output matrix) at half and full depth, quantised by "
            "llama.cpp to the model's file type, decoded batch-1 on the profile's thread count; "
            "the per-token time's line against depth splits it into per-layer and fixed parts. "
            "The model's weights are never read. This is a measurement of the shape on this "
            "CPU, not a roofline.",
            "",
            "| model | measured tok/s | ms/layer | layer weights GB/s | fixed ms | clone tok/s | "
            "error |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in probed:
            lines.append(
                f"| {r['model']} | {r['measured_decode_tok_s']} | {r['probed_layer_ms']} | "
                f"{r['probed_weight_stream_gb_s']} | {r['probed_fixed_ms']} | "
                f"{r['probed_decode_tok_s']} | {r['probed_error_pct']:+.1f}% |"
            )
        med_probe = statistics.median(abs(r["probed_error_pct"]) for r in probed)
        worst_probe = max(abs(r["probed_error_pct"]) for r in probed)
        out["median_abs_error_pct_probed"] = round(med_probe, 1)
        out["worst_abs_error_pct_probed"] = round(worst_probe, 1)
        lines += ["", f"Median absolute error probed {med_probe:.1f}% (worst {worst_probe:.1f}%)."]
    write_text_atomic(args.results / "cpu_prediction.json", json.dumps(out, indent=2) + "\n")
    md = "\n".join(lines) + "\n"
    write_text_atomic(args.results / "cpu_prediction.md", md)
    print(md)


if __name__ == "__main__":
    main()
