"""Whole-answer heads, their baselines and the replayed decision rules, without a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.verifier_training.answer_fit import cross_fit_answers, within_problem_auc
from planner.verifier_training.answers import AnswerFeatures
from planner.verifier_training.replay import attempts_by_problem, replay
from planner.verifier_training.rules import (
    Attempts,
    best_of,
    examples_first,
    examples_then,
    greedy_rule,
    regenerate_below,
    vgb_answers,
)
from runtime.errors import HeadError, UsageError
from runtime.verifiers.head import ValueHead


def test_standardisation_is_stored_and_lets_a_head_weigh_a_small_dimension(
    tmp_path: Path,
) -> None:
    # one huge irrelevant dimension (as in Qwen's hidden states) and a small informative one
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = np.column_stack([rng.normal(0, 1000, 400), 0.01 * (2 * y - 1) + rng.normal(0, 0.004, 400)])
    raw = ValueHead.fit_logistic(x, y, c=0.05, standardise=False)
    std = ValueHead.fit_logistic(x, y, c=0.05)
    acc = lambda h: float(((h.predict(x) > 0.5) == y).mean())  # noqa: E731
    assert acc(std) > 0.9 > acc(raw)
    std.save(tmp_path / "h.npz")
    back = ValueHead.load(tmp_path / "h.npz")
    assert back.mean is not None and np.allclose(back.predict(x), std.predict(x))
    with pytest.raises(HeadError, match="standardisation"):
        ValueHead(std.metadata, std.w1, std.b1, mean=std.mean)  # a mean without a scale


def _features(n_tasks: int = 20, samples: int = 3, seed: int = 0) -> AnswerFeatures:
    """Greedy + samples per problem; passing answers shifted along one direction."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_tasks):
        for s in ["eval:g.jsonl"] + [f"s{i}" for i in range(samples)]:
            ok = (t + len(s)) % 3 != 0
            h = rng.normal(size=6) + (2.0 if ok else -2.0) * np.eye(6)[1]
            rows.append((f"HumanEval/{t}", s, ok, h))
    last = np.asarray([r[3] for r in rows], np.float32)
    y = np.asarray([int(r[2]) for r in rows], np.int8)
    return AnswerFeatures(
        last=last,
        mean=last + rng.normal(0, 0.1, last.shape).astype(np.float32),
        length=rng.integers(50, 200, len(rows)).astype(np.int32),
        mean_logprob=rng.normal(-0.5, 0.1, len(rows)).astype(np.float32),
        min_logprob=rng.normal(-5, 1, len(rows)).astype(np.float32),
        y=y,
        task=np.asarray([r[0] for r in rows]),
        sample=np.asarray([r[1] for r in rows]),
        key=np.asarray([f"{r[0]}|{r[1]}|x" for r in rows]),
        tokens_processed=1,
        cpu_s=0.0,
        model_sha256="ab" * 32,
    )


def test_cross_fitted_answer_heads_never_saw_their_problems_and_beat_noise_baselines() -> None:
    feats = _features()
    fit = cross_fit_answers(feats, features="last", k=4)
    assert np.isfinite(fit.values).all() and np.isfinite(fit.thresholds).all()
    for fold, head, trained, heldout in fit.heads:
        scored = {t for t in feats.task.tolist() if int(t.split("/")[1]) % 4 == fold}
        assert not scored & set(trained) and set(heldout) == scored
        assert head.metadata.features == "last" and head.metadata.training_tasks == trained
    report = fit.report(feats.y)
    assert report["auc_out_of_fold"]["head"] > 0.9
    assert report["head_minus_best_baseline"] > 0.2  # baselines here are pure noise
    assert set(report["auc_out_of_fold"]) >= {"baseline:length", "baseline:length+logprobs"}
    with pytest.raises(UsageError, match="feature set"):
        feats.matrix("middle")


