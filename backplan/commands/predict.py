"""``backplan predict``: predicted speed, memory and watts of one model on one GPU."""

from __future__ import annotations

import json
from pathlib import Path

import click

from backplan.options import catalog_option


@click.command()
@click.option(
    "--gpu",
    default=None,
    help="GPU id, name or alias (case-insensitive, exact; near misses are refused with "
    "suggestions).",
)
@click.option(
    "--local",
    "local_profile",
    type=click.Path(dir_okay=False),
    default=None,
    help="Instead of a GPU: predict this machine's plain decode speed from the "
    "CPU figures measured with PROFILE, and compare with PROFILE's measurement.",
)
@click.option(
    "--calibrate",
    "calibration_profiles",
    type=click.Path(dir_okay=False),
    multiple=True,
    help="With --local: profiles of other models measured on this machine; the CPU factors "
    "are fitted on them and the prediction is repeated (repeatable).",
)
@click.option(
    "--probe",
    is_flag=True,
    help="With --local: also time llama.cpp here on random-weight clones of the profiled "
    "model's shape and file type (at half and full depth; seconds to minutes).",
)
@click.option("--model", default=None, help="Catalogue model (e.g. qwen2.5-coder-7b).")
@click.option(
    "--params",
    "params_b",
    type=float,
    default=None,
    help="Or: billions of parameters (shaped like the closest catalogued model).",
)
@click.option("--quant", default="Q4_K_M", show_default=True)
@click.option(
    "--verifier",
    default="none",
    show_default=True,
    help="A verifier spec, as backplan plan reads it: none, latent, model:self (an "
    "equal-size verifier model), syntax+examples=8, ..., with its decoding after '@' "
    "(default threshold: syntax+examples=8 @regenerate-a8); its counts per token come from "
    "the measured runs where there are some.",
)
@click.option(
    "--count",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="GPUs (layers split across them).",
)
@click.option(
    "--context",
    type=click.IntRange(0, 131072),
    default=64,
    show_default=True,
    help="Context position for decode (llama-bench tg128 averages ~64).",
)
@catalog_option
@click.option("--json", "as_json", is_flag=True)
def predict(
    gpu: str | None,
    local_profile: str | None,
    calibration_profiles: tuple[str, ...],
    probe: bool,
    model: str | None,
    params_b: float | None,
    quant: str,
    verifier: str,
    count: int,
    context: int,
    catalog_dir: Path | None,
    as_json: bool,
) -> None:
    """Predict batch-1 decode tok/s, prefill tok/s, memory GB and watts."""

    from hardware_catalog import find_gpu, find_model, load_catalog
    from planner.capacity.efficiency import efficiency_for
    from planner.capacity.roofline import memory_need, pass_terms, prefill_tok_s
    from planner.capacity.shapes import device_from_gpu, shape_from_entry, shape_from_params
    from planner.capacity.verifier import step_seconds
    from planner.recommend.costs import CostBook
    from planner.recommend.quality import read_measured, runs_files
    from planner.recommend.workload import PlannedVerifier
    from runtime.errors import UsageError
    from runtime.home import catalog_overlay
    from runtime.verifiers.registry import SELF

    if local_profile is None and (calibration_profiles or probe):
        raise UsageError("--calibrate and --probe work with --local PROFILE; add it or drop them")
    if params_b is not None and not 0.001 <= params_b <= 2000:  # NaN fails too
        raise UsageError(f"--params {params_b} is not a model size; give billions, 0.001-2000")
    catalog = load_catalog(catalog_dir or catalog_overlay())
    if local_profile is not None:
        from planner.capacity.prediction import predict_from_profile, probe_for
        from planner.profiler.schema import load_profile

        target = load_profile(local_profile)
        costs = None
        if probe:
            from rich.console import Console

            console = Console(stderr=True)
            with console.status("probing llama.cpp on random-weight clones") as status:
                costs = probe_for(target, on_step=status.update)
        res = predict_from_profile(
            target, catalog, [load_profile(p) for p in calibration_profiles], costs
        )
        if as_json:
            click.echo(json.dumps(res, indent=2))
        else:
            click.echo(
                f"this machine ({res['cpu']}): {res['model']} plain decode predicted "
                f"{res['predicted_decode_tok_s']} tok/s, measured "
                f"{res['measured_decode_tok_s']} tok/s: error {res['error_pct']:+.1f}% "
                f"(bandwidth {res['bandwidth_gb_s']} GB/s, "
                f"{res['fp32_tflops'] * 1000:.0f} GFLOP/s fp32, measured with the profile)"
            )
            if "calibrated_decode_tok_s" in res:
                click.echo(
                    f"calibrated on {', '.join(res['calibrated_on'])} (bandwidth efficiency "
                    f"{res['calibrated_bandwidth_efficiency']:.2f}, "
                    f"{res['calibrated_layer_overhead_us']:.0f} us per layer): predicted "
                    f"{res['calibrated_decode_tok_s']} tok/s, error "
                    f"{res['calibrated_error_pct']:+.1f}%"
                )
            if "probed_decode_tok_s" in res:
                depths = " and ".join(map(str, res["probed_depths"]))
                click.echo(
                    f"probed (llama.cpp here on random-weight clones of its shape, {depths} "
                    f"layers: {res['probed_layer_ms']} ms per layer, weights at "
                    f"{res['probed_weight_stream_gb_s']} GB/s, {res['probed_fixed_ms']} ms "
                    f"fixed): {res['probed_decode_tok_s']} tok/s, "
                    f"{res['probed_error_pct']:+.1f}% from the real model"
                )
        return
    if gpu is None:
        raise UsageError("give --gpu NAME (or --local PROFILE for this machine)")
    if (model is None) == (params_b is None):
        raise UsageError("give exactly one of --model NAME or --params N")
    row = PlannedVerifier.parse(verifier)
    spec = row.spec
    g = find_gpu(catalog, gpu)
    if model is not None:
        entry = find_model(catalog, model)
        shape = shape_from_entry(entry, quant)
    else:
        assert params_b is not None
        entry = min(catalog.models.values(), key=lambda m: abs(m.params_b - params_b))
        shape = shape_from_params(params_b, quant, entry)
    dev = device_from_gpu(g)
    eff = efficiency_for(g.vendor, g.kind)
    ver = None
    if spec.needs_second_model:
        name = spec.verifier_models[0]
        ver = shape if name == SELF else shape_from_entry(find_model(catalog, name), quant)
    book = CostBook(catalog, None, read_measured(runs_files()))
    cost = book.cost(spec, row.decoding, entry.id)
    verifier = spec.plan_key(entry.id)
    need = memory_need(shape, ver, eff, context=max(context, 1), sequences=1, devices=count)
    decode = 1.0 / step_seconds(dev, shape, ver, eff, cost, context=context)
    watts = count * (
        g.idle_power_w + (g.board_power_w - g.idle_power_w) * eff.active_power_fraction
    )
    decode_terms = pass_terms(dev, shape, eff, batch=1, context=context)
    prefill_terms = pass_terms(dev, shape, eff, batch=512, context=256)
    memory_parts = {
        "main_weights_gb": round(need.main_weights_gb, 3),
        "verifier_weights_gb": round(need.verifier_weights_gb, 3),
        "kv_cache_gb": round(need.kv_cache_gb, 3),
        "overhead_gb": round(need.overhead_gb, 3),
    }
    result = {
        "gpu": g.id,
        "gpu_name": g.name,
        "count": count,
        "model": shape.name,
        "quant": quant,
        "verifier": verifier,
        "verifier_cost_source": cost.source,
        "decode_tok_s": round(decode, 1),
        "prefill_tok_s": round(prefill_tok_s(dev, shape, eff), 1),
        "memory_gb": round(need.total_gb, 2),
        "fits": need.total_gb <= count * dev.memory_gb,
        "gpu_memory_gb": count * dev.memory_gb,
        "watts": round(watts, 0),
        "bound_by": {
            "decode_tok_s": decode_terms.binding,
            "prefill_tok_s": prefill_terms.binding,
            "memory_gb": max(memory_parts, key=lambda k: memory_parts[k]),
            "watts": f"board power x {eff.active_power_fraction} while decoding",
        },
        "terms": {
            "decode": decode_terms.as_ms(),
            "prefill_512": prefill_terms.as_ms(),
            "memory_gb": memory_parts,
        },
        "efficiency": eff.model_dump(),
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    fit = "fits" if result["fits"] else "DOES NOT FIT"
    click.echo(
        f"{count} x {g.name}, {shape.name} {quant}, verifier {verifier}:\n"
        f"  decode_tok_s   {result['decode_tok_s']}  (batch 1, context {context}; bound by "
        f"{decode_terms.binding}: weights {decode_terms.weights_s * 1e3:.2f} ms, fixed "
        f"{decode_terms.fixed_s * 1e3:.2f} ms per token)\n"
        f"  prefill_tok_s  {result['prefill_tok_s']}  (512-token prompt)\n"
        f"  memory_gb      {result['memory_gb']} of {result['gpu_memory_gb']:g} ({fit})\n"
        f"  watts          {result['watts']:g}  (decoding; board power x "
        f"{eff.active_power_fraction})"
    )
