"""Do intermediate layers rank answers better? Cross-fitted whole-answer heads, layer by layer.

    python benchmarks/layer_probe.py [--problems N] [--layers 8,12,16,20] [--results DIR]

The shipped answer heads read the last hidden state (after the final norm) at the answer's
last token and its mean over the answer's tokens. Published correctness probes pool over
intermediate layers; llama.cpp hands those over only through its eval callback
(:class:`runtime.engine.layers.LayerTap`, its cost per token in ``layer_readout.md``). This
reads, in one pass per stored rollout, the residual stream after each chosen layer (its last
token and its mean over the answer) beside the final hidden state and the model's own token
log-probabilities, then fits the same cross-fitted heads as ``backplan verifier replay``
(folds by problem; standardised logistic regression on last+mean) on each layer, on all
tapped layers together and on those with the final state, and reports the out-of-fold AUC
over all answers and within each problem's own answers, beside the confidence baselines
fitted on the same rows.

Features are cached per rollout (``--cache``, default the home's features folder) and saved
after every chunk, so an interrupted pass resumes; the first ``--problems`` problems' rollouts
are read (all 164 take about an hour on 2 cores for the 0.5B).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLLOUTS = ROOT / "benchmarks" / "results" / "rollouts" / "qwen2.5-coder-0.5b_t0.8_n8.jsonl"
FIELDS = ("key", "task", "sample", "y", "length", "mean_lp", "min_lp")
ARRAYS = ("final_last", "final_mean", "layer_last", "layer_mean")


def _read_one(ctx: Any, prompt: list[int], answer: list[int], layers: tuple[int, ...]) -> dict:
    """One pass: per tapped layer and for the final state, the last row and the mean over the
    answer's tokens; and the log-probability of each answer token."""
    from planner.verifier_training.answers import read_answer

    per: dict[int, list[np.ndarray]] = {i: [] for i in layers}

    def copy_taps() -> None:
        for i in layers:
            per[i].append(ctx.tap.rows(i).copy())

    hidden, logprobs = read_answer(ctx, prompt, answer, with_logprobs=True, after_chunk=copy_taps)
    stacked = {i: np.concatenate(per[i]) for i in layers}
    return {
        "final_last": hidden[-1],
        "final_mean": hidden.mean(axis=0),
        "layer_last": np.stack([stacked[i][-1] for i in layers]),
        "layer_mean": np.stack([stacked[i].mean(axis=0) for i in layers]),
        "length": len(answer),
        "mean_lp": float(np.mean(logprobs)),
        "min_lp": float(np.min(logprobs)),
    }


def _load(cache: Path, layers: tuple[int, ...]) -> dict[str, Any]:
    if not cache.is_file():
        return {}
    with np.load(cache, allow_pickle=False) as data:
        got = {k: data[k] for k in data.files}
    if tuple(got["layers"].tolist()) != layers:
        raise SystemExit(f"{cache} holds other layers ({got['layers'].tolist()}); pass --cache")
    return got


def _save(cache: Path, rows: list[dict], layers: tuple[int, ...], meta: dict) -> None:
    from runtime.atomic import atomic_write

    arrays: dict[str, Any] = {
        "layers": np.asarray(layers),
        "meta": np.array(json.dumps(meta)),
    }
    for name in FIELDS:
        arrays[name] = np.asarray([r[name] for r in rows])
    for name in ARRAYS:
        arrays[name] = np.asarray([r[name] for r in rows], dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache, binary=True) as fh:
        np.savez(fh, **arrays)


