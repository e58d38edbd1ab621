"""Replay whole-answer decision rules on stored rollouts, offline, before decoding anything.

Each problem has its greedy answer (imported from a ``backplan eval`` run) and sampled ones
(``s0``, ``s1``, ...: generated in that order, so "the next attempt" is the next sample). With
each answer's out-of-fold value (a cross-fitted head never saw the problem), a rule's pass@1 is
what it would have returned:

- ``greedy``: the greedy answer (the reference every rule is paired against);
- ``sample``: the first sampled answer alone (plain sampling at the rollouts' temperature);
- ``best-of-N by S``: the greedy answer and the first N-1 samples, the one scoring highest on
  signal S (the head's value, or a baseline such as the mean token log-probability);
- ``regenerate below t, up to N``: the greedy answer; while the best value so far is below the
  fold's calibrated threshold and fewer than N answers were made, the next sample; the
  highest-valued answer made is returned (the cost is the answers it made);
- ``oracle@N``: any of the N passes (the ceiling no ranking can beat).

Every rule is paired with greedy on the same problems (McNemar's exact test) and costs the
answers it generates, so choosing a rule and its N takes seconds; the chosen ones are then
confirmed live with ``backplan eval humaneval``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.quality.stats import paired
from planner.verifier_training.fit import task_number
from runtime.errors import UsageError


@dataclass(frozen=True)
class Attempts:
    """A problem's answers in the order a decoder would make them: greedy first."""

    task: str
    rows: list[int]  # indices into the feature arrays


def attempts_by_problem(task: np.ndarray, sample: np.ndarray) -> list[Attempts]:
    """Greedy (``eval:``) then ``s0``, ``s1``, ... for every problem that has a greedy answer."""
    by: dict[str, dict[str, int]] = {}
    for i, (t, s) in enumerate(zip(task.tolist(), sample.tolist(), strict=True)):
        by.setdefault(t, {})[s] = i
    out = []
    for t in sorted(by, key=task_number):
        greedy = [i for s, i in by[t].items() if s.startswith("eval:")]
        if not greedy:
            continue
        samples = sorted(
            (s for s in by[t] if s.startswith("s") and s[1:].isdigit()), key=lambda s: int(s[1:])
        )
        out.append(Attempts(t, [greedy[0]] + [by[t][s] for s in samples]))
    if not out:
        raise UsageError(
            "no problem has a greedy answer to replay against; collect with --from-eval "
            "pointing at a greedy `backplan eval` results file"
        )
    return out


Rule = Callable[[Attempts], tuple[int, int]]  # -> (row returned, answers generated)


def greedy_rule(a: Attempts) -> tuple[int, int]:
    return a.rows[0], 1


def sample_rule(a: Attempts) -> tuple[int, int]:
    return (a.rows[1], 1) if len(a.rows) > 1 else (a.rows[0], 1)


def best_of(score: np.ndarray, n: int) -> Rule:
    def rule(a: Attempts) -> tuple[int, int]:
        pool = a.rows[:n]
        return max(pool, key=lambda i: (score[i], -pool.index(i))), len(pool)

    return rule


def regenerate_below(values: np.ndarray, thresholds: np.ndarray, n: int) -> Rule:
    def rule(a: Attempts) -> tuple[int, int]:
        made = [a.rows[0]]
        while values[max(made, key=lambda i: values[i])] < thresholds[a.rows[0]] and len(
            made
        ) < min(n, len(a.rows)):
            made.append(a.rows[len(made)])
        return max(made, key=lambda i: (values[i], -made.index(i))), len(made)

    return rule