def test_layer_features_survive_a_cache_and_a_layer_head_names_its_layer(tmp_path: Path) -> None:
    from dataclasses import replace

    from planner.verifier_training.answers import parse_feature_set

    base = _features()
    n, rng = len(base.y), np.random.default_rng(1)
    # layer 3 carries the label along another axis; layer 7 is noise
    signal = base.last[:, ::-1].copy()
    noise = rng.normal(size=signal.shape).astype(np.float32)
    feats = replace(
        base,
        layers=(3, 7),
        layer_last=np.stack([signal, noise], axis=1),
        layer_mean=np.stack([signal, noise], axis=1),
    )
    assert np.array_equal(feats.matrix("last@3"), signal)
    assert feats.matrix("last+mean@7").shape == (n, 12)
    assert parse_feature_set("last+mean@16") == ("last+mean", 16)
    with pytest.raises(UsageError, match="did not tap"):
        feats.matrix("last@5")
    with pytest.raises(UsageError, match="feature set"):
        parse_feature_set("last@x")
    back = AnswerFeatures.load(feats.save(tmp_path / "f.npz"))
    assert back.layers == (3, 7) and np.array_equal(back.matrix("mean@7"), feats.matrix("mean@7"))
    keys = feats.key.tolist()
    half = back.select(keys[: n // 2]).concat(back.select(keys[n // 2 :]))
    assert np.array_equal(half.select(keys[::-1]).matrix("last@3"), signal[::-1])
    with pytest.raises(UsageError, match="different layers"):
        base.concat(feats)
    old = AnswerFeatures.load(base.save(tmp_path / "old.npz"))  # a file from before layers
    assert old.layers == () and old.layer_last is None
    good = cross_fit_answers(feats, features="last@3", k=4)
    bad = cross_fit_answers(feats, features="last@7", k=4)
    # its heads say which layer they read, for the runtime to tap
    assert [h.metadata.layer for _, h, _, _ in good.heads] == [3] * 4
    assert good.heads[0][1].metadata.features == "last"
    assert good.report(feats.y)["auc_out_of_fold"]["head"] > 0.9
    assert (bad.report(feats.y)["auc_out_of_fold"]["head"] or 0) < 0.75


def test_rules_replay_what_a_decoder_would_have_returned() -> None:
    task = np.array(["HumanEval/1"] * 3 + ["HumanEval/0"] * 3)
    sample = np.array(["s1", "eval:g", "s0", "s0", "eval:g", "s1"])
    attempts = attempts_by_problem(task, sample)
    assert [a.task for a in attempts] == ["HumanEval/0", "HumanEval/1"]  # by problem number
    assert attempts[1].rows == [1, 2, 0]  # greedy, then s0, s1
    y = np.array([1, 0, 0, 0, 1, 1])
    value = np.array([0.9, 0.2, 0.1, 0.3, 0.8, 0.7])
    threshold = np.full(6, 0.5)
    assert greedy_rule(attempts[1]) == (1, [1])
    assert best_of(value, 3)(attempts[1]) == (0, [1, 2, 0])  # s1 has the highest value
    # problem 1: greedy 0.2 < 0.5 -> s0 (0.1) -> s1 (0.9): three made, the best returned
    assert regenerate_below(value, threshold, 3)(attempts[1]) == (0, [1, 2, 0])
    assert regenerate_below(value, threshold, 2)(attempts[1]) == (1, [1, 2])  # ties: earlier
    # problem 0: greedy 0.8 >= 0.5: kept, nothing regenerated
    assert regenerate_below(value, threshold, 3)(attempts[0]) == (4, [4])
    rows = replay(
        attempts,
        y,
        np.full(6, 10),
        {"greedy": greedy_rule, "best": best_of(value, 3)},
        oracle_n=[3],
    )
    by = {r["rule"]: r for r in rows}
    assert by["greedy"]["passed"] == 1 and by["best"]["passed"] == 2
    assert by["best"]["vs_greedy"] == {"wins": 1, "losses": 0, "p_value": 1.0}
    assert by["best"]["tokens_per_problem"] == 30 and by["oracle@3"]["passed"] == 2
    assert by["best"]["emitted_token_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert by["greedy"]["emitted_token_share"] == 1.0


def test_examples_decide_first_and_the_head_ranks_ties_and_decides_where_none_are_stated() -> None:
    a = Attempts("HumanEval/3", [0, 1, 2, 3])
    n_ex = np.array([2, 2, 2, 2])
    failed = np.array([1, 0, 0, 1])  # greedy fails one example; s0 and s1 pass them
    value = np.array([0.9, 0.3, 0.7, 0.95])
    thr = np.full(4, 0.5)
    assert examples_first(n_ex, failed, 4)(a) == (1, [0, 1])  # the first passing one
    # stacked: s0 passes the examples but is valued below the threshold: s1 is made and wins
    assert examples_then(value, thr, n_ex, failed, 4)(a) == (2, [0, 1, 2])
    # within two answers only s0 passed: it wins over greedy's higher value
    assert examples_then(value, thr, n_ex, failed, 2)(a) == (1, [0, 1])
    # all fail: fewest failures first, then the head's value
    all_fail = np.array([2, 1, 1, 2])
    assert examples_first(n_ex, all_fail, 4)(a) == (1, [0, 1, 2, 3])
    assert examples_then(value, thr, n_ex, all_fail, 4)(a) == (2, [0, 1, 2, 3])
    # no examples stated: examples keep greedy, the stack lets the head decide alone
    none = np.zeros(4, dtype=int)
    assert examples_first(none, failed, 4)(a) == (0, [0])
    assert examples_then(value, thr, none, failed, 4)(a) == regenerate_below(value, thr, 4)(a)


def test_vgb_over_answers_accepts_samples_in_proportion_to_their_value() -> None:
    a = Attempts("HumanEval/5", [0, 1, 2, 3])
    sure = np.array([0.0, 0.0, 1.0, 0.0])  # greedy is never a VGB proposal
    for seed in range(5):
        assert vgb_answers(sure, 3, seed)(a) == (2, [1, 2])
    never = np.array([0.9, 0.0, 0.0, 0.0])
    row, made = vgb_answers(never + 1e-9 * np.arange(4), 3, 0)(a)
    assert made == [1, 2, 3] and row == 3  # all rejected: the highest-valued sample
    # stacked with checks: a failing answer is never accepted, however high its value
    failed = np.array([0, 1, 0, 1])
    assert vgb_answers(np.array([0.0, 1.0, 0.0, 1.0]), 3, 0, failed)(a) == (2, [1, 2, 3])
    assert vgb_answers(np.array([0.0, 1.0, 1.0, 1.0]), 3, 0, failed)(a) == (2, [1, 2])
    half = np.array([0.0, 0.5, 0.5, 0.5])
    first = [
        vgb_answers(half, 1, s)(Attempts(f"HumanEval/{t}", [0, 1]))[0]
        for s in range(20)
        for t in range(20)
    ]
    assert set(first) == {1}
    accepted = [len(vgb_answers(half, 3, s)(a)[1]) == 1 for s in range(400)]
    assert 0.4 < float(np.mean(accepted)) < 0.6


def test_within_problem_auc_ignores_which_problems_are_hard() -> None:
    task = np.array(["a"] * 4 + ["b"] * 4)
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    # a signal that only knows problem a is easier: perfect overall order, useless within
    hardness = np.array([0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1])
    assert within_problem_auc(hardness, y, task) == 0.5
    ranking = np.array([0.5, 0.6, 0.7, 0.1, 0.2, 0.3, 0.1, 0.9])
    assert within_problem_auc(ranking, y, task) == 1.0


def test_replay_needs_greedy_answers() -> None:
    with pytest.raises(UsageError, match="--from-eval"):
        attempts_by_problem(np.array(["HumanEval/0"]), np.array(["s0"]))


def test_first_samples_keeps_greedy_and_the_first_k() -> None:
    from planner.verifier_training.rollouts import Rollout, first_samples

    rows = [
        Rollout(task_id=f"HumanEval/{t}", sample=s, completion="", passed=False, status="f")
        for t in range(2)
        for s in ("eval:g.jsonl", "s0", "s1", "s2", "s10")
    ]
    kept = first_samples(rows, 2)
    assert [(r.task_id, r.sample) for r in kept] == [
        (f"HumanEval/{t}", s) for t in range(2) for s in ("eval:g.jsonl", "s0", "s1")
    ]
    assert first_samples(rows, None) == rows


def test_a_c_grid_is_chosen_per_fold_on_its_training_problems_alone() -> None:
    from planner.verifier_training.answer_fit import choose_c

    feats = _features(n_tasks=24)
    fit = cross_fit_answers(feats, features="last", k=4, c_grid=(1e-4, 1.0))
    assert len(fit.c_by_fold) == 4 and set(fit.c_by_fold) <= {1e-4, 1.0}
    assert fit.report(feats.y)["c_by_fold"] == fit.c_by_fold
    assert fit.heads and fit.report(feats.y)["auc_out_of_fold"]["head"] > 0.9
    # on rows whose labels a head cannot learn, no C beats the first of the grid
    x, task = feats.last, feats.task
    noise = np.random.default_rng(3).integers(0, 2, len(task))
    assert choose_c(x, feats.y.astype(int), task, (1e-4, 1.0)) in (1e-4, 1.0)
    assert choose_c(np.zeros_like(x), noise, task, (1e-4, 1.0)) == 1e-4
    assert cross_fit_answers(feats, features="last", k=4).c_by_fold == []
