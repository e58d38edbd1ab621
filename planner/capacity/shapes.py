"""Turn catalogue entries into the roofline's plain inputs."""

from __future__ import annotations

from hardware_catalog import Gpu, ModelEntry
from planner.capacity.roofline import Device, ModelShape
from runtime.errors import UsageError

#: Bits per weight of common GGUF quantisations (llama.cpp's own figures), for models whose
#: file size at that quantisation is not in the catalogue.
BITS_PER_WEIGHT = {
    "Q4_0": 4.5,
    "Q4_1": 5.0,
    "Q4_K_M": 4.85,
    "Q5_K_M": 5.69,
    "Q6_K": 6.56,
    "Q8_0": 8.5,
    "F16": 16.0,
    "BF16": 16.0,
}


def device_from_gpu(gpu: Gpu) -> Device:
    return Device(
        name=gpu.name,
        vendor=gpu.vendor,
        kind=gpu.kind,
        memory_gb=gpu.gpu_memory_gb,
        bandwidth_gb_s=gpu.memory_bandwidth_gb_s,
        fp16_tflops=gpu.fp16_dense_tflops,
        board_power_w=gpu.board_power_w,
        idle_power_w=gpu.idle_power_w,
        compute_units=gpu.compute_units,
        clock_ghz=gpu.boost_clock_ghz,
    )


def shape_from_entry(entry: ModelEntry, quant: str) -> ModelShape:
    size = entry.gguf_bytes.get(quant)  # type: ignore[call-overload]
    if size is None:
        bits = BITS_PER_WEIGHT.get(quant.upper())
        if bits is None:
            raise UsageError(
                f"unknown quantisation {quant!r}; use one of " + ", ".join(BITS_PER_WEIGHT)
            )
        size = entry.params_b * 1e9 * bits / 8
    return ModelShape(
        name=entry.id,
        params_b=entry.params_b,
        n_layers=entry.n_layers,
        file_bytes=float(size),
        kv_bytes_per_token=entry.kv_bytes_per_token(),
        vocab_size=entry.vocab_size,
        hidden_size=entry.hidden_size,
        tied_embeddings=entry.tied_embeddings,
        quant=quant,
    )


def shape_from_params(params_b: float, quant: str, like: ModelEntry) -> ModelShape:
    """A model of ``params_b`` billion parameters shaped like the closest catalogued one."""
    bits = BITS_PER_WEIGHT.get(quant.upper())
    if bits is None:
        raise UsageError(
            f"unknown quantisation {quant!r}; use one of " + ", ".join(BITS_PER_WEIGHT)
        )
    scale = params_b / like.params_b
    return ModelShape(
        name=f"{params_b:g}B",
        params_b=params_b,
        n_layers=like.n_layers,
        file_bytes=params_b * 1e9 * bits / 8,
        kv_bytes_per_token=like.kv_bytes_per_token() * scale**0.5,
        vocab_size=like.vocab_size,
        hidden_size=like.hidden_size,
        tied_embeddings=like.tied_embeddings,
        quant=quant,
    )
