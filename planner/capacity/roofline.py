"""Memory fit and speed from a roofline: decode is bound by memory bandwidth, prefill by FLOPs.

Per forward pass over a batch of ``b`` tokens (``b`` = 1 for a batch-1 decode), four terms
(:class:`PassTerms`; the factors and their sources are in :mod:`planner.capacity.efficiency`):

    weights = weight_bytes / stream_rate
    kv      = b x context x kv_bytes_per_token / stream_rate
    compute = 2 x params x (b - 1) / (fp16_peak x eff_compute)
    fixed   = n_layers x layer_overhead
    t = weights + kv + compute + fixed   (GPUs; CPUs: max(weights + kv, compute) + fixed,
                                          with the compute of all b tokens)

(on a GPU a batch-1 mat-vec's arithmetic is part of the weight stream; each further sequence
of a batch adds its multiply-adds after its loads, inside the same short blocks).

where ``weight_bytes`` is the weights a pass streams (the GGUF file less an untied input
embedding table, of which one row is read) and ``stream_rate`` is the lower of the DRAM
bandwidth x eff_bw and what the SMs/CUs can stream (compute units x clock x bytes per clock).
Several GPUs split a model by layers (llama.cpp's default): a pass visits them in turn, so
batch-1 speed is that of one device holding all layers; more throughput comes from replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.capacity.efficiency import Efficiency

GB = 1e9


@dataclass(frozen=True)
class Device:
    """One accelerator (or a CPU host, or a unified-memory system)."""

    name: str
    vendor: str
    kind: str
    memory_gb: float
    bandwidth_gb_s: float
    fp16_tflops: float
    board_power_w: float
    idle_power_w: float
    compute_units: int | None = None  # SMs (NVIDIA), CUs (AMD); None where not modelled
    clock_ghz: float | None = None  # boost clock of those units


def stream_rate(dev: Device, eff: Efficiency) -> tuple[float, str]:
    """(bytes/s a decode streams weights at, which ceiling binds: "bandwidth" or "compute
    units")."""
    dram = dev.bandwidth_gb_s * GB * eff.bandwidth
    if eff.cu_bytes_per_clock and dev.compute_units and dev.clock_ghz:
        units = dev.compute_units * dev.clock_ghz * 1e9 * eff.cu_bytes_per_clock
        if units < dram:
            return units, "compute units"
    return dram, "bandwidth"


@dataclass(frozen=True)
class PassTerms:
    """Seconds of one forward pass, term by term, and which term binds."""

    weights_s: float
    kv_s: float
    compute_s: float
    fixed_s: float
    stream_bound: str  # "bandwidth" or "compute units": what limits the weights' stream
    overlapped: bool  # compute overlaps memory (the larger counts) or adds to it

    @property
    def seconds(self) -> float:
        memory = self.weights_s + self.kv_s
        if self.overlapped:
            return max(memory, self.compute_s) + self.fixed_s
        return memory + self.compute_s + self.fixed_s

    @property
    def binding(self) -> str:
        """The largest term: "bandwidth" or "compute units" (streaming weights and KV cache),
        "compute" (FLOPs) or "fixed per-layer cost"."""
        terms = {
            self.stream_bound: self.weights_s + self.kv_s,
            "compute": self.compute_s,
            "fixed per-layer cost": self.fixed_s,
        }
        return max(terms, key=lambda k: terms[k])

    def as_ms(self) -> dict[str, float | str]:
        return {
            "weights_ms": round(self.weights_s * 1e3, 3),
            "kv_cache_ms": round(self.kv_s * 1e3, 3),
            "compute_ms": round(self.compute_s * 1e3, 3),
            "fixed_ms": round(self.fixed_s * 1e3, 3),
            "total_ms": round(self.seconds * 1e3, 3),
            "weights_stream_bound_by": self.stream_bound,
            "bound_by": self.binding,
        }


@dataclass(frozen=True)
class ModelShape:
    """What memory and speed need to know about a model at one quantisation."""

    name: str
    params_b: float
    n_layers: int
    file_bytes: float
    kv_bytes_per_token: float
    vocab_size: int
    hidden_size: int
    tied_embeddings: bool
    quant: str = "Q4_K_M"

    @property
    def bytes_per_param(self) -> float:
        return self.file_bytes / (self.params_b * 1e9)

    @property
    def bytes_read_per_pass(self) -> float:
        """Weights streamed per forward pass: all but an untied input embedding table."""
        if self.tied_embeddings:
            return self.file_bytes
        embedding = self.vocab_size * self.hidden_size * self.bytes_per_param
        return max(self.file_bytes - embedding, 0.3 * self.file_bytes)


def pass_terms(
    dev: Device, model: ModelShape, eff: Efficiency, *, batch: int = 1, context: int = 0
) -> PassTerms:
    """The terms of one forward pass over ``batch`` new tokens, each attending ``context``."""
    rate, bound = stream_rate(dev, eff)
    # Where compute adds to memory time (GPUs), a batch-1 mat-vec's arithmetic is part of the
    # stream (the compute-unit ceiling of stream_rate); each further sequence adds its FLOPs.
    charged = batch if eff.compute_overlaps_memory else batch - 1
    flops = 2.0 * model.params_b * 1e9 * charged
    return PassTerms(
        weights_s=model.bytes_read_per_pass / rate,
        kv_s=batch * context * model.kv_bytes_per_token / (dev.bandwidth_gb_s * GB * eff.bandwidth),
        compute_s=flops / (dev.fp16_tflops * 1e12 * eff.compute),
        fixed_s=model.n_layers * eff.layer_overhead_us * 1e-6,
        stream_bound=bound,
        overlapped=eff.compute_overlaps_memory,
    )


def pass_seconds(
    dev: Device, model: ModelShape, eff: Efficiency, *, batch: int = 1, context: int = 0
) -> float:
    """Time of one forward pass over ``batch`` new tokens, each attending ``context`` tokens."""
    return pass_terms(dev, model, eff, batch=batch, context=context).seconds


def decode_tok_s(dev: Device, model: ModelShape, eff: Efficiency, *, context: int = 0) -> float:
    """Batch-1 decode tokens/s at ``context`` tokens of history (llama-bench tg128 ~ 64)."""
    return 1.0 / pass_seconds(dev, model, eff, batch=1, context=context)


def prefill_tok_s(dev: Device, model: ModelShape, eff: Efficiency, *, n_prompt: int = 512) -> float:
    """Prompt tokens/s for a prompt of ``n_prompt`` tokens evaluated in one batch."""
    return n_prompt / pass_seconds(dev, model, eff, batch=n_prompt, context=n_prompt // 2)


def aggregate_tok_s(
    dev: Device, model: ModelShape, eff: Efficiency, *, concurrency: int, context: int
) -> tuple[float, float]:
    """(aggregate tok/s, per-sequence tok/s) with ``concurrency`` sequences decoded together."""
    t = pass_seconds(dev, model, eff, batch=max(1, concurrency), context=context)
    return concurrency / t, 1.0 / t


@dataclass(frozen=True)
class MemoryNeed:
    """Memory of one replica, split the way a buyer reads it."""

    main_weights_gb: float
    verifier_weights_gb: float
    kv_cache_gb: float
    overhead_gb: float

    @property
    def total_gb(self) -> float:
        return self.main_weights_gb + self.verifier_weights_gb + self.kv_cache_gb + self.overhead_gb


def memory_need(
    main: ModelShape,
    verifier: ModelShape | None,
    eff: Efficiency,
    *,
    context: int,
    sequences: int,
    devices: int = 1,
) -> MemoryNeed:
    """Weights + KV caches at ``context`` x ``sequences`` + runtime overhead on ``devices``."""
    kv = main.kv_bytes_per_token * context * sequences
    vw = 0.0
    if verifier is not None:
        vw = verifier.file_bytes
        kv += verifier.kv_bytes_per_token * context * sequences
    return MemoryNeed(
        main_weights_gb=main.file_bytes / GB,
        verifier_weights_gb=vw / GB,
        kv_cache_gb=kv / GB,
        overhead_gb=eff.runtime_overhead_gb * devices,
    )


def devices_per_replica(
    dev: Device, need_one: MemoryNeed, eff: Efficiency, max_devices: int
) -> int | None:
    """Fewest devices that hold one replica (layers split evenly), or None if none do."""
    base = need_one.total_gb - need_one.overhead_gb
    for k in range(1, max_devices + 1):
        if base + eff.runtime_overhead_gb * k <= dev.memory_gb * k:
            return k
    return None


def replicas(count: int, per_replica: int) -> int:
    return max(0, math.floor(count / per_replica))
