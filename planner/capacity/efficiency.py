"""Efficiency factors of the roofline, with documented defaults and local calibration.

A roofline gives the best a device can do; llama.cpp reaches a fraction of it. The defaults
below come from how llama.cpp decodes and from published microbenchmarks, not from fitting a
results table (``benchmarks/roofline_validation.py`` checks them against published llama-bench
runs they were not fitted to). A batch-1 decode token costs

    t = bytes / min(BW x bandwidth, CUs x clock x cu_bytes_per_clock)     (weights, KV cache)
        + 2 x params x batch / (FP16 peak x compute)                      (added, or overlapped)
        + n_layers x layer_overhead                                       (fixed per pass)

- ``bandwidth``: the share of the datasheet DRAM bandwidth a read stream reaches when enough
  bytes are in flight. A streaming read kernel reaches 95-98% on GDDR parts and 87-96% on HBM2e
  (RRZE-HPC/gpu-benches, gpu-stream: L40 98%, A40 98%, A100-40GB 96%, H100 PCIe 95%,
  A100-80GB 87%); llama.cpp's mat-vec grids (one matrix row per 128-thread block, a few
  thousand blocks) lose another ~10% to the last partial wave of blocks: 0.85 on NVIDIA.
  AMD (ROCm/Vulkan) kernels are less tuned: 0.75. Apple GPUs reach about 70-75% of the
  advertised unified-memory bandwidth: 0.70. CPUs stream at about 60% of theoretical DRAM
  bandwidth with all cores busy: 0.60.
- ``cu_bytes_per_clock``: the weight bytes one SM (NVIDIA) or CU (AMD) streams per clock in
  llama.cpp's batch-1 mat-vec kernels, by Little's law: bytes in flight per SM / memory
  latency in clocks. ``ggml-cuda/mmvq.cu`` launches 128-thread blocks that each read about 9 B
  of quantised weights per thread per loop iteration and finish a 4096-wide row in two
  iterations; about 12 blocks are resident per SM (40 registers per thread), so about 13.8 KB
  are in flight per SM while a block is loading, and a block spends about half its short life
  loading (the rest is its reduction, launch and retirement): ~6.9 KB on average. A DRAM load
  under that load takes ~1,400 clocks (RRZE gpu-stream at full occupancy: A100-80GB 996 ns at
  1.41 GHz; GH200 779 ns at 1.98 GHz = 1,540 clocks; L40 443 ns at 2.49 GHz = 1,100 clocks).
  6.9 KB / 1,400 clocks = 4.9 B per clock per SM. This is the term that makes HBM parts slow
  at batch 1: an A100's 108 SMs at 1.41 GHz stream ~750 GB/s of its 1,935-2,039 GB/s, while a
  GDDR card's SMs outrun its DRAM, so bandwidth binds there (NVIDIA's own reading, llama.cpp
  issue #9817: the mat-vec kernels' "memory throughput ... is already a high percentage of
  peak on GDDR GPUs, [with] large room for improvement on HBM GPUs"). None on Apple GPUs and
  CPUs (no such cap observed; their own terms below).
- ``compute``: the share of dense FP16 peak a prefill (or a batch of sequences) reaches.
  Quantised matrix multiplication dequantises on the fly: 0.35 on GPUs, 0.50 of a measured or
  documented FP32 figure on CPUs. ``compute_overlaps_memory``: on GPUs a batch's dequantise
  and multiply follow its loads inside each short block, so the compute time adds to the
  memory time (a batch-32 decode on a DGX Spark takes the sum, not the larger, of the two:
  ``benchmarks/results/concurrency_validation.md``); on CPUs each core's loads and FMAs
  pipeline in one loop, so the larger of the two counts.
- ``layer_overhead_us``: fixed time per layer per forward pass that no roofline sees. On CUDA it
  is kernels per layer x time per dependent kernel: a llama layer's decode graph is about 21
  kernels (2 RMS norms, an activation quantisation before each of the 4 distinct matrix
  inputs, 7 mat-vecs, 2 RoPE, 2 KV-cache writes, flash attention, SwiGLU, 2 residual adds;
  counted in ggml-cuda), and a dependent kernel in a CUDA graph costs about 1.3 us (RRZE
  gpu-small-kernels with a graph: A100-80GB 1.34 us, H200 1.26 us; Hazy Research, "No
  bubbles", 2025: ~1.3 us per kernel on an H100 with CUDA graphs): 21 x 1.3 = 27 us. ROCm
  without HIP graphs pays a stream launch per kernel, ~2.5 us (RRZE without a graph:
  A100 2.56 us, H200 2.43 us): 21 x 2.5 = 52 us. CPU thread barriers between about 15
  operations per layer: 30 us. Apple GPUs: llama.cpp's Metal backend dispatches each of a
  llama layer's operations as its own kernel, about 16 per decode step (norms fused with their
  multiply; counted in ggml-metal's ops, 14 by another count), and a dependent Metal dispatch
  costs 5-10 us of GPU time (5.2 us measured on an M2 Pro, antonellof/ferrox#149; about 10 us
  per encoder, philipturner/metal-flash-attention#18). The middle of that range, 16 x 7.5 us:
  120 us. This term is why a small model on an M1/M2 Ultra decodes far below what its
  800 GB/s suggest: at 1B parameters it is most of the token's time. (The ends of the range,
  80 and 160 us: ``benchmarks/results/roofline_validation.md`` shows the sensitivity.)
- ``runtime_overhead_gb``: memory beyond weights and KV cache: the CUDA/ROCm context and
  llama.cpp's compute buffers, per device: 0.6 GB (0.3 GB on Apple and CPUs).
- ``active_power_fraction``: the share of board power drawn while decoding. Batch-1 decode is
  memory-bound and leaves most ALUs idle: 0.6 of TBP; prefill or large batches: 0.9.

Not modelled (a finding of the validation, not a term): llama.cpp builds before mid-2024 had
no CUDA graphs and fewer fused kernels, so old records decode 15-40% slower than today's
builds predict; the validation lists them with their build dates.

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
    cu_bytes_per_clock: float | None = Field(
        default=None,
        gt=0,
        description="Weight bytes one SM/CU streams per clock in batch-1 mat-vec kernels "
        "(None: no such cap).",
    )
    compute_overlaps_memory: bool = Field(
        False, description="True: a pass takes the larger of memory and compute time; False: both."
    )
    layer_overhead_us: float = Field(ge=0, description="Fixed microseconds per layer per pass.")
    runtime_overhead_gb: float = Field(ge=0, description="Memory beyond weights and KV cache.")
    active_power_fraction: float = Field(gt=0, le=1, description="Board power share, decoding.")
    source: str = Field("documented default", description="Where these figures come from.")


DEFAULTS: dict[DeviceClass, Efficiency] = {
    "nvidia": Efficiency(
        bandwidth=0.85,
        cu_bytes_per_clock=4.9,
        compute=0.35,
        layer_overhead_us=21 * 1.3,
        runtime_overhead_gb=0.6,
        active_power_fraction=0.6,
    ),
    "amd": Efficiency(
        bandwidth=0.75,
        cu_bytes_per_clock=4.9,
        compute=0.30,
        layer_overhead_us=21 * 2.5,
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
        compute_overlaps_memory=True,
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