def collect(rollouts: list, layers: tuple[int, ...], cache: Path, progress: Any) -> tuple:
    from planner.quality.dataset import load_humaneval
    from planner.quality.harness import build_prompt
    from planner.verifier_training.answers import rollout_key
    from runtime.engine.chat import chat_prompt_tokens
    from runtime.engine.llama import Context, Model
    from runtime.models.fetch import model_path

    have = _load(cache, layers)
    meta = json.loads(str(have["meta"])) if have else {"tokens_processed": 0, "cpu_s": 0.0}
    rows: list[dict] = []
    if have:
        for j in range(len(have["key"])):
            rows.append({name: have[name][j] for name in (*FIELDS, *ARRAYS)})
    known = {str(r["key"]) for r in rows}
    missing = [r for r in rollouts if rollout_key(r) not in known]
    problems = {p.task_id: p for p in load_humaneval()}
    model = Model(model_path("qwen2.5-coder-0.5b"))
    ctx = Context(model, n_ctx=2048, embeddings=True, layers=layers)
    meta["n_layer"] = model.n_layer
    cpu0, done = time.process_time(), len(rollouts) - len(missing)
    for n, r in enumerate(missing, 1):
        msgs = [{"role": "user", "content": build_prompt(problems[r.task_id])}]
        prompt = chat_prompt_tokens(model, msgs)
        answer = r.tokens or model.tokenize(r.completion, add_special=False, parse_special=False)
        answer = answer[: max(1, 2048 - len(prompt) - 1)] or model.tokenize("\n")
        got = _read_one(ctx, prompt, answer, layers)
        got |= {"key": rollout_key(r), "task": r.task_id, "sample": r.sample, "y": int(r.passed)}
        rows.append(got)
        meta["tokens_processed"] += len(prompt) + len(answer)
        progress(done + n, len(rollouts))
        if n % 32 == 0 or n == len(missing):
            meta["cpu_s"] = round(meta["cpu_s"] + time.process_time() - cpu0, 2)
            cpu0 = time.process_time()
            _save(cache, rows, layers, meta)
    ctx.close()
    model.close()
    want = {rollout_key(r): i for i, r in enumerate(rollouts)}
    rows = sorted((r for r in rows if str(r["key"]) in want), key=lambda r: want[str(r["key"])])
    return rows, meta


