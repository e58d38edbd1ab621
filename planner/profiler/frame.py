"""Profiles as pandas DataFrames, for the planner and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.profiler.schema import Profile
from planner.quality.decoding import Decoding

if TYPE_CHECKING:
    import pandas as pd


def profile_frame(profile: Profile) -> pd.DataFrame:
    """One row per configuration: the ratios to plain and the raw figures, units in names."""
    import pandas as pd

    rows = []
    for c in profile.configs:
        rows.append(
            {
                "config": c.name,
                "strategy": c.strategy,
                "decoding": Decoding.of_run(c.model_dump()).label,
                "verifier": c.verifier,
                "head": c.head,
                "memory_ratio": c.memory_ratio,
                "compute_ratio": c.compute_ratio,
                "decode_ratio": c.decode_ratio,
                "slowdown_pct": round(100 * (1 - c.decode_ratio), 1),
                "energy_ratio": c.energy_ratio,
                "peak_gb": c.memory.peak_gb,
                "steady_gb": c.memory.steady_gb,
                "main_weights_gb": c.memory.main_weights_gb,
                "verifier_weights_gb": c.memory.verifier_weights_gb,
                "kv_cache_gb": c.memory.kv_cache_gb,
                "decode_tok_s": c.decode.tok_s.median,
                "decode_spread_pct": c.decode.tok_s.spread_pct,
                "ttft_s": c.decode.ttft_s.median,
                "forward_per_emitted": c.compute.forward_per_emitted,
                "main_forward_per_emitted": c.compute.main_forward_per_emitted,
                "verifier_forward_per_emitted": c.compute.verifier_forward_per_emitted,
                "gflops_per_emitted": c.compute.gflops_per_emitted,
                "energy_j_per_token": c.energy.j_per_token.median,
                "energy_is_estimate": c.energy.is_estimate,
                "rollbacks_per_100": c.backtracking.rollbacks_per_100,
                "rejected_per_100": c.backtracking.rejected_per_100,
                "verifier_calls_per_100": c.backtracking.verifier_calls_per_100,
                "model": profile.model.name,
            }
        )
    return pd.DataFrame(rows).set_index("config")
