"""Heads fitted to rank a problem's own answers, against the shipped kind, on the same folds.

    python benchmarks/rank_heads.py [--features last+mean] [--layers 18] [--results DIR]

Best-of-N and regeneration need a signal that ranks one problem's attempts; the shipped
whole-answer heads are fitted on pass/fail over all answers, which also (and more easily)
learns which problems are hard. A *rank head* is fitted on features centred on their problem's
mean (each problem's answers minus their average, problems whose answers all pass or all fail
left out: they say nothing about ranking), so it can learn only what differs between attempts.
For a linear head, ranking a problem's answers by the centred features is ranking them by the
raw ones (the centre is common to all of them), so at run time a rank head is a plain linear
head over the answers a rule has made; its probabilities are not calibrated, so it ranks and
does not decide.

Variants, each cross-fitted by problem on the folds of ``backplan verifier replay`` (no
problem is scored by a head that saw any of its answers): the hidden state (last token and
mean over the answer, standardised, L2 at each C of ``--c-grid``), the same beside the answer's
confidence (its length, mean and minimum token log-probability), the confidence alone, and
the hidden state through 16 principal components. Beside them, the shipped kind (absolute
head) and the confidence baselines, and whole-answer rules replayed with each signal against
greedy (exact McNemar): best-of-N, and regenerating below the absolute head's threshold while
choosing among the answers made by a rank head; and, as an optimistic bound, best-of-N by the
best rank head with a head start for the greedy answer chosen on the same problems.
Within-problem AUC differences carry a 95% bootstrap interval over problems.

Features come from the same cache as ``backplan verifier replay --cache`` (built here if
absent: about 50 minutes on 2 cores for the 1476 stored answers).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from planner.verifier_training.rules import Rule

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import machine_meta, publish, three  # noqa: E402  (benchmarks/report.py, beside this)

ROLLOUTS = ROOT / "benchmarks" / "results" / "rollouts" / "qwen2.5-coder-0.5b_t0.8_n8.jsonl"
MODEL = "qwen2.5-coder-0.5b"
CONFIDENCE = ("length", "mean_logprob", "min_logprob")


def centred(m: np.ndarray, task: np.ndarray) -> np.ndarray:
    """Each row minus the mean of its problem's rows."""
    out = m.astype(np.float64).copy()
    for t in np.unique(task):
        rows = task == t
        out[rows] -= out[rows].mean(axis=0)
    return out


