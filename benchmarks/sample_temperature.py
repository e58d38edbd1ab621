"""Whole-answer rules with the extra answers drawn at T=0.4 beside T=0.8, the same heads' kinds.

    python benchmarks/sample_temperature.py [--results DIR]

At T=0.8 a sample passes less often than the greedy answer (77 against 91 of 164), so a rule
that adds samples must pick well to gain anything. This replays greedy + 2 samples per problem
at T=0.4 (``rollouts/qwen2.5-coder-0.5b_t0.4_n2.jsonl``, ``backplan verifier collect
--samples 2 --temperature 0.4``) and greedy + the first 2 of the T=0.8 rollouts, with the same
kinds of cross-fitted signal: the absolute answer head (last+mean), the confidence baselines,
and the rank heads of ``rank_heads.py`` (hidden state + confidence, and confidence alone). All
signals are fitted once on the answers of both temperatures together, cross-fitted by problem
(no problem is scored by a head that saw any answer of it), and the prompt's examples are run
on every answer. Rules are paired with greedy on the same problems (exact McNemar).

Features come from the cache ``rank_heads.py --layers 18`` uses (built here if absent; the
T=0.4 answers add about 12 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rank_heads import CONFIDENCE, MODEL, ROLLOUTS, cross_fit_rank, default_cache  # noqa: E402
from report import machine_meta, publish, three  # noqa: E402

LOW = ROOT / "benchmarks" / "results" / "rollouts" / "qwen2.5-coder-0.5b_t0.4_n2.jsonl"
EXTRA = 2  # samples per problem beside its greedy answer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=None, help="Features cache (layers 18).")
    ap.add_argument("--checks-cache", type=Path, default=None, help="Example checks cache.")
    ap.add_argument("--results", type=Path, default=None, help="Write sample_temperature.*.")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from planner.verifier_training.answer_fit import cross_fit_answers, within_problem_auc
    from planner.verifier_training.answers import cached_answer_features
    from planner.verifier_training.example_checks import cached_example_checks
    from planner.verifier_training.fit import assign_folds, auc, task_number
    from planner.verifier_training.replay import replay
    from planner.verifier_training.rollouts import load_rollouts
    from planner.verifier_training.rules import (
        Attempts,
        Rule,
        best_of,
        examples_first,
        examples_then,
        greedy_rule,
        regenerate_below,
    )
    from runtime.home import home

    cache = args.cache or default_cache((18,))
    cache.parent.mkdir(parents=True, exist_ok=True)
    checks_cache = args.checks_cache or home().cache / "features" / "example_checks.json"
    _, high = load_rollouts(ROLLOUTS)
    _, low_all = load_rollouts(LOW)
    low = [r for r in low_all if not r.sample.startswith("eval:")]  # its greedy is high's
    rows = list(high) + low
    feats = cached_answer_features(MODEL, MODEL, high, cache, layers=(18,)).concat(
        cached_answer_features(MODEL, MODEL, low, cache, layers=(18,))
    )
    temp = np.array([0.0 if r.sample.startswith("eval:") else 0.8 for r in high] + [0.4] * len(low))
    y, task = feats.y.astype(int), feats.task
    folds = assign_folds(task.tolist(), 5)
    fold = np.array([folds[t] for t in task])
    base = feats.baselines()
    conf = np.column_stack([base[k] for k in CONFIDENCE])
    absolute = cross_fit_answers(feats, features="last+mean")
    signals = {
        "absolute head": absolute.values,
        "baselines combined": absolute.baselines["length+logprobs"],
        "rank head (hidden + confidence)": cross_fit_rank(
            np.hstack([feats.matrix("last+mean"), conf]), y, task, fold, 0.0005
        ),
        "confidence fitted to rank": cross_fit_rank(conf, y, task, fold, 1.0),
    }
    checks = cached_example_checks(rows, checks_cache)
    n_ex = np.array([c.n_examples for c in checks])
    failed = np.array([c.failed for c in checks])

    def attempts(t_sample: float) -> list[Attempts]:
        out = []
        for t in sorted(set(task.tolist()), key=task_number):
            idx = np.flatnonzero(task == t)
            greedy = [int(i) for i in idx if temp[i] == 0.0]
            drawn = sorted(
                (int(i) for i in idx if temp[i] == t_sample), key=lambda i: rows[i].sample
            )
            out.append(Attempts(t, greedy[:1] + drawn[:EXTRA]))
        return out

    by_temperature: list[dict[str, Any]] = []
    for t_sample in (0.4, 0.8):
        every = attempts(t_sample)
        used = np.array(sorted(i for a in every for i in a.rows[1:]))
        shown = np.concatenate([a.rows for a in every])  # greedy + the samples replayed
        rules: dict[str, Rule | list[Rule]] = {"greedy": greedy_rule}
        for n in range(2, EXTRA + 2):
            for name, v in signals.items():
                rules[f"best-of-{n} by {name}"] = best_of(v, n)
            rules[f"regenerate below the absolute head's threshold, up to {n}"] = regenerate_below(
                absolute.values, absolute.thresholds, n
            )
            rules[f"examples, up to {n}"] = examples_first(n_ex, failed, n)
            rules[f"examples then absolute head, up to {n}"] = examples_then(
                absolute.values, absolute.thresholds, n_ex, failed, n
            )
        by_temperature.append(
            {
                "temperature": t_sample,
                "samples": int(len(used)),
                "samples_passed": int(y[used].sum()),
                "head_auc_on_samples": auc(absolute.values[used], y[used]),
                "auc_within_problem": {
                    name: within_problem_auc(v[shown], y[shown], task[shown])
                    for name, v in signals.items()
                },
                "rules": replay(every, y, feats.length, rules, oracle_n=list(range(2, EXTRA + 2))),
            }
        )
    report = {
        "meta": {
            **machine_meta(),
            "model": MODEL,
            "rollouts": [str(ROLLOUTS.relative_to(ROOT)), str(LOW.relative_to(ROOT))],
            "problems": len(set(task.tolist())),
            "extra_answers_per_problem": EXTRA,
            "answers_fitted": int(len(y)),
        },
        "by_temperature": by_temperature,
    }
    publish(report, _markdown(report), args.results, "sample_temperature")
    return 0


def _markdown(report: dict[str, Any]) -> str:
    m = report["meta"]
    runs = report["by_temperature"]
    lines = [
        f"# Extra answers at T=0.4 or T=0.8 ({m['model']}, {m['problems']} problems, greedy + "
        f"{m['extra_answers_per_problem']} samples each)",
        "",
        "`python benchmarks/sample_temperature.py`. Signals cross-fitted by problem on the "
        f"answers of both temperatures ({m['answers_fitted']}); rules paired with greedy "
        "(exact McNemar).",
        "",
        "| | " + " | ".join(f"T={r['temperature']}" for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
        "| samples passed | "
        + " | ".join(f"{r['samples_passed']}/{r['samples']}" for r in runs)
        + " |",
        "| absolute head's AUC on the samples | "
        + " | ".join(three(r["head_auc_on_samples"]) for r in runs)
        + " |",
    ]
    for name in runs[0]["auc_within_problem"]:
        lines.append(
            f"| within-problem AUC (greedy + samples), {name} | "
            + " | ".join(three(r["auc_within_problem"][name]) for r in runs)
            + " |"
        )
    lines += ["", "| rule | " + " | ".join(f"T={r['temperature']}" for r in runs) + " |"]
    lines.append("|---|" + "---|" * len(runs))
    for j, rule in enumerate(runs[0]["rules"]):
        cells = []
        for r in runs:
            row = r["rules"][j]
            vg = row["vs_greedy"]
            pair = "" if vg is None else f" (+{vg['wins']}/-{vg['losses']}, p={vg['p_value']:.3g})"
            cells.append(f"{row['passed']}{pair}")
        lines.append(f"| {rule['rule']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
