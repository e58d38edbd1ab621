"""Replay whole-answer decision rules on stored rollouts, offline, before decoding anything.

Each problem has its greedy answer (imported from a ``backplan eval`` run) and sampled ones.
With each answer's out-of-fold value (a cross-fitted head never saw the problem) and, where
asked, the verdict of the prompt's own examples on it, a rule's pass@1 is what it would have
returned (the rules: :mod:`planner.verifier_training.rules`); ``oracle@N`` (any of the first N
passes) is the ceiling no ranking can beat.

Every rule is paired on the same problems (McNemar's exact test) with greedy and with plain
sampling, and costs the answers and tokens it generates; its share of emitted tokens (the
returned answer's tokens over all it generated) is what it keeps of plain decoding's tokens/s,
the head's own cost (one dot product per answer) aside. A randomised rule (VGB over answers) is
replayed over many seeds and reported at its median seed. Choosing a rule and its N takes
seconds; the chosen ones are then confirmed live with ``backplan eval humaneval``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from planner.quality.stats import paired
from planner.verifier_training.fit import task_number
from planner.verifier_training.rollouts import sample_index
from planner.verifier_training.rules import (
    Attempts,
    Rule,
    best_of,
    examples_first,
    examples_then,
    greedy_rule,
    regenerate_below,
    sample_rule,
    vgb_answers,
)
from runtime.errors import UsageError


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
        drawn = sorted((n, i) for s, i in by[t].items() if (n := sample_index(s)) is not None)
        out.append(Attempts(t, [greedy[0]] + [i for _, i in drawn]))
    if not out:
        raise UsageError(
            "no problem has a greedy answer to replay against; collect with --from-eval "
            "pointing at a greedy `backplan eval` results file"
        )
    return out


def _pair(result: dict[str, bool], ref: dict[str, bool]) -> dict[str, Any]:
    p = paired(result, ref)
    return {"wins": p.a_only, "losses": p.b_only, "p_value": p.p_value}


def _run(
    attempts: Sequence[Attempts], y: np.ndarray, length: np.ndarray, rule: Rule
) -> tuple[dict[str, bool], list[int], list[int], list[int]]:
    picked = {a.task: rule(a) for a in attempts}
    result = {t: bool(y[row]) for t, (row, _) in picked.items()}
    made = [len(rows) for _, rows in picked.values()]
    kept = [int(length[row]) for row, _ in picked.values()]
    spent = [sum(int(length[i]) for i in rows) for _, rows in picked.values()]
    return result, made, kept, spent


def replay(
    attempts: Sequence[Attempts],
    y: np.ndarray,
    length: np.ndarray,
    rules: dict[str, Rule | list[Rule]],
    *,
    oracle_n: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Each rule's pass count, its pairing with greedy and with plain sampling, and its
    generation cost. A list of rules is one randomised rule over seeds: reported at the seed
    whose pass count is the median, with the mean and range over seeds beside it."""
    greedy = {a.task: bool(y[a.rows[0]]) for a in attempts}
    sample = {a.task: bool(y[sample_rule(a)[0]]) for a in attempts}
    out = []
    for name, rule in rules.items():
        runs = [_run(attempts, y, length, r) for r in (rule if isinstance(rule, list) else [rule])]
        order = sorted(range(len(runs)), key=lambda j: sum(runs[j][0].values()))
        result, made, kept, spent = runs[order[len(order) // 2]]
        row: dict[str, Any] = {
            "rule": name,
            "passed": sum(result.values()),
            "problems": len(result),
            "vs_greedy": _pair(result, greedy),
            "vs_sample": _pair(result, sample),
            "answers_per_problem": round(float(np.mean(made)), 3),
            "tokens_per_problem": round(float(np.mean(spent)), 1),
            "emitted_token_share": round(sum(kept) / max(1, sum(spent)), 3),
        }
        if len(runs) > 1:
            passes = [sum(r[0].values()) for r in runs]
            row["seeds"] = {
                "n": len(runs),
                "passed_mean": round(float(np.mean(passes)), 2),
                "passed_min": min(passes),
                "passed_max": max(passes),
            }
        out.append(row)
    for n in oracle_n:
        hit = sum(any(bool(y[i]) for i in a.rows[:n]) for a in attempts)
        out.append(
            {
                "rule": f"oracle@{n}",
                "passed": hit,
                "problems": len(attempts),
                "vs_greedy": None,
                "vs_sample": None,
                "answers_per_problem": round(
                    float(np.mean([min(n, len(a.rows)) for a in attempts])), 3
                ),
                "tokens_per_problem": None,
                "emitted_token_share": None,
            }
        )
    return out


def standard_rules(
    values: np.ndarray,
    thresholds: np.ndarray,
    baselines: dict[str, tuple[np.ndarray, np.ndarray]],
    max_n: int,
    *,
    checks: tuple[np.ndarray, np.ndarray] | None = None,
    vgb_seeds: int = 101,
    samples: int | None = None,
) -> dict[str, Rule | list[Rule]]:
    """greedy, sample; for each N: best-of-N and regenerate-below-t by the head and by each
    baseline (``baselines``: name -> (score, per-row threshold)), VGB over answers by the head;
    with ``checks`` (n_examples, failed per row): examples alone and stacked with each.
    VGB walks sampled answers only (never greedy): with ``samples`` per problem it is replayed
    for N up to that many (a larger N would silently replay the same walks)."""
    ns = sorted({n for n in (2, 4, 8, max_n) if 2 <= n <= max_n})
    rules: dict[str, Rule | list[Rule]] = {"greedy": greedy_rule, "sample": sample_rule}
    signals = {"head": (values, thresholds), **baselines}
    for n in ns:
        for name, (score, thr) in signals.items():
            rules[f"best-of-{n} by {name}"] = best_of(score, n)
            rules[f"regenerate below threshold by {name}, up to {n}"] = regenerate_below(
                score, thr, n
            )
        vgb = samples is None or n <= samples
        if vgb:
            rules[f"VGB over answers by head, up to {n}"] = [
                vgb_answers(values, n, seed) for seed in range(vgb_seeds)
            ]
        if checks is not None:
            n_ex, failed = checks
            rules[f"examples, up to {n}"] = examples_first(n_ex, failed, n)
            for name, (score, thr) in signals.items():
                rules[f"examples then {name}, up to {n}"] = examples_then(
                    score, thr, n_ex, failed, n
                )
            fails = np.where(n_ex > 0, failed, 0)
            if vgb:
                rules[f"VGB over answers by examples x head, up to {n}"] = [
                    vgb_answers(values, n, seed, fails) for seed in range(vgb_seeds)
                ]
    return rules


def replay_report(
    rollouts_path: Any,
    *,
    reader: str | None = None,
    feature_sets: Sequence[str] = ("last", "mean", "last+mean"),
    layers: Sequence[int] = (),
    k: int = 5,
    c: float = 0.05,
    c_grid: Sequence[float] = (),
    precision: float = 0.85,
    max_n: int = 8,
    samples: int | None = None,
    cache: Any = None,
    checks_cache: Any = None,
    examples: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """Features (cached), cross-fitted heads per feature set with their baselines, the prompt's
    examples run on every answer (cached; ``examples=False`` skips them), and every rule
    replayed with the best feature set's head (``layers``: intermediate layers tapped for
    feature sets such as ``last+mean@16``); ``samples`` keeps each problem's greedy answer
    and its first K sampled ones. Returns (report, fits by feature set, the
    answers' labels)."""
    from pathlib import Path

    from planner.verifier_training.answer_fit import cross_fit_answers
    from planner.verifier_training.answers import cached_answer_features
    from planner.verifier_training.example_checks import cached_example_checks
    from planner.verifier_training.rollouts import check_trainable, first_samples, load_rollouts

    path = Path(rollouts_path)
    header, rows = load_rollouts(path)
    rows = first_samples(rows, samples)
    check_trainable(path, rows, k)
    main = header["model"]
    reader = reader or main
    feats = cached_answer_features(
        main,
        reader,
        rows,
        None if cache is None else Path(cache),
        layers=layers,
        progress=progress,
    )
    fits = {
        fs: cross_fit_answers(
            feats,
            features=fs,
            k=k,
            c=c,
            c_grid=c_grid,
            precision=precision,
            model_name=reader,
            data_id=path.name,
        )
        for fs in feature_sets
    }
    y = feats.y
    aucs = {fs: fit.report(y, feats.task) for fs, fit in fits.items()}
    best_fs = max(fits, key=lambda fs: aucs[fs]["auc_out_of_fold"]["head"] or 0.0)
    best = fits[best_fs]
    # offline: the best head also reading the answer's confidence (no runtime head yet)
    conf = cross_fit_answers(
        feats, features=best_fs, k=k, c=c, c_grid=c_grid, precision=precision, confidence=True
    )
    fits[conf.features] = conf
    aucs[conf.features] = conf.report(y, feats.task)
    checks = None
    if examples:  # the same order as the features: both follow the rollouts file
        found = cached_example_checks(rows, None if checks_cache is None else Path(checks_cache))
        checks = (
            np.asarray([ch.n_examples for ch in found]),
            np.asarray([ch.failed for ch in found]),
        )
    every = attempts_by_problem(feats.task, feats.sample)
    n_max = min(max_n, max(len(a.rows) for a in every))
    # a problem whose collection has not reached n_max answers yet is left out of the replay
    # (its rules would silently stop early), and said so
    attempts = [a for a in every if len(a.rows) >= n_max]
    rules = standard_rules(
        best.values,
        best.thresholds,
        {
            "baselines combined": (
                best.baselines["length+logprobs"],
                best.baseline_thresholds["length+logprobs"],
            ),
            "head+confidence (offline)": (conf.values, conf.thresholds),
        },
        n_max,
        checks=checks,
        samples=min(len(a.rows) for a in attempts) - 1,  # each problem's, beside its greedy
    )
    results = replay(
        attempts, y, feats.length, rules, oracle_n=sorted({n for n in (2, 4, n_max) if n <= n_max})
    )
    report = {
        "rollouts": path.name,
        "model": main,
        "reader": reader,
        "answers": int(len(y)),
        "samples_per_problem": samples,  # None: every sampled answer
        "problems": len(attempts),
        "problems_with_fewer_answers": len(every) - len(attempts),
        "answers_passed": int(y.sum()),
        "features_cost": {"tokens_processed": feats.tokens_processed, "cpu_s": feats.cpu_s},
        "layers_tapped": list(feats.layers),
        "c": c,
        "c_grid": list(c_grid),
        "heads": aucs,
        "replayed_with": best_fs,
        "rules": results,
    }
    return report, fits, y


def report_markdown(report: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    if report.get("c_grid"):
        chose = report["heads"][report["replayed_with"]].get("c_by_fold")
        fit_note = (
            f" (each fold's L2 strength C chosen from {report['c_grid']} by an inner "
            f"cross-validation on its own training problems; the replayed heads': {chose})"
        )
    else:
        fit_note = f" (C = {report['c']})" if "c" in report else ""

    lines = [
        f"# Replay: whole-answer decisions on {report['rollouts']}",
        "",
        f"{report['answers']} answers of {report['model']} ({report['answers_passed']} "
        "passed"
        + (
            f"; greedy and the first {report['samples_per_problem']} sampled per problem"
            if report.get("samples_per_problem")
            else ""
        )
        + f"); rules replayed on the {report['problems']} problems with all their answers "
        f"({report['problems_with_fewer_answers']} with fewer left out); read by "
        f"{report['reader']}"
        + (
            f" (final hidden state and the outputs of layers "
            f"{', '.join(map(str, report['layers_tapped']))}: `@L` feature sets, 0-based)"
            if report.get("layers_tapped")
            else ""
        )
        + "; features cost "
        f"{report['features_cost']['tokens_processed']} tokens, "
        f"{report['features_cost']['cpu_s']} CPU-s. Heads and baselines cross-fitted by "
        f"problem on the same folds{fit_note}. AUC: out of fold, over all answers; within: "
        "the mean AUC among one problem's own answers (problems with both outcomes), what "
        "ranking needs.",
        "",
        "| features | head AUC | length | mean logprob | min logprob | the three combined "
        "| head - best baseline | head AUC within | combined within |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fs, h in report["heads"].items():
        a, w = h["auc_out_of_fold"], h["auc_within_problem"]
        lines.append(
            f"| {fs} | {f(a['head'])} | {f(a['baseline:length'])} | "
            f"{f(a['baseline:mean_logprob'])} | {f(a['baseline:min_logprob'])} | "
            f"{f(a['baseline:length+logprobs'])} | {f(h['head_minus_best_baseline'])} | "
            f"{f(w['head'])} | {f(w['baseline:length+logprobs'])} |"
        )
    lines += [
        "",
        f"Rules replayed with the `{report['replayed_with']}` heads (paired on the same "
        "problems, exact McNemar; emitted share: the returned answer's tokens over all "
        "generated, the fraction of plain decoding's tokens/s it keeps):",
        "",
        "| rule | passed | vs greedy (+/-, p) | vs sample (+/-, p) | answers per problem "
        "| tokens per problem | emitted share |",
        "|---|---:|---|---|---:|---:|---:|",
    ]

    def vs(v: dict[str, Any] | None) -> str:
        return f"+{v['wins']}/-{v['losses']}, {v['p_value']:.3g}" if v else ""

    for r in report["rules"]:
        seeds = r.get("seeds")
        passed = f"{r['passed']}/{r['problems']}"
        if seeds:
            passed += f" (mean {seeds['passed_mean']}, {seeds['passed_min']}-{seeds['passed_max']})"
        share = r["emitted_token_share"]
        lines.append(
            f"| {r['rule']} | {passed} | {vs(r['vs_greedy'])} | {vs(r['vs_sample'])} | "
            f"{r['answers_per_problem']} | {r['tokens_per_problem'] or ''} | "
            f"{'' if share is None else share} |"
        )
    return "\n".join(lines) + "\n"
