"""Quality provenance, the extrapolation rule, calibration and ranking, on hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware_catalog import load_catalog
from planner.recommend.evaluate import Candidate
from planner.recommend.plan import make_plan, rank_key
from planner.recommend.quality import QualityBook
from planner.recommend.trade import trade_sentence, verdict
from planner.recommend.workload import Workload
from runtime.errors import UsageError
from runtime.verifiers.spec import VerifierSpec

HALF, THREE = "qwen2.5-coder-0.5b", "qwen2.5-coder-3b"  # published 0.616 and 0.841


def _runs(tmp_path: Path) -> Path:
    runs = [
        {
            "model": HALF,
            "verifier": "none",
            "strategy": "plain",
            "n": 164,
            "passed": 82,
            "pass_at_1": 0.5,
            "ci95": [0.42, 0.58],
            "forward_per_emitted": 1.0,
        },
        {
            "model": HALF,
            "verifier": "examples=8+syntax",
            "strategy": "threshold",
            "n": 164,
            "passed": 123,
            "pass_at_1": 0.75,
            "ci95": [0.68, 0.81],
            "forward_per_emitted": 2.5,
            "code_cpu_s_per_emitted": 0.001,
        },
        {
            "model": HALF,
            "verifier": "latent=runtime/verifiers/heads/qwen2.5-coder-0.5b-latent.crossfit.json",
            "strategy": "threshold",
            "n": 164,
            "passed": 70,
            "pass_at_1": 0.4268,
            "ci95": [0.35, 0.5],
            "forward_per_emitted": 1.01,
        },
        {
            "model": HALF,
            "verifier": "syntax",
            "strategy": "threshold",
            "n": 40,
            "pass_at_1": 0.9,
        },  # too few problems to count as a measurement
    ]
    path = tmp_path / "humaneval.json"
    path.write_text(json.dumps(runs))
    return path


def _book(tmp_path: Path) -> QualityBook:
    return QualityBook.from_file(load_catalog(), _runs(tmp_path))


def test_measured_runs_carry_their_interval_and_match_by_plan_key(tmp_path: Path) -> None:
    book, catalog = _book(tmp_path), load_catalog()
    half = catalog.models[HALF]
    got = book.estimate(half, VerifierSpec.parse("syntax+examples=8"), "threshold")
    assert (got.pass_at_1, got.provenance, got.ci95) == (0.75, "measured", (0.68, 0.81))
    latent = book.estimate(half, VerifierSpec.parse("latent"), "threshold")
    assert latent.provenance == "measured" and latent.pass_at_1 == 0.4268
    copy = book.estimate(half, VerifierSpec.parse("model:self"), "threshold")
    assert copy.pass_at_1 == 0.4268 and "same hidden states" in copy.detail
    few = book.estimate(half, VerifierSpec.parse("syntax"), "threshold")
    assert few.pass_at_1 is None and few.provenance == "unknown"  # 40 problems do not count


def test_published_figures_are_calibrated_by_the_measured_ratio(tmp_path: Path) -> None:
    book, catalog = _book(tmp_path), load_catalog()
    ratio = 0.5 / 0.616  # measured / published for the 0.5B: the only Qwen measured here
    plain3 = book.estimate(catalog.models[THREE], VerifierSpec(), "plain")
    assert plain3.provenance == "published"
    assert plain3.pass_at_1 == pytest.approx(0.841 * ratio, abs=1e-4)
    assert "x0.81" in plain3.detail


def test_programmatic_verifiers_are_extrapolated_by_the_fix_rate(tmp_path: Path) -> None:
    book, catalog = _book(tmp_path), load_catalog()
    p0 = 0.841 * 0.5 / 0.616  # the 3B's calibrated plain
    f, f_lo, f_hi = (0.75 - 0.5) / 0.5, (0.68 - 0.5) / 0.5, (0.81 - 0.5) / 0.5
    got = book.estimate(catalog.models[THREE], VerifierSpec.parse("syntax+examples=8"), "threshold")
    assert got.provenance == "extrapolated"
    assert got.pass_at_1 == pytest.approx(p0 + f * (1 - p0), abs=1e-4)
    assert got.ci95 is not None
    assert got.ci95[0] == pytest.approx(p0 + f_lo * (1 - p0), abs=1e-4)
    assert got.ci95[1] == pytest.approx(p0 + f_hi * (1 - p0), abs=1e-4)
    assert "fixes 50% of plain failures" in got.detail


def test_a_learned_head_is_never_extrapolated(tmp_path: Path) -> None:
    book, catalog = _book(tmp_path), load_catalog()
    got = book.estimate(catalog.models[THREE], VerifierSpec.parse("latent"), "threshold")
    assert got.pass_at_1 is None and got.provenance == "unknown"
    assert "does not carry over" in got.detail


def _candidate(**update: object) -> Candidate:
    w = Workload(
        developers=10,
        min_pass_at_1=0,
        models=[HALF],
        gpus=["rtx-4090"],
        gpu_counts=[1],
        quants=["Q4_K_M"],
        verifiers=["none"],
    )  # type: ignore[arg-type]
    base = make_plan(w).candidates[0]
    return base.model_copy(update=update)


def test_ranking_is_by_cost_per_solved_task() -> None:
    cheap_weak = _candidate(
        id="a", cost_per_mtok_usd=1.00, pass_at_1=0.5, cost_per_1k_solved_usd=1.00 * 0.22 / 0.5
    )
    dear_strong = _candidate(
        id="b", cost_per_mtok_usd=1.01, pass_at_1=0.8, cost_per_1k_solved_usd=1.01 * 0.22 / 0.8
    )
    unknown = _candidate(id="c", cost_per_mtok_usd=0.5, pass_at_1=None, cost_per_1k_solved_usd=None)
    ranked = sorted([cheap_weak, unknown, dear_strong], key=rank_key)
    assert [c.id for c in ranked] == ["b", "a", "c"]


def test_plan_candidates_compute_cost_per_solved_task() -> None:
    w = Workload(
        developers=10,
        min_pass_at_1=0,
        models=[HALF],
        gpus=["rtx-4090"],
        gpu_counts=[1],
        quants=["Q4_K_M"],
        verifiers=["none"],
        tokens_per_task=300,
    )  # type: ignore[arg-type]
    c = make_plan(w).candidates[0]
    assert c.pass_at_1 is not None and c.cost_per_1k_solved_usd is not None
    assert c.cost_per_1k_solved_usd == pytest.approx(
        c.cost_per_mtok_usd * 300 / 1000 / c.pass_at_1, rel=1e-3
    )


def test_trade_sentence_and_verdict_say_the_numbers() -> None:
    v = _candidate(
        id="v",
        verifier="syntax+examples=8",
        pass_at_1=0.70,
        quality_provenance="measured",
        memory_gb_per_replica=2.0,
        cost_per_1k_solved_usd=0.085,
        active_power_w=400.0,
    )
    p = _candidate(
        id="p",
        verifier="none",
        model="qwen2.5-coder-1.5b",
        pass_at_1=0.71,
        quality_provenance="measured",
        memory_gb_per_replica=5.0,
        cost_per_1k_solved_usd=0.100,
        active_power_w=400.0,
    )
    sentence = trade_sentence(v, p)
    assert "about the same pass@1 (0.700 vs 0.710)" in sentence
    assert "40% of the memory" in sentence and "85% of the cost per solved task" in sentence
    # p solves at least as many as v: it is the rival v is measured against
    assert "15% less" in verdict([v, p])
    assert "no verifier pays" in verdict(
        [p.model_copy(update={"pass_at_1": 0.72, "cost_per_1k_solved_usd": 0.05}), v]
    )


def test_workload_verifiers_use_the_one_grammar() -> None:
    w = Workload(verifiers=["none", "examples=8 + syntax", "model:self"])  # type: ignore[arg-type]
    assert w.verifiers == ["none", "examples=8+syntax", "model:self"]
    with pytest.raises(Exception, match="did you mean"):
        Workload(verifiers=["sytax"])  # type: ignore[arg-type]
    with pytest.raises(Exception, match="cannot be planned"):
        Workload(verifiers=["tests"])  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="field verifiers"):
        from planner.recommend.workload import make_workload

        make_workload({"verifiers": ["separate"]})


def test_the_shipped_runs_list_is_the_committed_benchmark_result() -> None:
    """The planner's package data is written by benchmarks/humaneval_report.py beside
    benchmarks/results/humaneval.json; they must not drift apart."""
    from planner.recommend.quality import shipped_runs_file

    committed = Path(__file__).parents[2] / "benchmarks" / "results" / "humaneval.json"
    assert shipped_runs_file().read_text() == committed.read_text()


def test_plans_read_the_home_runs_list_and_it_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner.recommend.quality import read_measured, runs_files

    monkeypatch.setenv("BACKPLAN_HOME", str(tmp_path / "home"))
    assert len(runs_files()) == 1  # the shipped runs only: the home has none yet
    mine = tmp_path / "home" / "results" / "humaneval.json"
    mine.parent.mkdir(parents=True)
    mine.write_text(
        json.dumps(
            [
                {
                    "model": HALF,
                    "verifier": "none",
                    "strategy": "plain",
                    "n": 164,
                    "passed": 100,
                    "pass_at_1": 0.6098,
                }
            ]
        )
    )
    files = runs_files()
    assert files[-1] == mine
    book = QualityBook(load_catalog(), read_measured(files))
    assert book.plain(load_catalog().models[HALF]).pass_at_1 == 0.6098


def test_a_verdict_resting_on_an_extrapolation_also_says_what_measured_rows_show() -> None:
    common = {"memory_gb_per_replica": 2.0, "active_power_w": 100.0}
    guess = _candidate(
        id="g",
        verifier="syntax+examples=8",
        pass_at_1=0.85,
        quality_provenance="extrapolated",
        cost_per_1k_solved_usd=0.10,
        **common,
    )
    plain = _candidate(
        id="p",
        verifier="none",
        pass_at_1=0.80,
        quality_provenance="published",
        cost_per_1k_solved_usd=0.12,
        **common,
    )
    seen = _candidate(
        id="m",
        verifier="syntax+examples=8",
        pass_at_1=0.77,
        quality_provenance="measured",
        cost_per_1k_solved_usd=0.13,
        **common,
    )
    text = verdict([guess, plain, seen])
    assert (
        text.startswith("On this workload the verifier buys quality") and "(extrapolated)" in text
    )
    assert "On measured verifier rows alone: no verifier row pays" in text
    assert "8% more" in text  # 0.13 against the plain 0.12 that solves more