def cross_fit_rank(
    x: np.ndarray, y: np.ndarray, task: np.ndarray, fold: np.ndarray, c: float, pcs: int = 0
) -> np.ndarray:
    """Out-of-fold rank scores (logits) of a head fitted on problem-centred ``x``, on the
    training folds' problems with both outcomes."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xc = centred(x, task)
    mixed = np.array([len(np.unique(y[task == t])) == 2 for t in task])
    out = np.full(len(y), np.nan)
    for f in np.unique(fold):
        train, test = (fold != f) & mixed, fold == f
        steps: list[Any] = [StandardScaler()] + ([PCA(pcs, random_state=0)] if pcs else [])
        model = make_pipeline(*steps, LogisticRegression(C=c, max_iter=3000))
        model.fit(xc[train], y[train])
        out[test] = model.decision_function(xc[test])
    return out


def bootstrap_diff(
    a: dict[str, float], b: dict[str, float], n: int = 2000, seed: int = 0
) -> list[float]:
    """95% interval of mean(a) - mean(b) over problems (resampled, paired)."""
    keys = sorted(set(a) & set(b))
    d = np.array([a[k] - b[k] for k in keys])
    rng = np.random.default_rng(seed)
    means = [float(d[rng.integers(0, len(d), len(d))].mean()) for _ in range(n)]
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def default_cache(layers: tuple[int, ...]) -> Path:
    """Where the stored rollouts' features are cached, by the layers they tapped."""
    from runtime.home import home

    suffix = (".layers-" + "-".join(map(str, layers))) if layers else ""
    return home().cache / "features" / f"{MODEL}_t0.8_n8{suffix}.npz"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", default="last+mean", help="Hidden-state feature set.")
    ap.add_argument("--layers", default="", help="Layers the features cache tapped (e.g. 18).")
    ap.add_argument("--c-grid", default="0.0002,0.0005,0.002,0.01", help="Rank heads' L2 Cs.")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=None, help="Write rank_heads.{json,md}.")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from rich.progress import Progress

    from planner.verifier_training.answer_fit import (
        cross_fit_answers,
        per_problem_auc,
        within_problem_auc,
    )
    from planner.verifier_training.answers import cached_answer_features
    from planner.verifier_training.fit import assign_folds, auc
    from planner.verifier_training.replay import attempts_by_problem, replay
    from planner.verifier_training.rollouts import load_rollouts
    from planner.verifier_training.rules import (
        best_of,
        greedy_rule,
        regenerate_below,
        sample_rule,
    )

    layers = tuple(sorted({int(v) for v in args.layers.split(",") if v.strip()}))
    grid = [float(v) for v in args.c_grid.split(",")]
    cache = args.cache or default_cache(layers)
    cache.parent.mkdir(parents=True, exist_ok=True)
    _, rollouts = load_rollouts(ROLLOUTS)
    with Progress(transient=True) as bar:
        job = bar.add_task("answer features", total=len(rollouts))
        feats = cached_answer_features(
            MODEL,
            MODEL,
            rollouts,
            cache,
            layers=layers,
            progress=lambda d, t: bar.update(job, completed=d, total=t),
        )
    y, task = feats.y.astype(int), feats.task
    folds = assign_folds(task.tolist(), args.folds)
    fold = np.array([folds[t] for t in task])
    x = feats.matrix(args.features)
    base = feats.baselines()
    conf = np.column_stack([base[k] for k in CONFIDENCE])

    absolute = cross_fit_answers(feats, features=args.features, k=args.folds)
    signals: dict[str, tuple[str, np.ndarray]] = {
        "absolute head (shipped kind)": ("absolute", absolute.values),
        "confidence baselines combined": ("baseline", absolute.baselines["length+logprobs"]),
    }
    for c in grid:
        signals[f"rank head, hidden, C={c}"] = ("rank", cross_fit_rank(x, y, task, fold, c))
        signals[f"rank head, hidden + confidence, C={c}"] = (
            "rank",
            cross_fit_rank(np.hstack([x, conf]), y, task, fold, c),
        )
    signals["rank head, hidden via 16 PCs, C=0.1"] = (
        "rank",
        cross_fit_rank(x, y, task, fold, 0.1, pcs=16),
    )
    signals["rank head, confidence alone, C=1"] = ("rank", cross_fit_rank(conf, y, task, fold, 1.0))

    ref = per_problem_auc(absolute.values, y, task)
    heads: list[dict[str, Any]] = []
    for name, (kind, v) in signals.items():
        mine = per_problem_auc(v, y, task)
        heads.append(
            {
                "signal": name,
                "kind": kind,
                "auc": auc(v, y),
                "auc_within_problem": within_problem_auc(v, y, task),
                "within_minus_absolute_head": round(
                    float(np.mean([mine[k] - ref[k] for k in sorted(set(mine) & set(ref))])), 4
                ),
                "within_minus_absolute_head_95": bootstrap_diff(mine, ref),
            }
        )
    ranks = [h for h in heads if h["kind"] == "rank"]
    best_rank = str(max(ranks, key=lambda h: float(h["auc_within_problem"] or 0.0))["signal"])
    chosen = {
        "absolute head (shipped kind)": signals["absolute head (shipped kind)"][1],
        "confidence baselines combined": signals["confidence baselines combined"][1],
        best_rank: signals[best_rank][1],
        "rank head, confidence alone, C=1": signals["rank head, confidence alone, C=1"][1],
    }
    attempts = attempts_by_problem(feats.task, feats.sample)
    n_max = min(len(a.rows) for a in attempts)
    rules: dict[str, Rule | list[Rule]] = {"greedy": greedy_rule, "sample": sample_rule}
    for n in sorted({2, 4, n_max}):
        for name, v in chosen.items():
            rules[f"best-of-{n} by {name}"] = best_of(v, n)
        for name, v in chosen.items():
            if name.startswith("rank"):
                rules[
                    f"regenerate below the absolute head's threshold, up to {n}, pick by {name}"
                ] = regenerate_below(absolute.values, absolute.thresholds, n, pick=v)
    # the greedy answer's head start: the best rank head's standardised score plus BONUS for
    # the greedy answer, BONUS chosen here on the same problems (an optimistic bound, not a
    # cross-fitted rule: if even this does not beat greedy, no bonus will)
    best_values = signals[best_rank][1]
    rank_z = (best_values - best_values.mean()) / best_values.std()
    is_greedy = np.array([s.startswith("eval:") for s in feats.sample.tolist()], dtype=float)
    bonus_runs = {
        b: replay(attempts, y, feats.length, {"r": best_of(rank_z + b * is_greedy, n_max)})[0]
        for b in (0.25, 0.5, 1.0, 1.5, 2.0)
    }
    bonus = max(bonus_runs, key=lambda b: bonus_runs[b]["passed"])
    name = f"best-of-{n_max} by the best rank head + {bonus} sd for greedy (bonus chosen in sample)"
    rules[name] = best_of(rank_z + bonus * is_greedy, n_max)
    replayed = replay(attempts, y, feats.length, rules, oracle_n=sorted({2, 4, n_max}))
    report = {
        "meta": {
            **machine_meta(),
            "model": MODEL,
            "rollouts_file": str(ROLLOUTS.relative_to(ROOT)),
            "features": args.features,
            "layers_tapped": list(layers),
            "problems": len(attempts),
            "answers": int(len(y)),
            "passed": int(y.sum()),
            "problems_with_both_outcomes": len(ref),
            "folds": args.folds,
            "features_cache": cache.name,
            "feature_tokens_processed": feats.tokens_processed,
            "feature_cpu_s": feats.cpu_s,
        },
        "heads": heads,
        "best_rank_head": best_rank,
        "greedy_bonus_passed": {str(b): r["passed"] for b, r in bonus_runs.items()},
        "rules": replayed,
    }
    publish(report, _markdown(report), args.results, "rank_heads")
    return 0


