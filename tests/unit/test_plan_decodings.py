"""Plans compare each verifier under the decoding that measured it (threshold, regenerate-aN,
VGB over answers, sampled VGB): one label shared by the runs list, the plan and the workload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.quality.decoding import Decoding
from planner.quality.harness import results_stem
from planner.quality.results import EvalConfig, record_summary
from planner.recommend.plan import make_plan
from planner.recommend.quality import measured_rows, read_measured, shipped_runs_file
from planner.recommend.workload import PlannedVerifier, Workload
from runtime.errors import UsageError

HALF = "qwen2.5-coder-0.5b"


@pytest.mark.parametrize(
    "label",
    ["plain", "threshold", "regenerate", "regenerate-a8", "regenerate-a4-vgb-t0.8", "vgb-t0.7"],
)
def test_labels_round_trip_through_their_decoding(label: str) -> None:
    assert Decoding.parse(label).label == label


def test_a_runs_list_entry_and_an_eval_config_map_to_one_label() -> None:
    config = EvalConfig(
        model=HALF,
        verifier="syntax",
        strategy="regenerate",
        attempts=4,
        accept="value",
        temperature=0.8,
    )
    assert Decoding.of_run(config.model_dump()).label == "regenerate-a4-vgb-t0.8"
    assert Decoding.of_run({"strategy": "threshold"}).label == "threshold"
    assert Decoding.of_run({}).label == "plain"  # runs recorded before the fields existed
    # the results file's default name keeps its form: options, then the sampling tag
    assert results_stem(config).endswith("_regenerate-a4-vgb_t0.8-seed0")


@pytest.mark.parametrize(
    ("label", "says"),
    [
        ("regnerate-a8", "did you mean regenerate-a8"),
        ("threshold-a8", "regenerate strategy's options"),
        ("regenerate-a4-vgb", "give its temperature"),
        ("regenerate-a0", "fix the label"),
    ],
)
def test_a_wrong_label_is_refused_with_what_to_write(label: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        Decoding.parse(label)


def test_workload_rows_name_their_decoding_after_an_at_sign() -> None:
    w = Workload(verifiers=["none", "examples=8 + syntax @ regenerate-a8", "latent @threshold"])  # type: ignore[arg-type]
    assert w.verifiers == ["none", "examples=8+syntax @regenerate-a8", "latent"]
    rows = w.planned_verifiers
    assert [r.decoding.label for r in rows] == ["plain", "regenerate-a8", "threshold"]
    for bad, says in [("none @threshold", "none decodes with plain"), ("latent @plain", "uses it")]:
        with pytest.raises(UsageError, match=says):
            PlannedVerifier.parse(bad)


def _runs_with_a_regenerate_row(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """The shipped runs plus one regenerate run of the shipped threshold configuration,
    derived from it with its own pass count and compute."""
    runs = json.loads(shipped_runs_file().read_text())
    base = next(
        r
        for r in runs
        if r["model"] == HALF
        and r["verifier"] == "syntax+examples=8"
        and not r.get("variant")
        and r["strategy"] == "threshold"
        and not r["temperature"]
    )
    passed = min(base["n"], base["passed"] + 3)
    regen = {
        **base,
        "strategy": "regenerate",
        "attempts": 8,
        "passed": passed,
        "pass_at_1": round(passed / base["n"], 4),
        "ci95": [0.0, 1.0],
        "forward_per_emitted": base["forward_per_emitted"] + 0.5,
    }
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([*runs, regen]))
    return path, regen


def test_a_plan_row_uses_the_run_of_its_own_decoding(tmp_path: Path) -> None:
    path, regen = _runs_with_a_regenerate_row(tmp_path)
    w = Workload(
        developers=10,
        min_pass_at_1=0,
        models=[HALF],
        gpus=["rtx-4090"],
        gpu_counts=[1],
        quants=["Q4_K_M"],
        verifiers=["syntax+examples=8", "syntax+examples=8 @regenerate-a8"],
    )  # type: ignore[arg-type]
    plan = make_plan(w, runs=[path])
    by = {c.strategy: c for c in plan.candidates}
    assert set(by) == {"threshold", "regenerate-a8"}
    assert by["regenerate-a8"].pass_at_1 == regen["pass_at_1"]
    assert by["threshold"].pass_at_1 != by["regenerate-a8"].pass_at_1
    assert "regenerate-a8" in by["regenerate-a8"].verifier_cost_source
    assert by["regenerate-a8"].id.endswith("@regenerate-a8")
    # more forward evaluations per emitted token: slower decode on the same hardware
    assert by["regenerate-a8"].decode_tok_s < by["threshold"].decode_tok_s
    assert "syntax+examples=8 @regenerate-a8" in measured_rows(read_measured(path))


def test_a_sampled_decoding_not_measured_on_a_model_is_not_guessed(tmp_path: Path) -> None:
    w = Workload(
        developers=10,
        min_pass_at_1=0,
        models=["qwen2.5-coder-3b"],
        gpus=["rtx-4090"],
        gpu_counts=[1],
        quants=["Q4_K_M"],
        verifiers=["syntax+examples=8 @vgb-t0.7"],
    )  # type: ignore[arg-type]
    (c,) = make_plan(w).candidates
    assert c.pass_at_1 is None and c.quality_provenance == "unknown"
    assert "not extrapolated" in c.quality_detail


def test_runs_differing_only_in_attempts_are_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "runs.json"
    for attempts in (4, 8):
        config = EvalConfig(model=HALF, verifier="syntax", strategy="regenerate", attempts=attempts)
        record_summary(path, {**config.header(), "n": 164, "pass_at_1": 0.5})
    assert sorted(r["attempts"] for r in json.loads(path.read_text())) == [4, 8]
