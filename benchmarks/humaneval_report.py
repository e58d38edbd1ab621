"""HumanEval results: every run's pass@1 and costs, paired tests, a chart, from per-problem files.

    python benchmarks/humaneval_report.py [RUN.jsonl ...] [--results DIR]

Each RUN is a per-problem results file of ``backplan eval humaneval`` (default: every
``*.jsonl`` under ``benchmarks/results/humaneval/``). Writes ``humaneval.json`` (a list of
runs: model, verifier, strategy, n, passed, pass_at_1, its 95% interval, tokens/s over the
run and of the median problem, the run's speed against 0.5B plain decoded the same way, backtracks
per problem, forward evaluations per emitted token, and exact McNemar tests against the 0.5B
and 1.5B plain runs; the same list is the planner's package data,
``planner/quality/measured/humaneval.json``), ``humaneval.md`` and ``humaneval.png``. Heads'
cross-fit manifests found under ``runtime/verifiers/heads/`` are summarised too (AUC, training
cost).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.quality.decoding import Decoding  # noqa: E402
from planner.quality.harness import decoding_tag, results_stem  # noqa: E402
from planner.quality.results import EvalConfig, summarise  # noqa: E402
from planner.quality.stats import paired  # noqa: E402
from planner.recommend.quality import shipped_runs_file  # noqa: E402
from runtime.atomic import write_text_atomic  # noqa: E402

BASE = ("qwen2.5-coder-0.5b", "none", "plain")
REFERENCE = ("qwen2.5-coder-1.5b", "none", "plain")


def _load(path: Path) -> tuple[EvalConfig, list[dict[str, Any]]]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    config = EvalConfig.model_validate(json.loads(lines[0])["config"])
    return config, [json.loads(ln) for ln in lines[1:]]


def _key(config: EvalConfig) -> tuple[str, str, str]:
    return config.model, config.verifier, config.strategy


def _decoding(config: EvalConfig) -> str:
    return "greedy" if config.temperature == 0 else f"T={config.temperature:g}, seed {config.seed}"


def _variant(path: Path, config: EvalConfig) -> str:
    """What a file name adds after ``<model>_<verifier>_<strategy>``: an earlier variant of the
    same configuration kept for comparison (e.g. ``_judged-at-fence``); "" for the current one."""
    raw = f"{config.model}_{config.verifier}_{config.strategy}"
    for stem in (raw, results_stem(config.model_copy(update={"temperature": 0.0}))):
        if path.stem.startswith(stem):
            rest = path.stem.removeprefix(stem).lstrip("_")
            if config.temperature > 0:  # `eval humaneval`'s name for a sampled run
                rest = rest.removeprefix(decoding_tag(config)).lstrip("_")
            return rest
    return ""


def _label(run: dict[str, Any]) -> str:
    size = run["model"].removeprefix("qwen2.5-coder-")
    verifier = run["verifier"]
    # each stacked verifier's head file by what it is: "syntax+examples=8+latent head"
    verifier = re.sub(r"=[^+=]*\.crossfit\.json", "=cross-fitted head", verifier)
    verifier = verifier.replace("latent=cross-fitted head", "latent head")
    strategy = Decoding.of_run({**run, "temperature": 0}).label  # regenerate-a8, ...
    label = f"{size} {verifier} {strategy}" if verifier != "none" else f"{size} plain"
    if run.get("decoding", "greedy") != "greedy":
        label += f" [{run['decoding']}]"
    return f"{label} ({run['variant']})" if run.get("variant") else label


def build(paths: list[Path]) -> list[dict[str, Any]]:
    loaded = {p: _load(p) for p in paths}
    outcome = {
        p: {r["task_id"]: bool(r["passed"]) for r in recs} for p, (_, recs) in loaded.items()
    }
    # the reference runs, by configuration and decoding: a sampled run is compared with the
    # 0.5B plain run sampled the same way (same temperature and seed), and with the 1.5B's
    # greedy run, the reference
    refs = {
        (_key(c), _decoding(c)): p
        for p, (c, _) in sorted(loaded.items(), reverse=True)
        if not _variant(p, c)
    }
    runs = []
    for path, (config, records) in loaded.items():
        run = summarise(config, records)
        run["results_file"] = path.name
        run["variant"] = _variant(path, config)
        run["decoding"] = _decoding(config)
        run["complete"] = len(records) == 164
        mine = outcome[path]
        for tag, ref in (
            ("vs_0_5b_plain", (BASE, run["decoding"])),
            ("vs_1_5b_plain", (REFERENCE, "greedy")),
        ):
            if ref in refs and refs[ref] != path:
                p = paired(mine, outcome[refs[ref]])
                run[tag] = {
                    "n": p.n,
                    "only_this": p.a_only,
                    "only_other": p.b_only,
                    "mcnemar_p": float(f"{p.p_value:.3g}"),
                }
        runs.append(run)
    # each run's throughput against 0.5B plain decoded the same way (greedy or sampled alike)
    plain_speed = {
        r["decoding"]: r["emitted_tok_s"]
        for r in runs
        if (r["model"], r["verifier"], r["strategy"]) == BASE and not r["variant"]
    }
    for r in runs:
        ref = plain_speed.get(r["decoding"])
        r["speed_vs_0_5b_plain"] = (
            round(r["emitted_tok_s"] / ref, 3) if ref and r.get("emitted_tok_s") else None
        )
    runs.sort(
        key=lambda r: (
            r["decoding"] != "greedy",
            r["model"],
            r["verifier"] != "none",
            bool(r["variant"]),
            -r["pass_at_1"],
        )
    )
    return runs


def chart(runs: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [_label(r) for r in runs]
    p = [r["pass_at_1"] for r in runs]
    lo = [r["pass_at_1"] - r["ci95"][0] for r in runs]
    hi = [r["ci95"][1] - r["pass_at_1"] for r in runs]
    fig, (ax, ax_speed) = plt.subplots(
        1,
        2,
        sharey=True,
        figsize=(11.5, 0.6 * len(runs) + 1.5),
        gridspec_kw={"width_ratios": [3, 2]},
    )
    colors = ["#888888" if r["verifier"] == "none" else "#1f77b4" for r in runs]
    ax.barh(labels, p, xerr=[lo, hi], color=colors, capsize=4)
    # the cost beside the quality: the run's throughput and forward passes per token
    speed = [r.get("emitted_tok_s") or 0.0 for r in runs]
    ax_speed.barh(labels, speed, color=colors)
    ax_speed.set_xscale("log")
    ax_speed.set_xlim(1, 1000)
    for i, r in enumerate(runs):
        ax_speed.text(
            (r.get("emitted_tok_s") or 1.0) * 1.15,
            i,
            f"{r.get('emitted_tok_s') or 0:.1f} tok/s, {r['forward_per_emitted']:.1f} fwd/token",
            va="center",
            fontsize=8,
        )
    ax_speed.set_xlabel("tokens/s over the run: all emitted tokens / all decode seconds (log)")
    ax_speed.set_title("cost here (2-core CPU)", fontsize=10)
    for i, r in enumerate(runs):
        ax.text(
            0.01,
            i,
            f"{r['pass_at_1']:.3f} ({r['passed']}/{r['n']})",
            va="center",
            color="white",
            fontsize=9,
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("pass@1 (bars: 95% Wilson interval)")
    ax.set_title("HumanEval; greedy unless marked", fontsize=10)
    sampled = [i for i, r in enumerate(runs) if r.get("decoding", "greedy") != "greedy"]
    if sampled and len(sampled) < len(runs):  # the sampled runs below this line
        ax.axhline(min(sampled) - 0.5, color="black", linewidth=0.8, linestyle="--")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def heads_section() -> list[str]:
    lines = []
    for manifest in sorted((ROOT / "runtime/verifiers/heads").glob("*.crossfit.json")):
        m = json.loads(manifest.read_text())
        cost = m["training_cost"]
        frac = cost.get("fraction_of_pretraining")
        auc_p, auc_f = m["auc_prefix_out_of_fold"], m["auc_final_out_of_fold"]
        lines.append(
            f"| {manifest.name.removesuffix('.crossfit.json')} | {m['model']} | {m['k']} | "
            f"{m['rollouts']} | {m['rows']} | {m['positive_share']:.2f} | "
            f"{'n/a' if auc_p is None else f'{auc_p:.3f}'} | "
            f"{'n/a' if auc_f is None else f'{auc_f:.3f}'} | "
            + ", ".join(f"{r['threshold']:.3f}" for r in m["fold_reports"])
            + f" | {cost['tokens_processed']:,} | {cost['cpu_s']:.0f} | "
            f"{cost.get('generation_wall_s', 0):.0f} | "
            + ("n/a" if not frac else f"{frac:.1e}")
            + " |"
        )
    if not lines:
        return []
    return [
        "",
        "## Trained heads (cross-fitted over HumanEval)",
        "",
        "| head | reads | folds | rollouts | prefixes | passing share | AUC prefixes | "
        "AUC answers | thresholds | tokens processed | CPU-s | generation wall-s | "
        "fraction of pretraining |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        "AUCs are out of fold: each prefix scored by the head that never saw its problem.",
    ]


def markdown(runs: list[dict[str, Any]]) -> str:
    out = [
        "# HumanEval pass@1: Qwen2.5-Coder-0.5B and 1.5B, with verifiers and plain",
        "",
        "The same chat prompt (whole function in one fenced block), max 384 tokens, hidden "
        "tests run in the bubblewrap jail after generation only (every stored answer re-tested "
        "there); all 164 problems and greedy decoding "
        "unless the row says otherwise (n; `[T=.., seed ..]`: sampled, compared with 0.5B "
        "plain sampled the same way on the same problems, and with 1.5B greedy). "
        "Measured on this 2-core CPU (llama.cpp, Q4_K_M). Speed: tok/s over the run is all "
        "emitted tokens over all decode seconds (what a workload gets; forward evals/emitted "
        "likewise over all tokens); x plain is that against 0.5B plain decoded the same way "
        "(greedy or sampled), a separate run at another time (plain T=0.7: 23.5 tok/s stored, "
        "34.5 re-run in stop 31: compare a ratio only with its plain decoded alongside); "
        "the median problem's tok/s hides the problems that backtrack most. Slowed: problems "
        "whose seconds per forward evaluation exceed 3x the run's median (other work held "
        "the cores then; their time is in the run's tok/s). Only comparable within this table.",
        "",
        "![pass@1](humaneval.png)",
        "",
        "| run | n | passed | pass@1 | 95% CI | tok/s over the run | x plain | slowed | "
        "tok/s median problem | backtracks/problem | "
        "forward evals/emitted | vs 0.5B plain (+/-, p) | vs 1.5B plain (+/-, p) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        cells = []
        for tag in ("vs_0_5b_plain", "vs_1_5b_plain"):
            v = r.get(tag)
            if v is None:
                cells.append("-")
            else:
                cells.append(f"+{v['only_this']}/-{v['only_other']}, p={v['mcnemar_p']:.3g}")
        out.append(
            f"| {_label(r)} | {r['n']} | {r['passed']} | {r['pass_at_1']:.3f} | "
            f"{r['ci95'][0]:.3f}-{r['ci95'][1]:.3f} | {r.get('emitted_tok_s')} | "
            f"{r.get('speed_vs_0_5b_plain') or '-'} | {r.get('slowed_problems', '-')} | "
            f"{r['tok_s']} | "
            f"{r['backtracks_per_problem']} | {r['forward_per_emitted']} | "
            f"{cells[0]} | {cells[1]} |"
        )
    out += heads_section()
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks/results")
    args = ap.parse_args()
    paths = args.runs or sorted((args.results / "humaneval").glob("*.jsonl"))
    if not paths:
        raise SystemExit("no results files: pass RUN.jsonl files or fill results/humaneval/")
    runs = build(paths)
    text = json.dumps(runs, indent=2) + "\n"
    write_text_atomic(args.results / "humaneval.json", text)
    # the planner's copy, shipped as package data: an installed backplan plans with it
    write_text_atomic(shipped_runs_file(), text)
    chart(runs, args.results / "humaneval.png")
    md = markdown(runs)
    notes = args.results / "humaneval_notes.md"
    if notes.exists():
        md += "\n" + notes.read_text(encoding="utf-8")
    write_text_atomic(args.results / "humaneval.md", md)
    print(md)


if __name__ == "__main__":
    main()