def _markdown(report: dict[str, Any]) -> str:
    m = report["meta"]
    f = three

    lines = [
        f"# Heads fitted to rank a problem's own answers ({m['model']}, {m['problems']} "
        f"problems, {m['answers']} answers, {m['passed']} pass)",
        "",
        f"`python benchmarks/rank_heads.py` on `{m['rollouts_file']}` (greedy + 8 samples at "
        f"T=0.8 per problem), features `{m['features']}`, {m['folds']} folds by problem (those "
        "of `backplan verifier replay`). Rank heads are fitted on features centred per "
        "problem, on the training folds' problems whose answers include both outcomes "
        f"({m['problems_with_both_outcomes']} of the {m['problems']}). Within: the mean AUC "
        "among one problem's own answers; its difference from the absolute head with a 95% "
        "bootstrap interval over those problems.",
        "",
        "| signal | AUC over all answers | AUC within a problem | within - absolute head [95%] |",
        "|---|---:|---:|---|",
    ]
    for h in report["heads"]:
        lo, hi = h["within_minus_absolute_head_95"]
        lines.append(
            f"| {h['signal']} | {f(h['auc'])} | {f(h['auc_within_problem'])} | "
            f"{h['within_minus_absolute_head']:+.3f} [{lo:+.3f}, {hi:+.3f}] |"
        )
    lines += [
        "",
        f"Rules (the best rank head by within-problem AUC: {report['best_rank_head']}), paired "
        "with greedy on the same problems (exact McNemar):",
        "",
        "| rule | passed | vs greedy (+/-, p) | answers per problem | emitted share |",
        "|---|---:|---|---:|---:|",
    ]
    for r in report["rules"]:
        vg = r["vs_greedy"]
        pair = "" if vg is None else f"+{vg['wins']}/-{vg['losses']}, {vg['p_value']:.3g}"
        share = "" if r["emitted_token_share"] is None else r["emitted_token_share"]
        lines.append(
            f"| {r['rule']} | {r['passed']}/{r['problems']} | {pair} | "
            f"{r['answers_per_problem']} | {share} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
