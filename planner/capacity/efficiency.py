"""Efficiency factors of the roofline, with documented defaults and local calibration.

A roofline gives the best a device can do; llama.cpp reaches a fraction of it. The defaults
below come from reasoning about how llama.cpp decodes, not from fitting a results table:

- ``bandwidth``: the share of the datasheet memory bandwidth a batch-1 decode streams the
  weights at. llama.cpp's mat-vec kernels on NVIDIA GPUs read quantised weights at 80-90% of
  peak in isolation; with dequantisation, norms and attention in between, 0.75 is taken.
  AMD (ROCm/Vulkan) kernels are less tuned: 0.65. Apple GPUs reach about 70-75% of the
  advertised unified-memory bandwidth: 0.70. CPUs stream at about 60% of theoretical DRAM
  bandwidth with all cores busy: 0.60.
- ``compute``: the share of dense FP16 peak a prefill (or a large batch) reaches. Quantised
  matrix multiplication dequantises on the fly: 0.35 on GPUs, 0.50 of a measured or
  documented FP32 figure on CPUs.
- ``layer_overhead_us``: fixed time per layer per forward pass that no roofline sees: kernel
  launches and synchronisation. About 5 kernels per layer at 4-5 us each on a discrete GPU
  (CUDA graphs hide part of it): 20 us; CPU thread barriers between about 15 operations per
  layer: 30 us. Apple GPUs: llama.cpp's Metal backend dispatches each of a llama layer's
  operations as its own kernel, about 16 per decode step (norms fused with their multiply;
  counted in ggml-metal's ops, 14 by another count), and a dependent Metal dispatch costs
  5-10 us of GPU time (5.2 us measured on an M2 Pro, antonellof/ferrox#149; about 10 us per
  encoder, philipturner/metal-flash-attention#18). The middle of that range, 16 x 7.5 us:
  120 us. This term is why a small model on an M1/M2 Ultra decodes far below what its
  800 GB/s suggest: at 1B parameters it is most of the token's time. (The ends of the range,
  80 and 160 us, put the held-out Apple records between -27% and +43%:
  ``benchmarks/results/roofline_validation.md`` shows the sensitivity.)
- ``runtime_overhead_gb``: memory beyond weights and KV cache: the CUDA/ROCm context and
  llama.cpp's compute buffers, per device: 0.6 GB (0.3 GB on Apple and CPUs).
- ``active_power_fraction``: the share of board power drawn while decoding. Batch-1 decode is
  memory-bound and leaves most ALUs idle: 0.6 of TBP; prefill or large batches: 0.9.

Local calibration (:func:`planner.capacity.local.calibrate_cpu`) replaces the CPU factors with
figures fitted on plain decodes of other models profiled on the machine at hand.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DeviceClass = Literal["nvidia", "amd", "apple", "intel", "cpu"]


class Efficiency(BaseModel):
    """Efficiency factors for one device class. All are fractions unless units say otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bandwidth: float = Field(gt=0, le=1, description="Share of peak memory bandwidth reached.")
    compute: float = Field(gt=0, le=1, description="Share of dense FP16 peak reached.")
    layer_overhead_us: float = Field(ge=0, description="Fixed microseconds per layer per pass.")
    runtime_overhead_gb: float = Field(ge=0, description="Memory beyond weights and KV cache.")
    active_power_fraction: float = Field(gt=0, le=1, description="Board power share, decoding.")
    source: str = Field("documented default", description="Where these figures come from.")


DEFAULTS: dict[DeviceClass, Efficiency] = {
    "nvidia": Efficiency(
        bandwidth=0.75,
        compute=0.35,
        layer_overhead_us=20.0,
        runtime_overhead_gb=0.6,
        active_power_fraction=0.6,
    ),
    "amd": Efficiency(
        bandwidth=0.65,
        compute=0.30,
        layer_overhead_us=25.0,
        runtime_overhead_gb=0.6,
        active_power_fraction=0.6,
    ),
    "intel": Efficiency(
        bandwidth=0.60,
        compute=0.30,
        layer_overhead_us=25.0,
        runtime_overhead_gb=0.6,
        active_power_fraction=0.6,
    ),
    "apple": Efficiency(
        bandwidth=0.70,
        compute=0.35,
        layer_overhead_us=120.0,
        runtime_overhead_gb=0.3,
        active_power_fraction=0.6,
    ),
    "cpu": Efficiency(
        bandwidth=0.60,
        compute=0.50,
        layer_overhead_us=30.0,
        runtime_overhead_gb=0.3,
        active_power_fraction=0.7,
    ),
}


def device_class(vendor: str, kind: str | None = None) -> DeviceClass:
    v = vendor.lower()
    if v == "apple" or (kind or "").startswith("apple"):
        return "apple"
    if v in ("nvidia", "amd", "intel"):
        return v  # type: ignore[return-value]
    return "cpu"


def efficiency_for(
    vendor: str, kind: str | None = None, overrides: dict[DeviceClass, Efficiency] | None = None
) -> Efficiency:
    cls = device_class(vendor, kind)
    if overrides and cls in overrides:
        return overrides[cls]
    return DEFAULTS[cls]
