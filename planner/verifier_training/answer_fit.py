"""Cross-fitted whole-answer heads, and the baselines beside every AUC.

The same problem folds as :mod:`planner.verifier_training.fit` (by problem number): the head
scoring a fold's answers was fitted on the other folds' rollouts only, its reject threshold
calibrated on a fifth of those training problems held out from the fit. Each baseline (answer
length, mean and minimum token log-probability, and a logistic combination of the three) is
fitted on exactly the same training rows, so its out-of-fold AUC is directly comparable: a head
counts only where it beats the best of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner.verifier_training.answers import AnswerFeatures
from planner.verifier_training.fit import assign_folds, auc, calibrate_threshold, task_number
from runtime.errors import HeadError
from runtime.verifiers.head import HeadMetadata, ValueHead

BASELINE_SETS: dict[str, tuple[str, ...]] = {
    "length": ("length",),
    "mean_logprob": ("mean_logprob",),
    "min_logprob": ("min_logprob",),
    "length+logprobs": ("length", "mean_logprob", "min_logprob"),
}


@dataclass
class AnswerFit:
    """Out-of-fold values of a head and of each baseline, with per-row thresholds."""

    features: str
    k: int
    values: np.ndarray  # (n,) the head's out-of-fold value of each answer
    thresholds: np.ndarray  # (n,) the threshold of the fold each answer was scored in
    baselines: dict[str, np.ndarray]  # name -> (n,) out-of-fold probability
    baseline_thresholds: dict[str, np.ndarray]  # name -> (n,) its fold's threshold
    #: (fold, head, the problems it was trained on, the problems it scores)
    heads: list[tuple[int, ValueHead, list[str], list[str]]] = field(default_factory=list)
    #: each fold's L2 strength C (chosen on its training problems alone when a grid was given)
    c_by_fold: list[float] = field(default_factory=list)

    def aucs(self, y: np.ndarray, task: np.ndarray | None = None) -> dict[str, float | None]:
        """AUC over all answers, or (with ``task``) the mean within one problem's answers."""
        score = auc if task is None else lambda v, lab: within_problem_auc(v, lab, task)
        out: dict[str, float | None] = {"head": score(self.values, y)}
        out |= {f"baseline:{k}": score(v, y) for k, v in self.baselines.items()}
        return out

    def report(self, y: np.ndarray, task: np.ndarray | None = None) -> dict[str, Any]:
        a = self.aucs(y)
        base = {k: v for k, v in a.items() if k.startswith("baseline:") and v is not None}
        best = max(base, key=lambda k: base[k]) if base else None
        head = a["head"]
        return {
            "features": self.features,
            "folds": self.k,
            "auc_out_of_fold": a,
            "best_baseline": best,
            **({"c_by_fold": self.c_by_fold} if self.c_by_fold else {}),
            "head_minus_best_baseline": None
            if head is None or best is None
            else round(head - base[best], 4),
            **({} if task is None else {"auc_within_problem": self.aucs(y, task)}),
        }


def per_problem_auc(values: np.ndarray, y: np.ndarray, task: np.ndarray) -> dict[str, float]:
    """The AUC among each problem's own answers, for the problems with both outcomes."""
    out: dict[str, float] = {}
    for t in np.unique(task):
        rows = task == t
        if len(np.unique(y[rows])) == 2 and (a := auc(values[rows], y[rows])) is not None:
            out[str(t)] = a
    return out


def within_problem_auc(values: np.ndarray, y: np.ndarray, task: np.ndarray) -> float | None:
    """The mean AUC among each problem's own answers, over problems with both outcomes: how
    well a signal ranks a problem's attempts, which best-of-N needs (an AUC over all answers
    also rewards knowing which problems are hard)."""
    kept = list(per_problem_auc(values, y, task).values())
    return float(np.mean(kept)) if kept else None


def choose_c(
    x: np.ndarray, y: np.ndarray, task: np.ndarray, grid: Sequence[float], k: int = 4
) -> float:
    """The grid's L2 strength with the best AUC over inner folds by problem, on training rows
    only (nested cross-validation: the outer fold's problems never choose their own C)."""
    folds = assign_folds(task.tolist(), k)
    fold = np.array([folds[t] for t in task])
    best, best_auc = grid[0], -1.0
    for c in grid:
        values = np.full(len(y), np.nan)
        for f in range(k):
            train, test = fold != f, fold == f
            if len(np.unique(y[train])) < 2 or not test.any():
                continue
            values[test] = ValueHead.fit_logistic(x[train], y[train], c=c).predict(x[test])
        seen = ~np.isnan(values)
        score = auc(values[seen], y[seen]) if seen.any() else None
        if score is not None and score > best_auc:
            best, best_auc = c, score
    return float(best)


