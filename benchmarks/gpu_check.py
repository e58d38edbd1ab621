"""GPU check: backplan's runtime on a lent NVIDIA GPU (``scripts/gpu-check run`` starts it there).

    python benchmarks/gpu_check.py --out DIR --vocab VOCAB.gguf [--models M,M] [--repeats R]

For each catalogued model: a random-weight GGUF in its shape (llama architecture, the
tokenizer of ``--vocab``, Q4_K_M by llama.cpp's own quantiser; random weights measure memory,
compute and speed truthfully, not quality), then

- **engine**: batch-1 greedy decode tok/s of llama.cpp through backplan's engine, every layer
  on the GPU (median of R runs of N tokens): the runtime's ceiling;
- **profile**: ``backplan profile`` of every configuration (plain, latent, separate equal-size
  model, syntax; threshold and VGB; constant heads, so cost only), with NVML memory and energy;
- **prediction**: ``backplan predict`` for the catalogue's entry of this GPU, and the ratio of
  measured to predicted decode speed (the planner's roofline checked on real hardware).

Everything lands in DIR as it is measured (``gpu_check.json``, ``gpu_check.md``,
``profile_<model>.json``), so a run cut off by its time limit still returns what it did.
Without a GPU (a dry run here) the same steps run on the CPU and say so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.atomic import write_text_atomic  # noqa: E402

Q4_K_M = 15  # llama.cpp's file type


def backplan(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from backplan.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
    )


def gpu_facts() -> dict[str, Any]:
    """The first NVIDIA GPU as NVML reports it; {} when none is readable."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no library: a CPU dry run
        return {}
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(h)
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        facts: dict[str, Any] = {
            "name": name.decode() if isinstance(name, bytes) else name,
            "memory_gb": round(mem.total / 1e9, 1),
            "driver": str(pynvml.nvmlSystemGetDriverVersion()),
        }
        with contextlib.suppress(pynvml.NVMLError):
            facts["power_limit_w"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000
        return facts
    finally:
        pynvml.nvmlShutdown()


def catalogue_gpu(name: str) -> str | None:
    """The catalogue id of a GPU NVML names (``NVIDIA H100 80GB HBM3`` -> ``h100-sxm``)."""
    n = name.lower()
    for chip in ("h200", "h100"):
        if chip in n:
            if "nvl" in n:
                return f"{chip}-nvl"
            if "pcie" in n:
                return f"{chip}-pcie"
            return f"{chip}-sxm"
    return None


def synthetic_model(name: str, vocab: Path, work: Path) -> Path:
    """A Q4_K_M random-weight GGUF in the catalogued shape of ``name``."""
    from hardware_catalog import load_catalog
    from planner.capacity.cpu_probe import ProbeShape, write_synthetic_gguf
    from runtime.engine.llama import quantize_model

    entry = load_catalog().models[name]
    shape = ProbeShape(
        hidden=entry.hidden_size,
        ffn=entry.intermediate_size or 4 * entry.hidden_size,
        n_head=entry.n_heads,
        n_head_kv=entry.n_kv_heads,
        layers=entry.n_layers,
        untied_output=not entry.tied_embeddings,
    )
    f16 = work / f"{name}-random-f16.gguf"
    out = work / f"{name}-random-q4_k_m.gguf"
    write_synthetic_gguf(f16, shape, vocab, seed=0)
    quantize_model(f16, out, Q4_K_M, threads=os.cpu_count() or 1)
    f16.unlink()
    return out


def engine_tok_s(path: Path, *, tokens: int, repeats: int) -> tuple[float, list[float], int]:
    """Median batch-1 greedy decode tok/s, every layer offloaded when the build can."""
    from planner.capacity.cpu_probe import decode_runs_s
    from runtime.engine.llama import gpu_offload_supported

    layers = -1 if gpu_offload_supported() else 0
    runs = [
        1.0 / s for s in decode_runs_s(path, tokens=tokens, repeats=repeats, n_gpu_layers=layers)
    ]
    return statistics.median(runs), [round(r, 1) for r in runs], layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--vocab", type=Path, required=True, help="a GGUF whose tokenizer to use")
    ap.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("-n", "--tokens", type=int, default=128)
    ap.add_argument("--configs", default=None, help="profile configurations (default: all)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from runtime.engine.llama import gpu_offload_supported, system_info

    gpu = gpu_facts()
    report: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": gpu or None,
        "catalogue_gpu": catalogue_gpu(gpu["name"]) if gpu else None,
        "llama_cpp_gpu_offload": gpu_offload_supported(),
        "llama_cpp_system_info": system_info(),
        "build_s": float(os.environ["GPU_CHECK_BUILD_S"])
        if os.environ.get("GPU_CHECK_BUILD_S")
        else None,
        "settings": {"tokens": args.tokens, "repeats": args.repeats, "weights": "random"},
        "models": [],
    }

    def save() -> None:
        write_text_atomic(args.out / "gpu_check.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(args.out / "gpu_check.md", markdown(report))

    save()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for name in args.models.split(","):
            row: dict[str, Any] = {"model": name}
            report["models"].append(row)
            t0 = time.perf_counter()
            path = synthetic_model(name, args.vocab, Path(tmp))
            row["synthesis_s"] = round(time.perf_counter() - t0, 1)
            row["file_gb"] = round(path.stat().st_size / 1e9, 3)
            med, runs, layers = engine_tok_s(path, tokens=args.tokens, repeats=args.repeats)
            row["engine"] = {"decode_tok_s": round(med, 1), "runs": runs, "gpu_layers": layers}
            save()
            if report["catalogue_gpu"]:
                p = backplan("predict", "--gpu", report["catalogue_gpu"], "--model", name, "--json")
                if p.returncode == 0:
                    pred = json.loads(p.stdout)
                    row["predicted"] = pred
                    tok_s = pred.get("decode_tok_s")
                    if tok_s:
                        row["engine"]["measured_over_predicted"] = round(med / tok_s, 3)
                else:
                    row["predicted_error"] = p.stderr.strip()[-500:]
            save()
            prof = args.out / f"profile_{name}.json"
            cmd = ["profile", "--model", str(path), "--head", "constant"]
            cmd += ["--repeats", str(args.repeats), "-n", str(args.tokens), "-o", str(prof)]
            if args.configs:
                cmd += ["--configs", args.configs]
            p = backplan(*cmd, timeout_s=900)
            row["profile_rc"] = p.returncode
            row["profile_table"] = p.stdout.strip()
            if p.returncode != 0:
                row["profile_error"] = p.stderr.strip()[-1000:]
            elif prof.exists():
                row["profile"] = summarise_profile(json.loads(prof.read_text()))
            save()
    print(markdown(report))


def summarise_profile(profile: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c in profile["configs"]:
        rows.append(
            {
                "config": c["name"],
                "decode_tok_s": round(c["decode"]["tok_s"]["median"], 1),
                "spread_pct": c["decode"]["tok_s"]["spread_pct"],
                "memory_ratio": c["memory_ratio"],
                "compute_ratio": c["compute_ratio"],
                "decode_ratio": c["decode_ratio"],
                "peak_gb": c["memory"]["peak_gb"],
                "memory_source": c["memory"]["source"],
                "j_per_token": c["energy"]["j_per_token"]["median"],
                "energy_source": c["energy"]["source"],
            }
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    gpu = report["gpu"] or {}
    lines = [
        "# GPU check: backplan's runtime on " + (gpu.get("name") or "no GPU (CPU dry run)"),
        "",
        f"{report['created']}; driver {gpu.get('driver', '-')}; llama.cpp GPU offload "
        f"{report['llama_cpp_gpu_offload']}; llama-cpp-python build "
        f"{report['build_s'] or '-'} s. Random-weight Q4_K_M models in each catalogued shape "
        f"(speed and memory, not quality); {report['settings']['tokens']} tokens, median of "
        f"{report['settings']['repeats']}.",
        "",
    ]
    for row in report["models"]:
        eng = row.get("engine", {})
        pred = row.get("predicted") or {}
        lines += [
            f"## {row['model']} ({row.get('file_gb', '?')} GB file)",
            "",
            f"- engine decode (batch 1, greedy, {eng.get('gpu_layers')} GPU layers): "
            f"**{eng.get('decode_tok_s', '-')} tok/s** (runs {eng.get('runs', '-')})",
            f"- predicted by `backplan predict --gpu {report['catalogue_gpu']}`: "
            f"{pred.get('decode_tok_s', '-')} tok/s; measured/predicted "
            f"{eng.get('measured_over_predicted', '-')}",
        ]
        if row.get("profile"):
            lines += [
                "",
                "| config | tok/s | spread % | memory x | compute x | decode x | peak GB | "
                "J/token |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for c in row["profile"]:
                lines.append(
                    f"| {c['config']} | {c['decode_tok_s']} | {c['spread_pct']} | "
                    f"{c['memory_ratio']} | {c['compute_ratio']} | {c['decode_ratio']} | "
                    f"{c['peak_gb']} ({c['memory_source']}) | {c['j_per_token']:.3f} "
                    f"({c['energy_source']}) |"
                )
        elif "profile_error" in row:
            lines += ["", "profile failed:", "", "```", row["profile_error"], "```"]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
