"""Predict the profiled machine's own decode speed, to check the roofline against a profile."""

from __future__ import annotations

from typing import Any

from hardware_catalog import Catalog, find_model
from planner.capacity.local import LocalMeasurement, predict_local
from planner.capacity.roofline import ModelShape
from planner.profiler.schema import Profile
from runtime.errors import UsageError


def predict_from_profile(profile: Profile, catalog: Catalog) -> dict[str, Any]:
    """Plain batch-1 decode tok/s predicted from the CPU figures measured with the profile."""
    local = profile.fingerprint.get("local_measurement")
    if not local:
        raise UsageError(
            "this profile has no CPU measurement (made by an older backplan); "
            "re-run `backplan profile`"
        )
    entry = find_model(catalog, profile.model.name)
    shape = ModelShape(
        name=entry.id,
        params_b=profile.model.n_params / 1e9,
        n_layers=profile.model.n_layer,
        file_bytes=profile.model.size_bytes,
        kv_bytes_per_token=entry.kv_bytes_per_token(),
        vocab_size=entry.vocab_size,
        hidden_size=entry.hidden_size,
        tied_embeddings=entry.tied_embeddings,
    )
    m = LocalMeasurement(
        bandwidth_gb_s=local["bandwidth_gb_s"],
        fp32_tflops=local["fp32_tflops"],
        threads=local["threads"],
    )
    context = profile.settings.max_tokens // 2 + 40
    predicted = predict_local(m, shape, context=context)
    measured = profile.config("plain").decode.decode_only_tok_s.median
    return {
        "cpu": profile.fingerprint.get("cpu_model"),
        "model": profile.model.name,
        "bandwidth_gb_s": m.bandwidth_gb_s,
        "fp32_tflops": m.fp32_tflops,
        "predicted_decode_tok_s": round(predicted, 1),
        "measured_decode_tok_s": round(measured, 1),
        "error_pct": round(100 * (predicted / measured - 1), 1),
    }