def _split(tasks: list[str], seed: int) -> set[str]:
    rng = np.random.default_rng(seed)
    return set(rng.choice(tasks, size=max(1, len(tasks) // 5), replace=False).tolist())


def _fit_scalar(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


def cross_fit_answers(
    feats: AnswerFeatures,
    *,
    features: str = "last",
    k: int = 5,
    c: float = 0.05,
    precision: float = 0.85,
    model_name: str = "",
    data_id: str = "",
    confidence: bool = False,
    c_grid: Sequence[float] = (),
) -> AnswerFit:
    """``confidence``: the head reads the answer's length and token log-probabilities beside
    the hidden states (offline only: the runtime's verifiers see no log-probabilities yet, so
    no head file is kept; its values and AUCs say what passing them would buy). A feature set
    on an intermediate layer (``last+mean@16``) keeps heads that name the layer: the runtime
    taps it (``Context(hidden_layer=...)``). ``c_grid``: each fold's C is chosen from it by
    :func:`choose_c` on that fold's fitting rows alone (else ``c`` for every fold)."""
    from planner.verifier_training.answers import parse_feature_set

    base_features, layer = parse_feature_set(features)
    x = feats.matrix(features)
    if confidence:
        base = feats.baselines()
        x = np.hstack([x, np.column_stack([base[col] for col in BASELINE_SETS["length+logprobs"]])])
    y = feats.y.astype(int)
    folds = assign_folds(feats.task.tolist(), k)
    fold = np.array([folds[t] for t in feats.task])
    values = np.full(len(y), np.nan)
    thresholds = np.full(len(y), np.nan)
    base_x = feats.baselines()
    baselines = {name: np.full(len(y), np.nan) for name in BASELINE_SETS}
    baseline_thresholds = {name: np.full(len(y), np.nan) for name in BASELINE_SETS}
    heads: list[tuple[int, ValueHead, list[str], list[str]]] = []
    c_by_fold: list[float] = []
    for f in range(k):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        tasks = sorted(set(feats.task[train].tolist()), key=task_number)
        calib = _split(tasks, seed=f)
        in_calib = np.isin(feats.task[train], list(calib))
        fit_rows, cal_rows = train[~in_calib], train[in_calib]
        if len(np.unique(y[fit_rows])) < 2:
            raise HeadError("a fold's training answers all passed or all failed; collect more")
        c_f = choose_c(x[fit_rows], y[fit_rows], feats.task[fit_rows], c_grid) if c_grid else c
        c_by_fold.append(c_f)
        head = ValueHead.fit_logistic(x[fit_rows], y[fit_rows], c=c_f)
        threshold = calibrate_threshold(head.predict(x[cal_rows]), y[cal_rows], precision)
        values[test] = head.predict(x[test])
        thresholds[test] = threshold
        if not confidence:
            md = HeadMetadata(
                kind="logistic",
                features=base_features,  # type: ignore[arg-type]
                layer=layer,
                n_embd=x.shape[1],
                threshold=threshold,
                model_sha256=feats.model_sha256,
                model_name=model_name,
                training_data_id=f"{data_id}:answers-{features}-k{k}-fold{f}",
                training_tasks=tasks,
                auc=auc(values[test], y[test]),
                note=f"cross-fitted whole-answer head: use only on fold {f}'s problems",
            )
            heldout = sorted(set(feats.task[test].tolist()), key=task_number)
            heads.append((f, head.with_metadata(md), tasks, heldout))
        for name, cols in BASELINE_SETS.items():
            # fitted and calibrated on exactly the head's rows
            bx = np.column_stack([base_x[col] for col in cols])
            model = _fit_scalar(bx[fit_rows], y[fit_rows], c=1.0)
            baselines[name][test] = model.predict_proba(bx[test])[:, 1]
            baseline_thresholds[name][test] = calibrate_threshold(
                model.predict_proba(bx[cal_rows])[:, 1], y[cal_rows], precision
            )
    name = f"{features}+confidence" if confidence else features
    return AnswerFit(
        name,
        k,
        values,
        thresholds,
        baselines,
        baseline_thresholds,
        heads,
        c_by_fold if c_grid else [],
    )


def save_heads(fit: AnswerFit, out_dir: Path, stem: str, y: np.ndarray) -> Path:
    """Each fold's head and a cross-fit manifest (``<stem>.crossfit.json``): what
    ``backplan eval --verifier latent=<manifest>`` reads to score each problem with the head
    that never saw it."""
    import json

    from planner.quality.harness import CROSSFIT_SUFFIX
    from runtime.atomic import write_text_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    folds = []
    for f, head, _trained, heldout in fit.heads:
        path = head.save(out_dir / f"{stem}-fold{f}.npz")
        folds.append({"fold": f, "head": path.name, "tasks": heldout})
    manifest = {
        "kind": "crossfit",
        "level": "answer",
        "features": fit.features,
        "k": fit.k,
        "folds": folds,
        "report": fit.report(y),
    }
    path = out_dir / f"{stem}{CROSSFIT_SUFFIX}"
    write_text_atomic(path, json.dumps(manifest, indent=2) + "\n")
    return path
