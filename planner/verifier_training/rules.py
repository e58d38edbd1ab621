"""Whole-answer decision rules, as a decoder would apply them to a problem's answers in order.

A problem's answers are its greedy one, then its samples ``s0``, ``s1``, ... (generated in that
order, so "the next attempt" is the next sample). A rule sees the answers one at a time, as a
decoder would make them, and returns (the answer it would have returned, the answers it made):

- ``greedy`` / ``sample``: the greedy answer, or the first sample alone (plain sampling);
- ``best_of(S, N)``: the first N answers, the one scoring highest on S;
- ``regenerate_below(V, t, N)``: greedy; while the best value so far is below the threshold and
  fewer than N were made, the next; the highest-valued is returned;
- ``examples_first(N)``: the prompt's examples decide (:mod:`.example_checks`): greedy, then the
  next while the answer fails them, up to N; where all fail, the one failing fewest; where the
  prompt states none, greedy;
- ``examples_then(V, t, N)``: the stack: examples decide first, the value ranks the answers that
  tie on them and decides alone where the prompt states none (then as ``regenerate_below``);
  an answer passing the examples is kept once its value reaches the threshold too;
- ``vgb_answers(V, N, seed)``: VGB with a whole answer as one action. With answers as the
  tree's only level, the walk from the root moves to answer y with probability proportional to
  pi(y) V(y): sample y, accept it with probability V(y) (rejection sampling); after N
  rejections the highest-valued sample is returned. Sampled answers only (no greedy first), so
  it is paired with plain sampling at the same temperature. Stacked with the examples, the
  value is the stack's: the head's where an answer passes them, 0 where it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planner.verifier_training.fit import task_number


@dataclass(frozen=True)
class Attempts:
    """A problem's answers in the order a decoder would make them: greedy first."""

    task: str
    rows: list[int]  # indices into the feature arrays


Rule = Callable[[Attempts], tuple[int, list[int]]]  # -> (row returned, rows generated)


def greedy_rule(a: Attempts) -> tuple[int, list[int]]:
    return a.rows[0], a.rows[:1]


def sample_rule(a: Attempts) -> tuple[int, list[int]]:
    pool = a.rows[1:2] or a.rows[:1]
    return pool[0], pool


def _best(made: list[int], key: Callable[[int], tuple[float, ...]]) -> int:
    """The best of ``made`` by ``key``; ties go to the earlier answer."""
    return max(made, key=lambda i: (*key(i), -made.index(i)))


def best_of(score: np.ndarray, n: int) -> Rule:
    def rule(a: Attempts) -> tuple[int, list[int]]:
        pool = a.rows[:n]
        return _best(pool, lambda i: (score[i],)), pool

    return rule


def regenerate_below(
    values: np.ndarray, thresholds: np.ndarray, n: int, pick: np.ndarray | None = None
) -> Rule:
    """``pick``: the score that chooses among the answers made (default: the values that
    decide when to stop), e.g. a head that ranks but is not calibrated to decide."""
    rank = values if pick is None else pick

    def rule(a: Attempts) -> tuple[int, list[int]]:
        made = [a.rows[0]]
        while values[_best(made, lambda i: (values[i],))] < thresholds[a.rows[0]] and len(
            made
        ) < min(n, len(a.rows)):
            made.append(a.rows[len(made)])
        return _best(made, lambda i: (rank[i],)), made

    return rule


def examples_first(n_examples: np.ndarray, failed: np.ndarray, n: int) -> Rule:
    def rule(a: Attempts) -> tuple[int, list[int]]:
        if n_examples[a.rows[0]] == 0:
            return a.rows[0], a.rows[:1]
        made: list[int] = []
        for i in a.rows[:n]:
            made.append(i)
            if failed[i] == 0:
                return i, made
        return _best(made, lambda i: (-failed[i],)), made

    return rule


def examples_then(
    values: np.ndarray,
    thresholds: np.ndarray,
    n_examples: np.ndarray,
    failed: np.ndarray,
    n: int,
) -> Rule:
    alone = regenerate_below(values, thresholds, n)

    def rule(a: Attempts) -> tuple[int, list[int]]:
        if n_examples[a.rows[0]] == 0:
            return alone(a)
        t = thresholds[a.rows[0]]
        made: list[int] = []
        for i in a.rows[:n]:
            made.append(i)
            if failed[i] == 0 and values[i] >= t:
                break
        return _best(made, lambda i: (-failed[i], values[i])), made

    return rule


def vgb_answers(values: np.ndarray, n: int, seed: int, failed: np.ndarray | None = None) -> Rule:
    """With ``failed`` (checks each answer failed; 0 where the prompt states none) the value
    is the stack's: the head's where the checks pass, 0 where they fail; after N rejections
    the answer failing fewest checks, then the highest-valued, is returned."""
    fails = np.zeros(len(values), dtype=int) if failed is None else failed

    def rule(a: Attempts) -> tuple[int, list[int]]:
        # one stream per (seed, problem): a problem's walk does not depend on the others
        rng = np.random.default_rng([seed, task_number(a.task)])
        pool = a.rows[1 : 1 + n] or a.rows[:1]
        made: list[int] = []
        for i in pool:
            made.append(i)
            if rng.random() < (values[i] if fails[i] == 0 else 0.0):
                return i, made
        return _best(made, lambda i: (-fails[i], values[i])), made

    return rule