def _features(rows: list[dict], last: np.ndarray, mean: np.ndarray, sha: str) -> Any:
    from planner.verifier_training.answers import AnswerFeatures

    return AnswerFeatures(
        last=last,
        mean=mean,
        length=np.asarray([r["length"] for r in rows], dtype=np.int32),
        mean_logprob=np.asarray([r["mean_lp"] for r in rows], dtype=np.float32),
        min_logprob=np.asarray([r["min_lp"] for r in rows], dtype=np.float32),
        y=np.asarray([int(r["y"]) for r in rows], dtype=np.int8),
        task=np.asarray([str(r["task"]) for r in rows]),
        sample=np.asarray([str(r["sample"]) for r in rows]),
        key=np.asarray([str(r["key"]) for r in rows]),
        tokens_processed=0,
        cpu_s=0.0,
        model_sha256=sha,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=60, help="The first N problems' rollouts.")
    ap.add_argument("--layers", default="8,12,16,20", help="0-based layers to tap.")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--c", type=float, default=0.05, help="Inverse L2 strength (as replay).")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=None, help="Write layer_probe.{json,md}.")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from rich.progress import Progress

    from planner.verifier_training.answer_fit import cross_fit_answers
    from planner.verifier_training.fit import task_number
    from planner.verifier_training.rollouts import load_rollouts
    from runtime.home import home
    from runtime.models.fetch import file_sha256, model_path

    layers = tuple(sorted({int(x) for x in args.layers.split(",")}))
    cache = args.cache or home().cache / "features" / (
        "qwen2.5-coder-0.5b_t0.8_n8.layers-" + "-".join(map(str, layers)) + ".npz"
    )
    _, everything = load_rollouts(ROLLOUTS)
    rollouts = [r for r in everything if task_number(r.task_id) < args.problems]
    started = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("layer features", total=len(rollouts))
        rows, meta = collect(
            rollouts, layers, cache, lambda d, t: bar.update(task, completed=d, total=t)
        )
    sha = file_sha256(model_path("qwen2.5-coder-0.5b"))
    ll = np.asarray([r["layer_last"] for r in rows], dtype=np.float32)  # (n, L, E)
    lm = np.asarray([r["layer_mean"] for r in rows], dtype=np.float32)
    fl = np.asarray([r["final_last"] for r in rows], dtype=np.float32)
    fm = np.asarray([r["final_mean"] for r in rows], dtype=np.float32)
    n = len(rows)
    variants: dict[str, tuple[np.ndarray, np.ndarray]] = {"final (shipped input)": (fl, fm)}
    for j, layer in enumerate(layers):
        variants[f"layer {layer}"] = (ll[:, j], lm[:, j])
    variants["tapped layers together"] = (ll.reshape(n, -1), lm.reshape(n, -1))
    variants["tapped + final"] = (
        np.hstack([ll.reshape(n, -1), fl]),
        np.hstack([lm.reshape(n, -1), fm]),
    )
    results = []
    y = np.asarray([int(r["y"]) for r in rows])
    task_ids = np.asarray([str(r["task"]) for r in rows])
    for name, (last, mean) in variants.items():
        feats = _features(rows, last, mean, sha)
        fit = cross_fit_answers(feats, features="last+mean", k=args.folds, c=args.c)
        rep = fit.report(y, task_ids)
        results.append(
            {
                "features": name,
                "dims": int(last.shape[1] * 2),
                "auc": rep["auc_out_of_fold"]["head"],
                "auc_within_problem": rep["auc_within_problem"]["head"],
                "best_baseline": rep["best_baseline"],
                "best_baseline_auc": rep["auc_out_of_fold"][rep["best_baseline"]],
                "best_baseline_within": rep["auc_within_problem"][rep["best_baseline"]],
                "head_minus_best_baseline": rep["head_minus_best_baseline"],
            }
        )
    elapsed = time.perf_counter() - started
    report = {
        "meta": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "model": "qwen2.5-coder-0.5b",
            "rollouts_file": str(ROLLOUTS.relative_to(ROOT)),
            "problems": len(set(task_ids.tolist())),
            "answers": n,
            "passed": int(y.sum()),
            "layers": list(layers),
            "n_layer": meta["n_layer"],
            "folds": args.folds,
            "c": args.c,
            "feature_tokens_processed": meta["tokens_processed"],
            "feature_cpu_s": meta["cpu_s"],
            "elapsed_s": round(elapsed, 1),
        },
        "results": results,
    }
    text = _markdown(report)
    print(text)
    if args.results is not None:
        from runtime.atomic import write_text_atomic

        write_text_atomic(args.results / "layer_probe.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(args.results / "layer_probe.md", text)
    return 0


def _markdown(report: dict[str, Any]) -> str:
    m = report["meta"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [
        f"# Intermediate layers as a whole-answer head's input ({m['model']}, "
        f"{m['problems']} problems, {m['answers']} answers, {m['passed']} pass)",
        "",
        f"Cross-fitted by problem ({m['folds']} folds), standardised logistic regression "
        f"(C={m['c']}) on last token + mean over the answer, per variant; baselines (the "
        "model's confidence: length, token log-probabilities, their combination) fitted on the "
        f"same rows. Layers are 0-based of {m['n_layer']}; final = after the last norm. Features: "
        f"{m['feature_tokens_processed']:,} tokens, {m['feature_cpu_s']:.0f} CPU-s.",
        "",
        "| features | dims | AUC | within-problem AUC | best baseline | its AUC | its within | "
        "head - baseline |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['features']} | {r['dims']} | {f(r['auc'])} | {f(r['auc_within_problem'])} | "
            f"{r['best_baseline']} | {f(r['best_baseline_auc'])} | "
            f"{f(r['best_baseline_within'])} | {f(r['head_minus_best_baseline'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