def replay(
    attempts: Sequence[Attempts],
    y: np.ndarray,
    length: np.ndarray,
    rules: dict[str, Rule],
    *,
    oracle_n: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Each rule's pass count, its pairing with greedy, and its generation cost."""
    greedy = {a.task: bool(y[a.rows[0]]) for a in attempts}
    out = []
    for name, rule in rules.items():
        picked = {a.task: rule(a) for a in attempts}
        result = {t: bool(y[row]) for t, (row, _) in picked.items()}
        made = [n for _, n in picked.values()]
        tokens = [sum(int(length[i]) for i in a.rows[: picked[a.task][1]]) for a in attempts]
        p = paired(result, greedy)
        out.append(
            {
                "rule": name,
                "passed": sum(result.values()),
                "problems": len(result),
                "vs_greedy": {"wins": p.a_only, "losses": p.b_only, "p_value": p.p_value},
                "answers_per_problem": round(float(np.mean(made)), 3),
                "tokens_per_problem": round(float(np.mean(tokens)), 1),
            }
        )
    for n in oracle_n:
        hit = sum(any(bool(y[i]) for i in a.rows[:n]) for a in attempts)
        out.append(
            {
                "rule": f"oracle@{n}",
                "passed": hit,
                "problems": len(attempts),
                "vs_greedy": None,
                "answers_per_problem": round(
                    float(np.mean([min(n, len(a.rows)) for a in attempts])), 3
                ),
                "tokens_per_problem": None,
            }
        )
    return out


def standard_rules(
    values: np.ndarray,
    thresholds: np.ndarray,
    baselines: dict[str, np.ndarray],
    max_n: int,
) -> dict[str, Rule]:
    """greedy, sample, best-of-N by the head and by each baseline, regenerate-below-t."""
    ns = sorted({n for n in (2, 4, 8, max_n) if 2 <= n <= max_n})
    rules: dict[str, Rule] = {"greedy": greedy_rule, "sample": sample_rule}
    for n in ns:
        rules[f"best-of-{n} by head"] = best_of(values, n)
        for name, score in baselines.items():
            rules[f"best-of-{n} by {name}"] = best_of(score, n)
        rules[f"regenerate below threshold, up to {n}"] = regenerate_below(values, thresholds, n)
    return rules


def replay_report(
    rollouts_path: Any,
    *,
    reader: str | None = None,
    feature_sets: Sequence[str] = ("last", "mean", "last+mean"),
    k: int = 5,
    c: float = 0.05,
    precision: float = 0.85,
    max_n: int = 8,
    cache: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """Features (cached), cross-fitted heads per feature set with their baselines, and every
    rule replayed with the best feature set's head. Returns (report, fits by feature set,
    the answers' labels)."""
    from pathlib import Path

    from planner.verifier_training.answer_fit import cross_fit_answers
    from planner.verifier_training.answers import cached_answer_features
    from planner.verifier_training.rollouts import check_trainable, load_rollouts

    path = Path(rollouts_path)
    header, rows = load_rollouts(path)
    check_trainable(path, rows, k)
    main = header["model"]
    reader = reader or main
    feats = cached_answer_features(
        main, reader, rows, None if cache is None else Path(cache), progress=progress
    )
    fits = {
        fs: cross_fit_answers(
            feats,
            features=fs,
            k=k,
            c=c,
            precision=precision,
            model_name=reader,
            data_id=path.name,
        )
        for fs in feature_sets
    }
    y = feats.y
    aucs = {fs: fit.report(y) for fs, fit in fits.items()}
    best_fs = max(fits, key=lambda fs: aucs[fs]["auc_out_of_fold"]["head"] or 0.0)
    best = fits[best_fs]
    every = attempts_by_problem(feats.task, feats.sample)
    n_max = min(max_n, max(len(a.rows) for a in every))
    # a problem whose collection has not reached n_max answers yet is left out of the replay
    # (its rules would silently stop early), and said so
    attempts = [a for a in every if len(a.rows) >= n_max]
    rules = standard_rules(
        best.values,
        best.thresholds,
        {
            "mean_logprob": feats.mean_logprob,
            "baselines combined": best.baselines["length+logprobs"],
        },
        n_max,
    )
    results = replay(
        attempts, y, feats.length, rules, oracle_n=sorted({n for n in (2, 4, n_max) if n <= n_max})
    )
    report = {
        "rollouts": path.name,
        "model": main,
        "reader": reader,
        "answers": int(len(y)),
        "problems": len(attempts),
        "problems_with_fewer_answers": len(every) - len(attempts),
        "answers_passed": int(y.sum()),
        "features_cost": {"tokens_processed": feats.tokens_processed, "cpu_s": feats.cpu_s},
        "heads": aucs,
        "replayed_with": best_fs,
        "rules": results,
    }
    return report, fits, y


def report_markdown(report: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        f"# Replay: whole-answer decisions on {report['rollouts']}",
        "",
        f"{report['answers']} answers of {report['model']} ({report['answers_passed']} "
        f"passed); rules replayed on the {report['problems']} problems with all their answers "
        f"({report['problems_with_fewer_answers']} with fewer left out); read by "
        f"{report['reader']}; features cost "
        f"{report['features_cost']['tokens_processed']} tokens, "
        f"{report['features_cost']['cpu_s']} CPU-s. Heads and baselines cross-fitted by "
        "problem on the same folds (out-of-fold AUC of whole answers).",
        "",
        "| features | head AUC | length | mean logprob | min logprob | the three combined "
        "| head - best baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for fs, h in report["heads"].items():
        a = h["auc_out_of_fold"]
        lines.append(
            f"| {fs} | {f(a['head'])} | {f(a['baseline:length'])} | "
            f"{f(a['baseline:mean_logprob'])} | {f(a['baseline:min_logprob'])} | "
            f"{f(a['baseline:length+logprobs'])} | {f(h['head_minus_best_baseline'])} |"
        )
    lines += [
        "",
        f"Rules replayed with the `{report['replayed_with']}` heads (paired with greedy on the "
        "same problems; exact McNemar):",
        "",
        "| rule | passed | vs greedy (+/-) | p | answers per problem | tokens per problem |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in report["rules"]:
        vs = r["vs_greedy"]
        lines.append(
            f"| {r['rule']} | {r['passed']}/{r['problems']} | "
            + (f"+{vs['wins']}/-{vs['losses']} | {vs['p_value']:.3g}" if vs else "| ")
            + f" | {r['answers_per_problem']} | {r['tokens_per_problem'] or ''} |"
        )
    return "\n".join(lines) + "\n"
