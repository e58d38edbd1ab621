"""Memory fit and speed from a roofline: decode is bound by memory bandwidth, prefill by FLOPs.

Per forward pass over a batch of ``b`` tokens (``b`` = 1 for a batch-1 decode):

    t = max(bytes_read / (bandwidth x eff_bw), 2 x params x b / (fp16_peak x eff_compute))
        + n_layers x layer_overhead

where ``bytes_read`` is the weights a pass streams (the GGUF file less an untied input
embedding table, of which one row is read) plus the KV cache read at the current context.
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


def pass_seconds(
    dev: Device, model: ModelShape, eff: Efficiency, *, batch: int = 1, context: int = 0
) -> float:
    """Time of one forward pass over ``batch`` new tokens, each attending ``context`` tokens."""
    bytes_read = model.bytes_read_per_pass + batch * context * model.kv_bytes_per_token
    t_mem = bytes_read / (dev.bandwidth_gb_s * GB * eff.bandwidth)
    flops = 2.0 * model.params_b * 1e9 * batch
    t_compute = flops / (dev.fp16_tflops * 1e12 * eff.compute)
    return max(t_mem, t_compute) + model.n_layers * eff.layer_overhead_us * 1e-6


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
