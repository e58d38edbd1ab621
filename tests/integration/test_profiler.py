"""A real (small) profile of SmolLM2-135M: worker processes, real llama.cpp, real meters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.profiler import ProfileRequest, load_profile, profile_frame, run_profile
from runtime.errors import UsageError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_profile(smol_path: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    req = ProfileRequest(
        model="smollm2-135m",
        quick=True,
        max_tokens=16,
        repeats=3,
        configs=[
            "plain",
            "latent-threshold",
            "separate-threshold",
            "syntax-vgb",
            "examples-vgb-answers",
        ],
        n_threads=2,
        quality=1,
        quality_dir=str(tmp_path_factory.mktemp("eval")),
    )
    seen: list[tuple[str, int, int]] = []
    prof = run_profile(req, lambda label, done, total: seen.append((label, done, total)))
    assert seen and seen[-1][1] == seen[-1][2]  # progress reached the end
    return prof


def test_forward_counts_are_exact(small_profile) -> None:  # type: ignore[no-untyped-def]
    plain = small_profile.config("plain")
    assert plain.compute.forward_per_emitted == 1.0
    assert plain.compute.verifier_forward_per_emitted == 0.0
    sep = small_profile.config("separate-threshold")
    # the never-rejecting head: every emitted token is evaluated once by each model
    assert sep.backtracking.rollbacks_per_100 == 0
    assert sep.compute.verifier_forward_per_emitted == 1.0
    assert sep.compute_ratio == 2.0
    latent = small_profile.config("latent-threshold")
    assert latent.compute.forward_per_emitted == 1.0
    assert latent.compute.head_evals_per_emitted >= 1.0


def test_memory_split_and_ratios(small_profile) -> None:  # type: ignore[no-untyped-def]
    plain = small_profile.config("plain")
    sep = small_profile.config("separate-threshold")
    latent = small_profile.config("latent-threshold")
    assert sep.memory.verifier_weights_gb == pytest.approx(plain.memory.main_weights_gb)
    assert sep.memory.kv_cache_gb == pytest.approx(2 * plain.memory.kv_cache_gb)
    assert plain.memory.peak_gb > plain.memory.main_weights_gb * 0.5
    assert sep.memory_ratio > 1.3  # a second copy of the weights shows in the measured peak
    assert latent.memory_ratio < 1.15
    # counts, not timings (a busy machine reorders speeds): a same-size separate verifier
    # evaluates every emitted token a second time
    assert sep.compute_ratio >= 1.9 and sep.decode_ratio > 0
    for c in small_profile.configs:
        assert c.energy.j_per_token.median > 0
        assert len(c.decode.tok_s.values) == 3


def test_profile_round_trip_and_frame(small_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = small_profile.save(tmp_path / "profile.json")
    again = load_profile(path)
    assert again.model.sha256 and len(again.model.sha256) == 64
    assert again.fingerprint["cores"] and again.fingerprint["llama_cpp_system_info"]
    df = profile_frame(again)
    assert list(df.index) == [
        "plain",
        "latent-threshold",
        "separate-threshold",
        "syntax-vgb",
        "examples-vgb-answers",
    ]
    # a row names its decoding as plans do; VGB over answers carries its attempts and rule
    assert df.loc["plain", "decoding"] == "plain"
    assert df.loc["examples-vgb-answers", "decoding"] == "regenerate-a4-vgb-t0.7"
    for col in (
        "memory_ratio",
        "compute_ratio",
        "decode_ratio",
        "decode_tok_s",
        "energy_j_per_token",
        "peak_gb",
    ):
        assert col in df.columns


def test_report_from_a_real_profile_and_plan(small_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from planner.recommend.plan import make_plan
    from planner.recommend.workload import Workload
    from planner.report import write_report

    plan = make_plan(
        Workload(
            developers=10,
            models=["qwen2.5-coder-0.5b", "qwen2.5-coder-7b"],
            gpus=["rtx-4090", "l4"],
            gpu_counts=[1],
        ),
        profile=small_profile,
    )
    assert plan.verifier_costs["qwen2.5-coder-7b model:self"].startswith("profile smollm2-135m")
    paths = write_report(tmp_path, small_profile, plan)
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 4
    md = paths["markdown"].read_text()
    assert "Ranked shortlist" in md and plan.shortlist[0].model in md
    for png in ("overheads.png", "pareto_cost.png", "pareto_power.png", "costs.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_quality_and_local_prediction(small_profile) -> None:  # type: ignore[no-untyped-def]
    from hardware_catalog import load_catalog
    from planner.capacity.prediction import predict_from_profile

    for c in small_profile.configs:
        assert c.quality is not None and c.quality.n == 1
        assert Path(c.quality.results_file).exists()
    # its pass@1 was measured with the same decoding as its speed
    vgb = small_profile.config("examples-vgb-answers")
    header = json.loads(Path(vgb.quality.results_file).read_text().splitlines()[0])["config"]
    assert (header["attempts"], header["accept"], header["temperature"]) == (4, "value", 0.7)
    local = small_profile.fingerprint["local_measurement"]
    assert local["bandwidth_gb_s"] > 0 and local["fp32_tflops"] > 0
    res = predict_from_profile(small_profile, load_catalog())
    assert res["predicted_decode_tok_s"] > 0 and res["measured_decode_tok_s"] > 0
    with pytest.raises(UsageError, match="both predicted and used for calibration"):
        predict_from_profile(small_profile, load_catalog(), [small_profile])


def test_cpu_probe_on_synthetic_copies(small_profile, smol_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A synthetic copy of SmolLM2's shape loads in llama.cpp with that shape, file type and chat
    template; the probe's line predicts the profiled model; a profile from another CPU is
    refused."""
    from dataclasses import replace

    from hardware_catalog import load_catalog
    from planner.capacity.cpu_probe import (
        gguf_file_type,
        gguf_shape,
        probe_cpu,
        write_synthetic_gguf,
    )
    from planner.capacity.prediction import predict_from_profile, probe_for
    from runtime.engine.llama import Model, quantize_model

    real = Model(smol_path, n_gpu_layers=0)
    shape = gguf_shape(smol_path)
    assert (shape.layers, shape.hidden, shape.n_head_kv) == (
        real.n_layer,
        real.n_embd,
        real.n_head_kv,
    )
    f16, q = tmp_path / "f16.gguf", tmp_path / "q.gguf"
    write_synthetic_gguf(f16, replace(shape, layers=3), smol_path, seed=0)
    quantize_model(f16, q, gguf_file_type(smol_path))
    assert gguf_file_type(q) == gguf_file_type(smol_path)
    copy = Model(q, n_gpu_layers=0)
    assert (copy.n_layer, copy.n_embd, copy.n_head_kv, copy.n_vocab) == (
        3,
        real.n_embd,
        real.n_head_kv,
        real.n_vocab,
    )
    assert real.chat_template() and copy.chat_template() == real.chat_template()  # chat prompts
    copy.close()
    real.close()
    steps: list[str] = []
    costs = probe_cpu(smol_path, depths=(1, 4), on_step=steps.append)
    assert len(steps) == 2 and [p.layers for p in costs.points] == [1, 4]
    assert all(p.s_per_token > 0 for p in costs.points) and costs.layer_s > 0
    res = predict_from_profile(small_profile, load_catalog(), probe=costs)
    assert res["probed_decode_tok_s"] > 0 and "probed_error_pct" in res
    moved = small_profile.model_copy(
        update={"fingerprint": {**small_profile.fingerprint, "cpu_model": "another CPU"}}
    )
    with pytest.raises(UsageError, match="measured on another CPU"):
        probe_for(moved)
