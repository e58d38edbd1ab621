"""Fit value heads by cross-fitting over problems, calibrate their thresholds, write them.

No problem is ever scored by a head that saw it: problems are split into K folds; the head for
fold k is fitted on the other folds' rollouts only, and its file lists the problems it was
trained on (``training_tasks``), which the evaluation checks before using it. Inside each
fold's training problems, a share is held out to calibrate the reject threshold: the largest
value below which, on those held-out prefixes, at least ``precision`` of the prefixes came
from failing answers (rejecting there mostly removes wrong work). A head trained on all
problems is written as well, for use on new work (it is never used on these problems).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from planner.verifier_training.features import Features
from runtime.atomic import write_text_atomic
from runtime.errors import HeadError
from runtime.verifiers.head import TrainingCost, ValueHead


def task_number(task_id: str) -> int:
    m = re.search(r"(\d+)$", task_id)
    return int(m.group(1)) if m else int(hashlib.sha256(task_id.encode()).hexdigest()[:8], 16)


def assign_folds(task_ids: list[str], k: int) -> dict[str, int]:
    """Problem -> fold, by its number: deterministic and balanced."""
    return {t: task_number(t) % k for t in sorted(set(task_ids), key=task_number)}


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    if len(np.unique(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def calibrate_threshold(scores: np.ndarray, labels: np.ndarray, precision: float) -> float:
    """Largest t with P(answer failed | value < t) >= ``precision`` (0: never reject)."""
    order = np.argsort(scores, kind="stable")
    s, failed = scores[order], (labels[order] == 0).astype(np.float64)
    prec = np.cumsum(failed) / np.arange(1, len(s) + 1)
    ok = np.flatnonzero(prec >= precision)
    ok = ok[ok >= max(4, len(s) // 100)]  # at least 1% of prefixes (and a handful) rejected
    if not ok.size:
        return 0.0
    i = int(ok[-1])
    upper = s[i + 1] if i + 1 < len(s) else s[i] + 1e-6
    return float(min(max((s[i] + upper) / 2.0, 0.0), 1.0))


@dataclass(frozen=True)
class FoldReport:
    fold: int
    heldout_tasks: list[str]
    threshold: float
    auc_prefix: float | None
    auc_final: float | None


def _fit(
    feats: Features, rows: np.ndarray, c: float, precision: float, seed: int
) -> tuple[ValueHead, float]:
    """Fit on most of ``rows``' problems, calibrate on the rest; return (head, threshold)."""
    tasks = sorted(set(feats.task[rows].tolist()), key=task_number)
    rng = np.random.default_rng(seed)
    calib = set(rng.choice(tasks, size=max(1, len(tasks) // 5), replace=False).tolist())
    in_calib = np.isin(feats.task[rows], list(calib))
    fit_rows, cal_rows = rows[~in_calib], rows[in_calib]
    if len(np.unique(feats.y[fit_rows])) < 2:
        raise HeadError("the training rollouts all passed or all failed; collect more samples")
    head = ValueHead.fit_logistic(feats.x[fit_rows], feats.y[fit_rows], c=c)
    threshold = calibrate_threshold(head.predict(feats.x[cal_rows]), feats.y[cal_rows], precision)
    return head, threshold


def cross_fit(
    feats: Features,
    out_dir: Path,
    *,
    name: str,
    model_name: str,
    k: int = 2,
    c: float = 0.05,
    precision: float = 0.85,
    pretraining_tokens: float | None = None,
    generation_tokens: int = 0,
    generation_cpu_s: float = 0.0,
    generation_wall_s: float = 0.0,
    data_id: str = "",
) -> dict[str, Any]:
    """Write ``<name>-fold<i>.npz`` for each fold, ``<name>.npz`` on all, and a manifest."""
    t0 = time.process_time()
    folds = assign_folds(feats.task.tolist(), k)
    fold_of_row = np.array([folds[t] for t in feats.task])
    oof = np.full(len(feats.y), np.nan)
    reports: list[FoldReport] = []
    heads: list[tuple[ValueHead, float, list[str], list[str]]] = []
    for f in range(k):
        train_rows = np.flatnonzero(fold_of_row != f)
        test_rows = np.flatnonzero(fold_of_row == f)
        head, threshold = _fit(feats, train_rows, c, precision, seed=f)
        oof[test_rows] = head.predict(feats.x[test_rows])
        heldout = sorted(set(feats.task[test_rows].tolist()), key=task_number)
        trained = sorted(set(feats.task[train_rows].tolist()), key=task_number)
        fin = test_rows[feats.final[test_rows]]
        reports.append(
            FoldReport(
                f,
                heldout,
                threshold,
                auc(oof[test_rows], feats.y[test_rows]),
                auc(oof[fin], feats.y[fin]),
            )
        )
        heads.append((head, threshold, trained, heldout))
    full_head, full_threshold = _fit(feats, np.arange(len(feats.y)), c, precision, seed=k)
    fit_cpu_s = time.process_time() - t0
    cost = TrainingCost(
        tokens_processed=generation_tokens + feats.tokens_processed,
        cpu_s=round(generation_cpu_s + feats.cpu_s + fit_cpu_s, 1),
        generation_wall_s=round(generation_wall_s, 1),
        pretraining_tokens=pretraining_tokens,
    )
    auc_prefix = auc(oof, feats.y)
    auc_final = auc(oof[feats.final], feats.y[feats.final])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for (head, threshold, trained, heldout), rep in zip(heads, reports, strict=True):
        md = head.metadata.model_copy(
            update={
                "threshold": threshold,
                "model_sha256": feats.model_sha256,
                "model_name": model_name,
                "training_data_id": f"{data_id}:crossfit-k{k}-fold{rep.fold}",
                "training_tasks": trained,
                "auc": rep.auc_prefix,
                "training_cost": cost,
                "note": f"cross-fitted: use only on the {len(heldout)} problems of fold "
                f"{rep.fold} (it never saw them)",
            }
        )
        path = out_dir / f"{name}-fold{rep.fold}.npz"
        head.with_metadata(md).save(path)
        files.append({"fold": rep.fold, "head": path.name, "tasks": heldout})
    full_md = full_head.metadata.model_copy(
        update={
            "threshold": full_threshold,
            "model_sha256": feats.model_sha256,
            "model_name": model_name,
            "training_data_id": f"{data_id}:all",
            "training_tasks": sorted(set(feats.task.tolist()), key=task_number),
            "auc": auc_prefix,
            "training_cost": cost,
            "note": "trained on every collected problem: for new work, never for scoring "
            "the problems it lists in training_tasks",
        }
    )
    full_head.with_metadata(full_md).save(out_dir / f"{name}.npz")
    manifest = {
        "kind": "crossfit",
        "model": model_name,
        "k": k,
        "folds": files,
        "full_head": f"{name}.npz",
        "rows": int(len(feats.y)),
        "rollouts": int(len(set(feats.rollout.tolist()))),
        "positive_share": round(float(feats.y.mean()), 4),
        "auc_prefix_out_of_fold": auc_prefix,
        "auc_final_out_of_fold": auc_final,
        "fold_reports": [rep.__dict__ for rep in reports],
        "training_cost": cost.model_dump()
        | {"fraction_of_pretraining": cost.fraction_of_pretraining},
    }
    write_text_atomic(out_dir / f"{name}.crossfit.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
