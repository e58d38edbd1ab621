"""Hidden-state features and rollouts on real llama.cpp (SmolLM2-135M)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.quality.dataset import load_humaneval
from planner.verifier_training.features import rollout_features
from planner.verifier_training.rollouts import CollectConfig, Rollout, collect, load_rollouts
from runtime.errors import UsageError

pytestmark = pytest.mark.integration


def test_features_have_one_row_per_kept_prefix(smol_path: Path) -> None:
    problem = load_humaneval()[2]
    right = f"```python\n{problem.prompt}{problem.canonical_solution}```"
    rollouts = [
        Rollout(task_id=problem.task_id, sample="a", completion=right, passed=True, status="p"),
        Rollout(
            task_id=problem.task_id,
            sample="b",
            completion="```python\n```",
            passed=False,
            status="f",
        ),
    ]
    feats = rollout_features("smollm2-135m", "smollm2-135m", rollouts, stride=5)
    assert feats.x.shape[1] == 576 and np.isfinite(feats.x).all()
    assert feats.final.sum() == 2 and set(feats.y.tolist()) == {0, 1}
    assert feats.tokens_processed > len(right) // 8
    first = feats.rollout == 0
    n_answer = feats.tokens_processed  # rows of rollout 0: every 5th prefix, root and last
    assert 3 <= first.sum() < n_answer
    assert feats.cpu_s > 0 and len(feats.model_sha256) == 64


def test_collect_resumes_and_labels_with_the_tests(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    config = CollectConfig(model="smollm2-135m", samples=1, temperature=0.8, max_tokens=24)
    first = collect(config, out, limit=2)
    assert len(first) == 2 and all(r.tokens and r.generated_tokens for r in first)
    assert all(r.status in {"passed", "failed", "timeout"} for r in first)
    again = collect(config, out, limit=2)  # nothing left to do: read back, not regenerated
    assert [r.completion for r in again] == [r.completion for r in first]
    header, rows = load_rollouts(out)
    assert header["model"] == "smollm2-135m" and len(rows) == 2


def _answer_rollouts(path: Path, n_problems: int = 10) -> list[Rollout]:
    """Per problem: a greedy answer (the canonical solution for even problems, a stub for odd
    ones) and two samples (one right, one wrong): real text, labels that mean something."""
    import json

    rows = []
    for i, p in enumerate(load_humaneval()[:n_problems]):
        right = f"```python\n{p.prompt}{p.canonical_solution}```"
        wrong = f"```python\n{p.prompt}    return None\n```"
        greedy_ok = i % 2 == 0
        rows += [
            Rollout(
                task_id=p.task_id,
                sample="eval:greedy.jsonl",
                completion=right if greedy_ok else wrong,
                passed=greedy_ok,
                status="passed" if greedy_ok else "failed",
            ),
            Rollout(task_id=p.task_id, sample="s0", completion=wrong, passed=False, status="f"),
            Rollout(task_id=p.task_id, sample="s1", completion=right, passed=True, status="p"),
        ]
    config = CollectConfig(model="smollm2-135m", samples=2)
    path.write_text(
        json.dumps({"config": config.model_dump()})
        + "\n"
        + "".join(r.model_dump_json() + "\n" for r in rows)
    )
    return rows


def test_answer_features_and_the_models_own_confidence(tmp_path: Path, smol_path: Path) -> None:
    from planner.verifier_training.answers import AnswerFeatures, answer_features

    rows = _answer_rollouts(tmp_path / "r.jsonl", n_problems=2)
    feats = answer_features("smollm2-135m", "smollm2-135m", rows)
    assert feats.last.shape == feats.mean.shape == (6, 576)
    assert np.isfinite(feats.last).all() and np.isfinite(feats.mean).all()
    assert (feats.min_logprob <= feats.mean_logprob).all() and (feats.mean_logprob < 0).all()
    assert (feats.length > 0).all() and feats.tokens_processed > feats.length.sum()
    # a stub answer is shorter than the canonical solution
    assert feats.length[1] < feats.length[2]
    # a problem's answers share its prompt's decode: the third reads as it does alone, and the
    # three cost one prompt and their own tokens
    alone = answer_features("smollm2-135m", "smollm2-135m", [rows[2]])
    assert np.allclose(alone.last[0], feats.last[2], atol=1e-4)
    assert np.isclose(alone.mean_logprob[0], feats.mean_logprob[2], atol=1e-4)
    prompt = alone.tokens_processed - int(alone.length[0])
    three = answer_features("smollm2-135m", "smollm2-135m", rows[:3])
    assert three.tokens_processed == prompt + int(feats.length[:3].sum())
    feats.save(tmp_path / "f.npz")
    back = AnswerFeatures.load(tmp_path / "f.npz")
    assert np.array_equal(back.last, feats.last) and back.sample.tolist() == feats.sample.tolist()
    # the cache computes only what it lacks, and returns rows in the rollouts' order
    from planner.verifier_training.answers import cached_answer_features

    cache = tmp_path / "c.npz"
    first = cached_answer_features("smollm2-135m", "smollm2-135m", rows[:4], cache)
    both = cached_answer_features("smollm2-135m", "smollm2-135m", rows[::-1], cache)
    assert len(AnswerFeatures.load(cache).y) == 6  # 4 cached + the 2 new, once each
    assert both.sample.tolist() == [r.sample for r in rows[::-1]]
    assert np.allclose(both.last[-1], first.last[0], atol=1e-4)


def test_answer_features_tap_intermediate_layers(tmp_path: Path, smol_path: Path) -> None:
    from planner.verifier_training.answers import cached_answer_features

    rows = _answer_rollouts(tmp_path / "r.jsonl", n_problems=2)
    cache = tmp_path / "layers.npz"
    feats = cached_answer_features("smollm2-135m", "smollm2-135m", rows, cache, layers=(20, 5))
    assert feats.layers == (5, 20)
    assert feats.layer_last is not None and feats.layer_mean is not None
    assert feats.layer_last.shape == feats.layer_mean.shape == (6, 2, 576)
    assert np.isfinite(feats.layer_last).all()
    # the residual stream after a middle layer is not the final (normed) hidden state, and the
    # final state is what a pass without the tap computes
    assert not np.allclose(feats.matrix("last@20"), feats.last, atol=1e-2)
    plain = cached_answer_features("smollm2-135m", "smollm2-135m", rows[:1], None)
    assert np.allclose(plain.last[0], feats.last[0], atol=1e-4)
    # a problem's answers shared one prompt: each answer's layer rows are its own tokens'
    assert not np.allclose(feats.layer_mean[1], feats.layer_mean[2], atol=1e-3)
    with pytest.raises(UsageError, match="layers"):
        cached_answer_features("smollm2-135m", "smollm2-135m", rows, cache, layers=(5,))


def test_replay_command_reports_heads_baselines_and_rules(tmp_path: Path, smol_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from backplan.cli import _register, cli

    _answer_rollouts(tmp_path / "r.jsonl", n_problems=10)
    _register()
    args = ["verifier", "replay", "--rollouts", str(tmp_path / "r.jsonl"), "--folds", "2"]
    args += ["--features", "last,mean", "--max-n", "3", "--cache", str(tmp_path / "f.npz")]
    res = CliRunner().invoke(cli, args + ["--out-dir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert report["problems"] == 10 and report["answers"] == 30
    for h in report["heads"].values():
        assert {"head", "baseline:length", "baseline:mean_logprob"} <= set(h["auc_out_of_fold"])
    rules = {r["rule"]: r for r in report["rules"]}
    assert rules["greedy"]["passed"] == 5  # the even problems' greedy answers are right
    assert rules["oracle@3"]["passed"] == 10  # every problem has a right sample
    assert rules["sample"]["passed"] == 0 and rules["sample"]["vs_greedy"]["losses"] == 5
    assert all(1 <= r["answers_per_problem"] <= 3 for r in rules.values())
    assert all(0 < (r["emitted_token_share"] or 1) <= 1 for r in rules.values())
    # the prompt's examples were run on every answer: alone and stacked with each signal
    assert {"examples, up to 3", "examples then head, up to 3"} <= set(rules)
    vgb = rules["VGB over answers by head, up to 2"]
    # VGB walks the samples only: two per problem, so no "up to 3" that would repeat "up to 2"
    assert "VGB over answers by head, up to 3" not in rules
    assert vgb["seeds"]["passed_min"] <= vgb["passed"] <= vgb["seeds"]["passed_max"]
    assert all("auc_within_problem" in h for h in report["heads"].values())
    offline = [fs for fs in report["heads"] if fs.endswith("+confidence")]
    assert len(offline) == 1  # the best head reading log-probabilities too: no head file kept
    assert len(list((tmp_path / "out" / "heads").glob("*.npz"))) == 4  # 2 feature sets x 2 folds
    # each feature set's manifest is what eval reads to pick the head that never saw a problem
    from planner.quality.harness import resolve_crossfit

    manifest = tmp_path / "out" / "heads" / "smollm2-135m-answer-last.crossfit.json"
    tasks = [f"HumanEval/{i}" for i in range(10)]
    specs = resolve_crossfit(f"latent={manifest}", tasks)
    assert len(set(specs.values())) == 2 and all("fold" in s for s in specs.values())
    # the cached features are reused: a second run reads them (same rollouts)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "Replay" in again.output
    # --samples 1: each problem's greedy answer and its first sample only (s0, always wrong);
    # 3 folds, so every fold trains on some even problem's right greedy answer
    out1 = tmp_path / "out1"
    fewer_args = ["verifier", "replay", "--rollouts", str(tmp_path / "r.jsonl"), "--folds", "3"]
    fewer_args += ["--features", "last", "--cache", str(tmp_path / "f.npz"), "--samples", "1"]
    fewer = CliRunner().invoke(cli, fewer_args + ["--no-examples", "--out-dir", str(out1)])
    assert fewer.exit_code == 0, fewer.output
    report1 = json.loads((out1 / "replay.json").read_text())
    assert report1["answers"] == 20 and report1["samples_per_problem"] == 1
    rules1 = {r["rule"]: r for r in report1["rules"]}
    assert rules1["oracle@2"]["passed"] == 5  # s1, the right sample, is left out
