"""Does a verifier work for models at or below its own size? Answer heads read by 0.5B and 1.5B.

    python benchmarks/verifier_transfer.py [--samples 2] [--boot 1000] [--results DIR]

The seed (arXiv 2510.03149) claims a verifier serves models at or below its own size. This
measures it on HumanEval with the two Qwen2.5-Coder models here, reading whole answers:

- answers of the 0.5B (its greedy answer and its first ``--samples`` sampled ones at T=0.8 per
  problem, from the stored rollouts) and of the 1.5B (its greedy answer per problem);
- readers: the 0.5B (a verifier below the 1.5B's size: the control the claim predicts worse)
  and the 1.5B (the seed's separate verifier for the 0.5B; its own latent head for the 1.5B).

For each reader and each answer set, whole-answer heads (last, mean, last+mean; standardised
logistic regression, as ``backplan verifier replay`` fits them) are cross-fitted by problem,
beside the confidence baselines (length, the answering model's mean and minimum token
log-probability, and the three combined) fitted on exactly the same rows. *Transfer*: each fold's
head fitted on the 0.5B's answers scores the 1.5B's answers of that fold's problems, which it
never saw, against the 1.5B-answer baselines cross-fitted on the same folds. AUCs carry 95%
intervals from a bootstrap over problems (a problem's answers resampled together), and so does
the head's margin over the best baseline.

Features come from :func:`planner.verifier_training.answers.cached_answer_features`, cached per
rollout in the home's features folder (``<rollouts>.read-by-<reader>.npz``) and saved after
every chunk: an interrupted pass resumes, and a later replay with the same ``--cache`` reuses it.
Measured here (2 cores): the 1.5B reads 14-17 answers a minute; the whole first pass (all four
answer sets) took about 70 minutes.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLLOUTS = ROOT / "benchmarks" / "results" / "rollouts"
SMALL, LARGE = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
ANSWERS = {SMALL: "qwen2.5-coder-0.5b_t0.8_n8.jsonl", LARGE: "qwen2.5-coder-1.5b_greedy.jsonl"}
FEATURE_SETS = ("last", "mean", "last+mean")


def _features(model: str, reader: str, samples: int | None, cache_dir: Path, bar: Any) -> Any:
    from planner.verifier_training.answers import cached_answer_features
    from planner.verifier_training.rollouts import first_samples, load_rollouts

    path = ROLLOUTS / ANSWERS[model]
    header, rows = load_rollouts(path)
    rows = first_samples(rows, samples)
    cache = cache_dir / f"{path.stem}.read-by-{reader}.npz"
    task = bar.add_task(f"{model} answers read by {reader}", total=len(rows))
    feats = cached_answer_features(
        header["model"],
        reader,
        rows,
        cache,
        progress=lambda d, t: bar.update(task, completed=d, total=t),
    )
    return feats


def _boot_auc(
    scores: dict[str, np.ndarray], y: np.ndarray, task: np.ndarray, reps: int, seed: int = 0
) -> dict[str, list[float]]:
    """95% intervals of each score's AUC and of ``head`` minus the best other one, resampling
    problems (with all their answers) with replacement."""
    from planner.verifier_training.fit import auc

    tasks = np.unique(task)
    rows = {t: np.flatnonzero(task == t) for t in tasks}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in scores} | {"margin": []}
    for _ in range(reps):
        idx = np.concatenate([rows[t] for t in rng.choice(tasks, size=len(tasks))])
        got = {k: auc(v[idx], y[idx]) for k, v in scores.items()}
        vals = {k: float(a) for k, a in got.items() if a is not None}
        if len(vals) < len(got):  # a resample with one outcome only
            continue
        for k, a in vals.items():
            draws[k].append(a)
        draws["margin"].append(vals["head"] - max(a for k, a in vals.items() if k != "head"))
    return {
        k: [round(float(q), 3) for q in np.percentile(v, [2.5, 97.5])] for k, v in draws.items()
    }


def _row(
    setting: str,
    reader: str,
    answers: str,
    fs: str,
    head: np.ndarray,
    baselines: dict[str, np.ndarray],
    feats: Any,
    reps: int,
) -> dict[str, Any]:
    from planner.verifier_training.answer_fit import within_problem_auc
    from planner.verifier_training.fit import auc

    y = feats.y.astype(int)
    scores = {"head": head} | {f"baseline:{k}": v for k, v in baselines.items()}
    a = {k: auc(v, y) for k, v in scores.items()}
    base = {k: v for k, v in a.items() if k != "head" and v is not None}
    best = max(base, key=lambda k: base[k])
    head_auc = a["head"]
    within = (
        {k: within_problem_auc(v, y, feats.task) for k, v in scores.items()}
        if len(feats.task) > len(np.unique(feats.task))
        else None
    )
    return {
        "setting": setting,
        "reader": reader,
        "answers_of": answers,
        "features": fs,
        "answers": int(len(y)),
        "passed": int(y.sum()),
        "auc": {k: None if v is None else round(float(v), 4) for k, v in a.items()},
        "best_baseline": best,
        "head_minus_best_baseline": None if head_auc is None else round(head_auc - base[best], 4),
        "ci95": _boot_auc(scores, y, feats.task, reps),
        "auc_within_problem": within,
    }


def measure(samples: int, reps: int, cache_dir: Path) -> dict[str, Any]:
    from rich.progress import Progress

    from planner.verifier_training.answer_fit import cross_fit_answers

    with Progress() as bar:
        feats = {
            (model, reader): _features(
                model, reader, samples if model == SMALL else None, cache_dir, bar
            )
            for reader in (LARGE, SMALL)
            for model in (SMALL, LARGE)
        }
    rows: list[dict[str, Any]] = []
    for reader in (SMALL, LARGE):
        small, large = feats[(SMALL, reader)], feats[(LARGE, reader)]
        for fs in FEATURE_SETS:
            on_small = cross_fit_answers(small, features=fs)
            on_large = cross_fit_answers(large, features=fs)
            rows.append(
                _row(
                    "cross-fitted",
                    reader,
                    SMALL,
                    fs,
                    on_small.values,
                    on_small.baselines,
                    small,
                    reps,
                )
            )
            rows.append(
                _row(
                    "cross-fitted",
                    reader,
                    LARGE,
                    fs,
                    on_large.values,
                    on_large.baselines,
                    large,
                    reps,
                )
            )
            # each fold's head, fitted on the 0.5B's answers of the other folds' problems,
            # scores the 1.5B's answers of its own fold's problems (seen by no head)
            moved = np.full(len(large.y), np.nan)
            x = large.matrix(fs)
            for _fold, head, _trained, heldout in on_small.heads:
                at = np.isin(large.task, heldout)
                moved[at] = head.predict(x[at])
            if np.isnan(moved).any():
                raise SystemExit("a 1.5B answer's problem is in no fold of the 0.5B's heads")
            rows.append(
                _row(
                    "transfer: fitted on 0.5B answers",
                    reader,
                    LARGE,
                    fs,
                    moved,
                    on_large.baselines,
                    large,
                    reps,
                )
            )
    cost = {
        f"{m} read by {r}": {"tokens_processed": f.tokens_processed, "cpu_s": f.cpu_s}
        for (m, r), f in feats.items()
    }
    return {"rows": rows, "features_cost": cost}


def markdown(report: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    def best_within(w: dict[str, float | None] | None) -> str:
        got = {k: v for k, v in (w or {}).items() if k != "head" and v is not None}
        if not got:
            return "n/a"
        k = max(got, key=lambda k: got[k])
        return f"{k.removeprefix('baseline:')} {got[k]:.3f}"

    def signed(v: float | None) -> str:
        return "n/a" if v is None else f"{v:+.3f}"

    lines = [
        "# Verifier transfer: whole-answer heads read by the 0.5B and by the 1.5B",
        "",
        f"Answers: the 0.5B's greedy answer and first {report['samples']} samples at T=0.8 per "
        "problem; the 1.5B's greedy answer per problem (all 164 HumanEval problems). Heads "
        "(standardised logistic regression) and baselines cross-fitted by problem on the same "
        "5 folds; *transfer* scores the 1.5B's answers with the heads fitted on the 0.5B's "
        "answers of the other folds. Brackets: 95% bootstrap interval over problems. "
        "Baselines: length and the answering model's own mean/min token log-probability, and "
        "the three combined; margin = head AUC - best baseline AUC. Within: the mean AUC "
        "among one problem's own answers (problems with both outcomes; the 0.5B's answers "
        f"only, {report['samples'] + 1} per problem), what ranking a problem's attempts needs.",
        "",
        "| reader | answers of | setting | features | answers (passed) | head AUC | best baseline "
        "| margin | head AUC within | best baseline within |",
        "|---|---|---|---|---|---|---|---|---:|---:|",
    ]
    for r in report["rows"]:
        ci = r["ci95"]
        w = r["auc_within_problem"]
        best = r["best_baseline"]
        lines.append(
            f"| {r['reader']} | {r['answers_of']} | {r['setting']} | {r['features']} | "
            f"{r['answers']} ({r['passed']}) | {f(r['auc']['head'])} [{ci['head'][0]:.2f}, "
            f"{ci['head'][1]:.2f}] | {best.removeprefix('baseline:')} {f(r['auc'][best])} | "
            f"{signed(r['head_minus_best_baseline'])} "
            f"[{ci['margin'][0]:+.2f}, {ci['margin'][1]:+.2f}]"
            f" | {f(w['head']) if w else 'n/a'} | {best_within(w)} |"
        )
    lines += ["", "Feature pass cost (tokens evaluated by reader and answering model):", ""]
    for k, v in report["features_cost"].items():
        lines.append(f"- {k}: {v['tokens_processed']} tokens, {v['cpu_s']} CPU-s")
    lines += ["", f"![AUC by reader]({report['plot']})", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if r["features"] == report["plot_features"]]
    labels = [
        f"{r['reader'].split('-')[-1]} reads\n{r['answers_of'].split('-')[-1]}"
        + ("\n(transfer)" if r["setting"].startswith("transfer") else "")
        for r in rows
    ]
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    head = [r["auc"]["head"] for r in rows]
    err = np.array(
        [
            [h - r["ci95"]["head"][0], r["ci95"]["head"][1] - h]
            for h, r in zip(head, rows, strict=True)
        ]
    ).T
    ax.bar(xs - 0.2, head, 0.4, yerr=err, capsize=3, label=f"head ({report['plot_features']})")
    ax.bar(
        xs + 0.2,
        [r["auc"][r["best_baseline"]] for r in rows],
        0.4,
        label="best confidence baseline",
    )
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("out-of-fold AUC at answer end")
    ax.set_title("Whole-answer verifier heads by reader size (HumanEval, 95% bootstrap CI)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    from runtime.atomic import atomic_write

    with atomic_write(path, binary=True) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2, help="sampled 0.5B answers per problem")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples over problems")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from runtime.atomic import write_json_atomic, write_text_atomic
    from runtime.home import home

    cache_dir = args.cache_dir or home().cache / "features"
    cache_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "verifier_transfer",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu": platform.processor()},
        "samples": args.samples,
        "bootstrap_resamples": args.boot,
        **measure(args.samples, args.boot, cache_dir),
    }
    best_fs = max(
        FEATURE_SETS,
        key=lambda fs: np.mean([r["auc"]["head"] for r in report["rows"] if r["features"] == fs]),
    )
    report["plot_features"] = best_fs  # the feature set with the best mean head AUC
    report["plot"] = "verifier_transfer.png"
    args.results.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.results / "verifier_transfer.json", report)
    write_text_atomic(args.results / "verifier_transfer.md", markdown(report))
    plot(report, args.results / "verifier_transfer.png")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
