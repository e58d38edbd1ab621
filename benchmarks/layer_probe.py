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

Features come from :func:`planner.verifier_training.answers.cached_answer_features` (a
problem's answers share its prompt's pass), cached per rollout (``--cache``, default the
home's features folder) and saved after every chunk, so an interrupted pass resumes; the same
file serves ``backplan verifier replay --layers ... --cache FILE``, which replays the decision
rules with a layer's head. The first ``--problems`` problems' rollouts are read (default all).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import machine_meta, publish, three  # noqa: E402  (benchmarks/report.py, beside this)

ROLLOUTS = ROOT / "benchmarks" / "results" / "rollouts" / "qwen2.5-coder-0.5b_t0.8_n8.jsonl"
MODEL = "qwen2.5-coder-0.5b"


def _stacked(feats: Any, last: np.ndarray, mean: np.ndarray) -> Any:
    """``feats`` with ``last``/``mean`` replaced (several layers side by side)."""
    from dataclasses import replace

    return replace(feats, last=last, mean=mean, layers=(), layer_last=None, layer_mean=None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=164, help="The first N problems' rollouts.")
    ap.add_argument("--layers", default="8,12,16,20", help="0-based layers to tap.")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--c", type=float, default=0.05, help="Inverse L2 strength (as replay).")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=None, help="Write layer_probe.{json,md}.")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from rich.progress import Progress

    from planner.capacity.cpu_probe import gguf_shape
    from planner.verifier_training.answer_fit import cross_fit_answers
    from planner.verifier_training.answers import cached_answer_features
    from planner.verifier_training.fit import task_number
    from planner.verifier_training.rollouts import load_rollouts
    from runtime.home import home
    from runtime.models.fetch import model_path

    n_layer = gguf_shape(model_path(MODEL)).layers

    layers = tuple(sorted({int(x) for x in args.layers.split(",")}))
    cache = args.cache or home().cache / "features" / (
        f"{MODEL}_t0.8_n8.layers-" + "-".join(map(str, layers)) + ".npz"
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    _, everything = load_rollouts(ROLLOUTS)
    rollouts = [r for r in everything if task_number(r.task_id) < args.problems]
    started = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("layer features", total=len(rollouts))
        feats = cached_answer_features(
            MODEL,
            MODEL,
            rollouts,
            cache,
            layers=layers,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )
    assert feats.layer_last is not None and feats.layer_mean is not None
    n = len(feats.y)
    ll, lm = feats.layer_last, feats.layer_mean
    variants: dict[str, tuple[Any, str, bool]] = {
        "final (shipped input)": (feats, "last+mean", False)
    }
    for layer in layers:
        variants[f"layer {layer}"] = (feats, f"last+mean@{layer}", False)
    variants["tapped layers together"] = (
        _stacked(feats, ll.reshape(n, -1), lm.reshape(n, -1)),
        "last+mean",
        False,
    )
    variants["tapped + final"] = (
        _stacked(
            feats,
            np.hstack([ll.reshape(n, -1), feats.last]),
            np.hstack([lm.reshape(n, -1), feats.mean]),
        ),
        "last+mean",
        False,
    )
    results = []
    y, task_ids = feats.y.astype(int), feats.task

    def one(name: str, f: Any, fs: str, confidence: bool) -> dict[str, Any]:
        fit = cross_fit_answers(f, features=fs, k=args.folds, c=args.c, confidence=confidence)
        rep = fit.report(y, task_ids)
        best = rep["best_baseline"]
        return {
            "features": name,
            "dims": int(f.matrix(fs).shape[1]) + (3 if confidence else 0),
            "auc": rep["auc_out_of_fold"]["head"],
            "auc_within_problem": rep["auc_within_problem"]["head"],
            "best_baseline": best,
            "best_baseline_auc": rep["auc_out_of_fold"][best],
            "best_baseline_within": rep["auc_within_problem"][best],
            "head_minus_best_baseline": rep["head_minus_best_baseline"],
        }

    for name, (f, fs, conf) in variants.items():
        results.append(one(name, f, fs, conf))
    # the best single source of hidden states, also reading the answer's confidence
    single = [r for r in results if r["features"].startswith(("final", "layer"))]
    top = max(single, key=lambda r: r["auc"] or 0.0)
    f, fs, _ = variants[top["features"]]
    results.append(one(f"{top['features']} + confidence (offline)", f, fs, True))
    elapsed = time.perf_counter() - started
    report = {
        "meta": {
            **machine_meta(),
            "model": MODEL,
            "rollouts_file": str(ROLLOUTS.relative_to(ROOT)),
            "problems": len(set(task_ids.tolist())),
            "answers": n,
            "passed": int(y.sum()),
            "layers": list(layers),
            "n_layer": n_layer,
            "folds": args.folds,
            "c": args.c,
            "feature_tokens_processed": feats.tokens_processed,
            "feature_cpu_s": feats.cpu_s,
            "features_cache": cache.name,  # under the home's cache/features unless --cache
            "elapsed_s": round(elapsed, 1),
        },
        "results": results,
    }
    publish(report, _markdown(report), args.results, "layer_probe")
    return 0


def _markdown(report: dict[str, Any]) -> str:
    m = report["meta"]
    f = three

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
