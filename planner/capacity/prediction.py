"""Predict the profiled machine's own decode speed, to check the roofline against a profile."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hardware_catalog import Catalog, find_model
from planner.capacity.cpu_probe import ProbeCosts, probe_cpu
from planner.capacity.local import DecodePoint, LocalMeasurement, calibrate_cpu, predict_local
from planner.capacity.roofline import ModelShape
from planner.profiler.schema import Profile
from runtime.errors import UsageError


def _measurement(profile: Profile) -> LocalMeasurement:
    local = profile.fingerprint.get("local_measurement")
    if not local:
        raise UsageError(
            "this profile has no CPU measurement (made by an older backplan); "
            "re-run `backplan profile`"
        )
    return LocalMeasurement(
        bandwidth_gb_s=local["bandwidth_gb_s"],
        fp32_tflops=local["fp32_tflops"],
        threads=local["threads"],
    )


def _shape(profile: Profile, catalog: Catalog) -> ModelShape:
    entry = find_model(catalog, profile.model.name)
    return ModelShape(
        name=entry.id,
        params_b=profile.model.n_params / 1e9,
        n_layers=profile.model.n_layer,
        file_bytes=profile.model.size_bytes,
        kv_bytes_per_token=entry.kv_bytes_per_token(),
        vocab_size=entry.vocab_size,
        hidden_size=entry.hidden_size,
        tied_embeddings=entry.tied_embeddings,
    )


def _point(profile: Profile, catalog: Catalog) -> DecodePoint:
    return DecodePoint(
        shape=_shape(profile, catalog),
        context=profile.settings.max_tokens // 2 + 40,
        decode_tok_s=profile.config("plain").decode.decode_only_tok_s.median,
    )


def probe_for(profile: Profile, **kwargs: Any) -> ProbeCosts:
    """Run the llama.cpp probe (:mod:`planner.capacity.cpu_probe`) on random-weight clones of
    ``profile``'s model shape, with its file type and thread count; on this machine, which
    must be the profile's."""
    from planner.profiler.fingerprint import cpu_model

    here = cpu_model()
    if here != profile.fingerprint.get("cpu_model"):
        raise UsageError(
            f"the {profile.model.name} profile was measured on another CPU "
            f"({profile.fingerprint.get('cpu_model')}, this one is {here}); "
            "probe on the machine that made the profile"
        )
    path = Path(profile.model.path)
    if not path.is_file():
        raise UsageError(
            f"the profiled model file {path} is not here; fetch it with "
            f"`backplan models fetch {profile.model.name}`"
        )
    return probe_cpu(path, threads=profile.settings.n_threads or None, **kwargs)


def predict_from_profile(
    profile: Profile,
    catalog: Catalog,
    calibration: Sequence[Profile] = (),
    probe: ProbeCosts | None = None,
) -> dict[str, Any]:
    """Plain batch-1 decode tok/s predicted from the CPU figures measured with the profile:
    with the documented CPU factors; (given profiles of *other* models measured on the same
    machine) with factors calibrated on those; and (given a probe of this CPU) from llama.cpp's
    decode times of random-weight clones of the model's shape."""
    m = _measurement(profile)
    target = _point(profile, catalog)
    measured = target.decode_tok_s
    predicted = predict_local(m, target.shape, context=target.context)
    out: dict[str, Any] = {
        "cpu": profile.fingerprint.get("cpu_model"),
        "model": profile.model.name,
        "bandwidth_gb_s": m.bandwidth_gb_s,
        "fp32_tflops": m.fp32_tflops,
        "predicted_decode_tok_s": round(predicted, 1),
        "measured_decode_tok_s": round(measured, 1),
        "error_pct": round(100 * (predicted / measured - 1), 1),
    }
    if calibration:
        for other in calibration:
            if other.model.sha256 == profile.model.sha256:
                raise UsageError(
                    f"{profile.model.name} is both predicted and used for calibration; "
                    "calibrate on profiles of other models"
                )
            if other.fingerprint.get("cpu_model") != profile.fingerprint.get("cpu_model"):
                raise UsageError(
                    f"the {other.model.name} profile was measured on another CPU; calibrate "
                    "with profiles from this machine"
                )
        eff = calibrate_cpu(m, [_point(p, catalog) for p in calibration])
        calibrated = predict_local(m, target.shape, context=target.context, eff=eff)
        out |= {
            "calibrated_on": [p.model.name for p in calibration],
            "calibrated_bandwidth_efficiency": eff.bandwidth,
            "calibrated_layer_overhead_us": eff.layer_overhead_us,
            "calibrated_decode_tok_s": round(calibrated, 1),
            "calibrated_error_pct": round(100 * (calibrated / measured - 1), 1),
        }
    if probe is not None:
        probed = probe.decode_tok_s(profile.model.n_layer)
        out |= {
            "probed_depths": [pt.layers for pt in probe.points],
            "probed_weight_stream_gb_s": round(probe.weight_stream_gb_s, 2),
            "probed_layer_ms": round(probe.layer_s * 1e3, 3),
            "probed_fixed_ms": round(probe.fixed_s * 1e3, 3),
            "probed_decode_tok_s": round(probed, 1),
            "probed_error_pct": round(100 * (probed / measured - 1), 1),
        }
    return out
