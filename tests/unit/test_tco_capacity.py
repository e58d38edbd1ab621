"""Planner arithmetic on hand-computed cases: TCO and the roofline."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.capacity.efficiency import Efficiency
from planner.capacity.roofline import (
    Device,
    ModelShape,
    decode_tok_s,
    devices_per_replica,
    memory_need,
    pass_seconds,
    pass_terms,
    stream_rate,
)
from planner.tco import TcoInputs, compute_tco


def test_tco_hand_computed() -> None:
    r = compute_tco(
        TcoInputs(
            capex_usd=10_000,
            years=4,
            active_power_w=500,
            idle_power_w=100,
            capacity_tok_s=100,
            demand_tok_per_day=4.32e6,
            price_per_kwh_usd=0.2,
            pue=1.5,
            carbon_g_per_kwh=300,
            ops_usd_per_year=1000,
        )
    )
    assert r.duty == pytest.approx(0.5)
    assert r.average_power_w == pytest.approx(300)
    assert r.energy_kwh_per_year == pytest.approx(300 * 8760 * 1.5 / 1000)  # 3942 kWh
    assert r.energy_per_year_usd == pytest.approx(788.4)
    assert r.annual_cost_usd == pytest.approx(2500 + 788.4 + 1000)
    assert r.cost_per_mtok_usd == pytest.approx(4288.4 / (4.32 * 365))
    assert r.energy_kwh_per_mtok == pytest.approx(500 * 1e4 / 3.6e6 * 1.5)  # 2.083 kWh
    assert r.carbon_g_per_mtok == pytest.approx(2.0833333 * 300, rel=1e-6)
    assert r.total_cost_usd == pytest.approx(4 * 4288.4)


def test_tco_demand_above_capacity_is_capped() -> None:
    r = compute_tco(
        TcoInputs(
            capex_usd=0,
            years=1,
            active_power_w=100,
            idle_power_w=10,
            capacity_tok_s=10,
            demand_tok_per_day=1e9,
            price_per_kwh_usd=0.1,
        )
    )
    assert r.duty == 1.0 and r.served_tok_per_day == pytest.approx(864_000)


EFF = Efficiency(
    bandwidth=0.5,
    compute=0.5,
    layer_overhead_us=10,
    runtime_overhead_gb=1,
    active_power_fraction=0.6,
)
DEV = Device(
    name="test",
    vendor="nvidia",
    kind="datacenter",
    memory_gb=24,
    bandwidth_gb_s=1000,
    fp16_tflops=100,
    board_power_w=300,
    idle_power_w=30,
)
MODEL = ModelShape(
    name="m",
    params_b=7,
    n_layers=32,
    file_bytes=4e9,
    kv_bytes_per_token=131072,
    vocab_size=32000,
    hidden_size=4096,
    tied_embeddings=True,
)


def test_decode_is_bandwidth_bound_hand_computed() -> None:
    # 4 GB at 1000 GB/s x 0.5 = 8 ms, + 32 layers x 10 us = 0.32 ms; compute 14 GFLOP at
    # 50 TFLOP/s = 0.28 ms (not binding)
    assert pass_seconds(DEV, MODEL, EFF) == pytest.approx(8.32e-3)
    assert decode_tok_s(DEV, MODEL, EFF) == pytest.approx(1 / 8.32e-3)
    # context adds KV reads: 1000 tokens x 131072 B = 0.131 GB -> +0.262 ms
    assert pass_seconds(DEV, MODEL, EFF, context=1000) == pytest.approx(8.32e-3 + 0.262144e-3)


def test_prefill_is_compute_bound_hand_computed() -> None:
    # 512 tokens on a GPU: the first token's arithmetic rides in the weight stream, the other
    # 511 add 2 x 7e9 x 511 = 7.154 TFLOP at 50 TFLOP/s = 143.08 ms to the 8 ms of weights
    t = pass_terms(DEV, MODEL, EFF, batch=512, context=0)
    assert t.compute_s == pytest.approx(2 * 7e9 * 511 / 50e12)
    assert t.seconds == pytest.approx(8e-3 + 2 * 7e9 * 511 / 50e12 + 0.32e-3)
    assert t.binding == "compute"


def test_cpu_overlaps_compute_with_memory_hand_computed() -> None:
    # a CPU pipelines loads and FMAs: the larger of the two counts, with all 512 tokens' FLOPs
    cpu = EFF.model_copy(update={"compute_overlaps_memory": True})
    t = pass_terms(DEV, MODEL, cpu, batch=512, context=0)
    assert t.seconds == pytest.approx(2 * 7e9 * 512 / 50e12 + 0.32e-3)


def test_compute_units_cap_the_weight_stream_hand_computed() -> None:
    # 108 SMs x 1.41 GHz x 4.9 B/clock = 746 GB/s < 1000 GB/s x 0.85: the SMs bind
    eff = EFF.model_copy(update={"bandwidth": 0.85, "cu_bytes_per_clock": 4.9})
    hbm = Device(**{**DEV.__dict__, "compute_units": 108, "clock_ghz": 1.41})
    rate, bound = stream_rate(hbm, eff)
    assert rate == pytest.approx(108 * 1.41e9 * 4.9) and bound == "compute units"
    t = pass_terms(hbm, MODEL, eff)
    assert t.weights_s == pytest.approx(4e9 / (108 * 1.41e9 * 4.9))
    assert t.binding == "compute units"
    # a card whose SMs outrun its DRAM is bandwidth-bound: 128 x 2.52 x 4.9 = 1581 GB/s > 850
    gddr = Device(**{**DEV.__dict__, "compute_units": 128, "clock_ghz": 2.52})
    assert stream_rate(gddr, eff) == (pytest.approx(850e9), "bandwidth")
    # without unit counts (Apple, CPUs) there is no such ceiling
    assert stream_rate(DEV, eff)[1] == "bandwidth"


def test_small_model_decode_is_bound_by_fixed_per_layer_cost() -> None:
    tiny = ModelShape(**{**MODEL.__dict__, "file_bytes": 1e8})  # 0.2 ms of weights
    terms = pass_terms(DEV, tiny, EFF.model_copy(update={"layer_overhead_us": 30}))
    assert terms.binding == "fixed per-layer cost"  # 32 x 30 us = 0.96 ms
    assert terms.as_ms()["bound_by"] == "fixed per-layer cost"


def test_untied_embeddings_are_not_streamed() -> None:
    shape = ModelShape(
        name="u",
        params_b=7,
        n_layers=32,
        file_bytes=7e9,
        kv_bytes_per_token=0,
        vocab_size=100_000,
        hidden_size=5000,
        tied_embeddings=False,
    )
    # embedding: 5e8 params x 1 byte/param = 0.5 GB not read per token
    assert shape.bytes_read_per_pass == pytest.approx(6.5e9)


def test_memory_fit_and_replicas() -> None:
    need = memory_need(MODEL, MODEL, EFF, context=4096, sequences=4)
    # weights 4 + 4 GB; KV 2 x 131072 x 4096 x 4 = 4.295 GB; overhead 1 GB
    assert need.main_weights_gb == pytest.approx(4.0)
    assert need.kv_cache_gb == pytest.approx(2 * 131072 * 4096 * 4 / 1e9)
    assert need.total_gb == pytest.approx(8 + 4.294967296 + 1)
    assert devices_per_replica(DEV, need, EFF, 4) == 1
    small = Device(**{**DEV.__dict__, "memory_gb": 8})
    assert devices_per_replica(small, need, EFF, 4) == 2  # 12.29 + 2 x 1 <= 16
    assert devices_per_replica(small, need, EFF, 1) is None


def _cpu_shape(name: str, file_gb: float, layers: int) -> ModelShape:
    return ModelShape(
        name=name,
        params_b=file_gb * 2,
        n_layers=layers,
        file_bytes=file_gb * 1e9,
        kv_bytes_per_token=0.0,
        vocab_size=1000,
        hidden_size=64,
        tied_embeddings=True,
    )


def test_cpu_calibration_recovers_streaming_rate_and_layer_overhead() -> None:
    """Decodes made by hand from 10 GB/s and 120 us per layer give those figures back."""
    from planner.capacity.local import DecodePoint, LocalMeasurement, calibrate_cpu

    m = LocalMeasurement(bandwidth_gb_s=20.0, fp32_tflops=0.3, threads=2)

    def point(shape: ModelShape) -> DecodePoint:
        t = shape.file_bytes / 10e9 + shape.n_layers * 120e-6
        return DecodePoint(shape=shape, context=0, decode_tok_s=1.0 / t)

    small, mid = _cpu_shape("small", 0.1, 30), _cpu_shape("mid", 0.5, 24)
    eff = calibrate_cpu(m, [point(small), point(mid)])
    assert eff.bandwidth == pytest.approx(0.5, rel=1e-3)  # 10 of 20 GB/s
    assert eff.layer_overhead_us == pytest.approx(120.0, abs=0.5)
    assert "small, mid" in eff.source
    one = calibrate_cpu(m, [point(mid)])  # one model: the overhead keeps its default (30 us)
    assert one.layer_overhead_us == 30.0
    t_mid = 1.0 / point(mid).decode_tok_s
    assert one.bandwidth == pytest.approx(0.5e9 / ((t_mid - 24 * 30e-6) * 20e9), rel=1e-3)


def test_cpu_probe_line_recovers_layer_and_fixed_costs() -> None:
    """Probe times made by hand from 2.5 ms per layer and 9 ms fixed give those back, and
    the model's own depth gives its prediction."""
    from planner.capacity.cpu_probe import ProbePoint, ProbeShape, fit_costs

    shape = ProbeShape(hidden=1536, ffn=8960, n_head=12, n_head_kv=2, layers=28)
    points = [ProbePoint(d, 100_000_000 + d * 30_000_000, 9e-3 + d * 2.5e-3) for d in (2, 6)]
    costs = fit_costs(points, shape, file_type=15, threads=2)
    assert costs.layer_s == pytest.approx(2.5e-3) and costs.fixed_s == pytest.approx(9e-3)
    assert costs.decode_tok_s() == pytest.approx(1.0 / (9e-3 + 28 * 2.5e-3))
    assert costs.layer_bytes == pytest.approx(30e6)
    assert costs.weight_stream_gb_s == pytest.approx(30e6 / 2.5e-3 / 1e9)  # 12 GB/s
    assert shape.head_dim == 128


def test_cpu_probe_refuses_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    from planner.capacity.cpu_probe import gguf_shape
    from runtime.errors import UsageError

    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 3)
    with pytest.raises(UsageError, match="not a readable GGUF file"):
        gguf_shape(bad)
