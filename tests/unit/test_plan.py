"""The recommender on the shipped catalogue: constraints filter, binding limits, frontiers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.recommend.plan import _pareto, make_plan
from planner.recommend.workload import Workload, load_workload
from runtime.errors import UsageError

SMALL = dict(
    models=["qwen2.5-coder-0.5b", "qwen2.5-coder-7b"],
    gpus=["rtx-4090", "l4", "h100-sxm"],
    gpu_counts=[1, 2],
    quants=["Q4_K_M"],
)


def test_every_shortlisted_candidate_meets_every_constraint() -> None:
    w = Workload(
        developers=40,
        min_pass_at_1=0.6,
        budget_usd=40_000,
        power_cap_w=2000,
        min_tok_s_per_stream=30,
        **SMALL,
    )  # type: ignore[arg-type]
    plan = make_plan(w)
    assert plan.evaluated == 3 * 2 * 2 * 1 * len(w.verifiers)
    assert plan.shortlist
    for c in plan.candidates:
        assert c.feasible
        assert c.capex_usd <= 40_000 and c.active_power_w <= 2000
        assert c.per_stream_tok_s >= 30 and (c.pass_at_1 or 0) >= 0.6
        assert all(v <= 1.0 for v in c.headroom.values())
    solved = [c.cost_per_1k_solved_usd for c in plan.candidates]
    known = [x for x in solved if x is not None]
    assert known == sorted(known) and solved[: len(known)] == known  # unknown pass@1 last


def test_impossible_budget_names_what_binds() -> None:
    w = Workload(developers=40, budget_usd=100, min_pass_at_1=0, **SMALL)  # type: ignore[arg-type]
    plan = make_plan(w)
    assert plan.feasible == 0 and not plan.shortlist
    assert set(plan.rejected_by) == {"budget"}


def test_verifier_costs_memory_and_speed() -> None:
    w = Workload(
        developers=10, min_pass_at_1=0, **{**SMALL, "gpus": ["rtx-4090"], "gpu_counts": [1]}
    )  # type: ignore[arg-type]
    plan = make_plan(w)
    by = {(c.model, c.verifier): c for c in plan.candidates}
    plain, sep = by[("qwen2.5-coder-7b", "none")], by[("qwen2.5-coder-7b", "model:self")]
    assert sep.verifier_weights_gb == pytest.approx(plain.main_weights_gb)
    assert sep.memory_gb_per_replica > plain.memory_gb_per_replica
    assert sep.decode_tok_s < plain.decode_tok_s
    # on a GPU a 16-token verifier batch costs about one pass: far less than 2x
    assert sep.decode_tok_s > 0.6 * plain.decode_tok_s


def test_pareto_frontier() -> None:
    pts = [("a", 0.5, 1.0), ("b", 0.6, 2.0), ("c", 0.55, 3.0), ("d", 0.7, 2.5)]
    assert _pareto(pts) == ["a", "b", "d"]


def test_workload_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("developers: -3\n")
    with pytest.raises(UsageError, match="developers"):
        load_workload(bad)
    bad.write_text("developers: [1\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_workload(bad)
    bad.write_text("develoeprs: 3\n")
    with pytest.raises(UsageError, match="develoeprs"):
        load_workload(bad)
    with pytest.raises(UsageError, match="does not exist"):
        load_workload(tmp_path / "missing.yaml")
    bad.write_bytes(bytes(range(256)))
    with pytest.raises(UsageError, match="not UTF-8 text"):
        load_workload(bad)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pue: 0.5\n", "a PUE of 0.5 is impossible"),
        ("pue: .nan\n", "a PUE of nan is impossible"),
        ("gpu_counts: [2, 0]\n", "field gpu_counts.1"),
        ("quants: []\n", "field quants"),
        ("models: []\n", "field models"),
        ("developers: [1\n", "at line 2, column 1"),  # YAML errors: one line, with where
    ],
)
def test_impossible_workloads_are_refused_in_one_line(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=needle) as exc:
        load_workload(path)
    assert "\n" not in str(exc.value)


def test_bad_input_to_the_planning_commands_is_one_line_and_a_non_zero_exit(
    tmp_path: Path,
) -> None:
    from backplan.cli import _register, cli

    _register()
    (tmp_path / "a-file").write_text("")
    bad_runs = tmp_path / "runs.json"
    bad_runs.write_text(json.dumps([{"model": "m", "verifier": "none", "n": "all"}]))
    cases = [
        (["predict", "--gpu", "h100-sxm", "--params", "nan"], "--params nan"),
        (["predict", "--gpu", "h100-sxm", "--params", "-3"], "--params -3"),
        (["predict", "--gpu", "h100-sxm", "--model", "qwen2.5-coder-7b", "--probe"], "--local"),
        (["plan", "--developers", "5", "--quality", str(bad_runs)], "run 1: field n"),
        (
            ["plan", "--developers", "5", "--quality", str(tmp_path / "typo.json")],
            "typo.json does not exist",
        ),
        (
            ["plan", "--developers", "5", "--out", str(tmp_path / "a-file" / "plan.json")],
            "a-file is a file, not a folder",
        ),
    ]
    for args, needle in cases:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        (line,) = result.output.strip().splitlines()
        assert line.startswith("error: ") and needle in line, (args, result.output)


def test_example_workload_in_readme_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- workload-example -->", 1)[1].split("```yaml", 1)[1]
    path = tmp_path / "w.yaml"
    path.write_text(block.split("```", 1)[0])
    w = load_workload(path)
    assert w.demand_tok_per_day > 0


def test_cli_predict_and_unknown_gpu() -> None:
    from backplan.cli import _register, cli

    _register()
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["predict", "--gpu", "RTX 4090", "--model", "qwen2.5-coder-7b", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    # every predicted figure says which term binds it, and the decode terms add up to it
    assert set(out["bound_by"]) == {"decode_tok_s", "prefill_tok_s", "memory_gb", "watts"}
    decode = out["terms"]["decode"]
    assert decode["bound_by"] == out["bound_by"]["decode_tok_s"]
    parts = sum(decode[k] for k in ("weights_ms", "kv_cache_ms", "compute_ms", "fixed_ms"))
    assert parts == pytest.approx(decode["total_ms"], abs=0.01)
    assert 1000 / decode["total_ms"] == pytest.approx(out["decode_tok_s"], rel=0.01)
    # an HBM part's batch-1 stream is bounded by its SMs, a GDDR card's by its DRAM
    h100 = json.loads(
        runner.invoke(
            cli, ["predict", "--gpu", "h100-sxm", "--model", "qwen2.5-coder-7b", "--json"]
        ).output
    )
    assert h100["terms"]["decode"]["weights_stream_bound_by"] == "compute units"
    assert decode["weights_stream_bound_by"] == "bandwidth"
    bad = runner.invoke(cli, ["predict", "--gpu", "rtx 4091", "--model", "qwen2.5-coder-7b"])
    assert bad.exit_code == 2 and "did you mean" in bad.output


def test_a_profile_configuration_that_emitted_nothing_falls_back_to_the_defaults() -> None:
    """The profiler writes 0 forward evaluations per token for a configuration that emitted
    no token; the planner must not divide by it."""
    from planner.capacity.verifier import assumed_cost, cost_from_config
    from planner.profiler.schema import ProfileError, load_profile

    root = Path(__file__).parents[2]
    profile = load_profile(root / "benchmarks/results/profile_qwen2.5-coder-0.5b.json")
    plain = profile.config("plain")
    broken = plain.model_copy(
        update={"compute": plain.compute.model_copy(update={"main_forward_per_emitted": 0.0})}
    )
    profile = profile.model_copy(
        update={"configs": [broken if c.name == "plain" else c for c in profile.configs]}
    )
    with pytest.raises(ProfileError, match="emitted no tokens"):
        cost_from_config(profile, profile.config("plain"), "none", latent_host=False)
    result = make_plan(Workload(developers=10, **SMALL), profile=profile)  # type: ignore[arg-type]
    source = result.verifier_costs["qwen2.5-coder-0.5b none"]
    assert not source.startswith("profile")  # the next source: the measured runs
    hermetic = make_plan(Workload(developers=10, **SMALL), profile=profile, runs=[])  # type: ignore[arg-type]
    assert hermetic.verifier_costs["qwen2.5-coder-0.5b none"] == assumed_cost("none", False).source
    assert result.feasible > 0


def test_the_example_workload_states_the_models_defaults() -> None:
    """One source per default: the example YAML (and the README's copy of it) may differ from
    Workload's defaults only where it shows a constraint that has none (budget, power cap)."""
    import yaml

    root = Path(__file__).parents[2]
    text = (root / "planner" / "recommend" / "example_workload.yaml").read_text()
    readme = (root / "README.md").read_text().split("<!-- workload-example -->", 1)[1]
    assert readme.split("```yaml\n", 1)[1].split("```", 1)[0] == text
    data = yaml.safe_load(text)
    defaults = Workload()
    for field, value in data.items():
        if field in ("budget_usd", "power_cap_w"):
            assert getattr(defaults, field) is None
            continue
        assert getattr(defaults, field) == value, field
