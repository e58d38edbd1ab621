"""Head training without a model: folds, threshold calibration, cross-fitting, disjointness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import runtime.verifiers
from planner.quality.harness import resolve_crossfit
from planner.verifier_training.features import Features
from planner.verifier_training.fit import assign_folds, calibrate_threshold, cross_fit
from runtime.errors import UsageError
from runtime.verifiers.head import ValueHead

SHIPPED = Path(runtime.verifiers.__file__).parent / "heads"


def test_folds_are_balanced_and_deterministic() -> None:
    tasks = [f"HumanEval/{i}" for i in range(10)]
    folds = assign_folds(tasks[::-1], 2)
    assert folds == assign_folds(tasks, 2)
    assert sorted(folds.values()).count(0) == 5


def test_threshold_rejects_where_failures_dominate() -> None:
    scores = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.6, 0.7, 0.8, 0.9] * 10)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1] * 10)
    t = calibrate_threshold(scores, labels, precision=0.9)
    assert 0.25 < t <= 0.3  # everything below 0.3 failed; 0.3 itself passed
    assert calibrate_threshold(scores, 1 - labels, precision=0.9) == 0.0  # low = passing


def _features(n_tasks: int = 12, per: int = 20, seed: int = 0) -> Features:
    """Separable synthetic features: passing rollouts shifted along one direction."""
    rng = np.random.default_rng(seed)
    xs, ys, tasks, roll, final = [], [], [], [], []
    for t in range(n_tasks):
        for r in range(2):
            label = (t + r) % 2
            for j in range(per):
                xs.append(rng.normal(size=8) + (1.5 if label else -1.5) * np.eye(8)[0])
                ys.append(label)
                tasks.append(f"HumanEval/{t}")
                roll.append(2 * t + r)
                final.append(j == per - 1)
    return Features(
        x=np.asarray(xs, np.float32),
        y=np.asarray(ys, np.int8),
        task=np.asarray(tasks),
        rollout=np.asarray(roll),
        final=np.asarray(final),
        tokens_processed=1000,
        cpu_s=1.0,
        model_sha256="ab" * 32,
    )


def test_cross_fit_writes_fold_heads_that_never_saw_their_problems(tmp_path: Path) -> None:
    manifest = cross_fit(
        _features(), tmp_path, name="h", model_name="m", k=3, pretraining_tokens=1e6
    )
    assert manifest["auc_prefix_out_of_fold"] > 0.9  # separable data: the fit must find it
    tasks_seen: set[str] = set()
    for fold in manifest["folds"]:
        head = ValueHead.load(tmp_path / fold["head"])
        assert not set(fold["tasks"]) & set(head.metadata.training_tasks)
        assert 0.0 <= head.threshold < 1.0 and head.metadata.training_cost.tokens_processed
        tasks_seen |= set(fold["tasks"])
    assert len(tasks_seen) == 12
    cost = manifest["training_cost"]
    assert cost["fraction_of_pretraining"] == pytest.approx(cost["tokens_processed"] / 1e6)


def test_evaluation_picks_the_fold_head_and_refuses_a_head_that_saw_the_problem(
    tmp_path: Path,
) -> None:
    cross_fit(_features(), tmp_path, name="h", model_name="m", k=2)
    manifest = tmp_path / "h.crossfit.json"
    specs = resolve_crossfit(f"syntax+latent={manifest}", ["HumanEval/0", "HumanEval/1"])
    assert specs["HumanEval/0"].endswith("h-fold0.npz")
    assert specs["HumanEval/1"].endswith("h-fold1.npz")
    data = json.loads(manifest.read_text())
    data["folds"][0]["head"], data["folds"][1]["head"] = "h-fold1.npz", "h-fold0.npz"
    manifest.write_text(json.dumps(data))  # each fold now points at the head trained on it
    with pytest.raises(UsageError, match="must never score it"):
        resolve_crossfit(f"latent={manifest}", ["HumanEval/0"])
    full = tmp_path / "h.npz"  # trained on every problem: refused, pointed at the manifest
    with pytest.raises(UsageError, match="cross-fit manifest"):
        resolve_crossfit(f"latent={full}", ["HumanEval/3"])
    from planner.profiler.runner import crossfit_spec

    assert crossfit_spec(f"syntax+latent={full}") == f"syntax+latent={manifest}"


def test_shipped_crossfit_heads_are_disjoint_from_the_problems_they_score() -> None:
    manifests = sorted(SHIPPED.glob("*.crossfit.json"))
    assert manifests, "the cross-fitted heads shipped in runtime/verifiers/heads/ are missing"
    for path in manifests:
        data = json.loads(path.read_text())
        for fold in data["folds"]:
            head = ValueHead.load(path.parent / fold["head"])
            assert not set(fold["tasks"]) & set(head.metadata.training_tasks), path
            assert head.metadata.training_cost.tokens_processed > 0


def test_importing_eval_answers_labels_them_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    """``verifier collect --from-eval`` with no samples to generate: no model is loaded."""
    from planner.quality.results import EvalConfig
    from planner.verifier_training.rollouts import CollectConfig, collect, load_rollouts

    def results(path: Path, model: str, records: list[dict[str, object]]) -> Path:
        header = json.dumps({"config": EvalConfig(model=model).model_dump()})
        path.write_text("\n".join([header, *map(json.dumps, records)]) + "\n")
        return path

    base = {"completion": "```python\nx = 1\n```", "rollbacks": 0, "forward_per_emitted": 1.0}
    good = results(
        tmp_path / "a.jsonl",
        "m",
        [
            {"task_id": "HumanEval/0", "passed": True, "emitted_tokens": 8, "tok_s": 4.0, **base},
            {"task_id": "HumanEval/1", "passed": False, **base},  # no status, no token counts
        ],
    )
    out = tmp_path / "rollouts.jsonl"
    config = CollectConfig(model="m", samples=0)
    rollouts = collect(config, out, from_eval=[good], limit=2)
    assert [(r.task_id, r.passed, r.status, r.wall_s) for r in rollouts] == [
        ("HumanEval/0", True, "passed", 2.0),
        ("HumanEval/1", False, "failed", None),
    ]
    assert len(load_rollouts(out)[1]) == 2
    other = results(tmp_path / "b.jsonl", "another-model", [])
    with pytest.raises(UsageError, match="import only m's answers"):
        collect(config, out, from_eval=[other], limit=2)
    broken = tmp_path / "c.jsonl"
    broken.write_text('{"config": []}\n')
    with pytest.raises(UsageError, match="c.jsonl is not a backplan eval results file"):
        collect(config, out, from_eval=[broken], limit=2)
    assert len(load_rollouts(out)[1]) == 2  # nothing lost
