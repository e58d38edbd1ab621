"""The machine at hand as a roofline device: quick measurements of its CPU, then a prediction
to hold against a profile measured on it.

Bandwidth: several threads each sum their own slice of a large array (numpy releases the GIL
while summing), so the figure is what all cores together stream from memory. Compute: a
float32 matrix product through numpy's BLAS on all cores. Both are medians of a few runs; the
roofline's CPU efficiency factors (planner/capacity/efficiency.py) are applied on top, as for
any other device.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.capacity.efficiency import DEFAULTS, Efficiency
from planner.capacity.roofline import GB, Device, ModelShape, decode_tok_s


@dataclass(frozen=True)
class LocalMeasurement:
    bandwidth_gb_s: float
    fp32_tflops: float
    threads: int


def _sum_after(barrier: threading.Barrier, part: np.ndarray) -> None:
    barrier.wait()
    float(part.sum())


def measure_bandwidth_gb_s(threads: int, size_mb: int = 512, repeats: int = 5) -> float:
    arr = np.ones(size_mb * 2**20 // 8, dtype=np.float64)
    parts = np.array_split(arr, threads)
    results = []
    for _ in range(repeats):
        barrier = threading.Barrier(threads + 1)

        pool = [threading.Thread(target=_sum_after, args=(barrier, p)) for p in parts]
        for t in pool:
            t.start()
        t0 = time.perf_counter()
        barrier.wait()
        for t in pool:
            t.join()
        results.append(arr.nbytes / (time.perf_counter() - t0) / 1e9)
    return statistics.median(results)


def measure_fp32_tflops(n: int = 1024, repeats: int = 5) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b  # warm up (BLAS threads, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e12


def measure_local(threads: int | None = None) -> LocalMeasurement:
    threads = threads or os.cpu_count() or 1
    return LocalMeasurement(
        bandwidth_gb_s=measure_bandwidth_gb_s(threads),
        fp32_tflops=measure_fp32_tflops(),
        threads=threads,
    )


def local_device(m: LocalMeasurement, name: str = "this machine") -> Device:
    return Device(
        name=name,
        vendor="cpu",
        kind="cpu",
        memory_gb=1e9,
        bandwidth_gb_s=m.bandwidth_gb_s,
        fp16_tflops=m.fp32_tflops,
        board_power_w=0.0,
        idle_power_w=0.0,
    )


def predict_local(
    m: LocalMeasurement, shape: ModelShape, *, context: int = 64, eff: Efficiency | None = None
) -> float:
    return decode_tok_s(local_device(m), shape, eff or DEFAULTS["cpu"], context=context)


@dataclass(frozen=True)
class DecodePoint:
    """A plain batch-1 decode measured on this machine: the model, its context, its speed."""

    shape: ModelShape
    context: int
    decode_tok_s: float


def calibrate_cpu(
    m: LocalMeasurement, points: Sequence[DecodePoint], base: Efficiency | None = None
) -> Efficiency:
    """CPU efficiency factors from decodes measured here on *other* models.

    Per token, t = bytes_read / (bandwidth x eff_bw) + n_layers x layer_overhead. With two or
    more models the two unknowns are fitted by least squares (small models separate the
    per-layer cost: barriers between a layer's ~25 graph operations, which no roofline sees;
    large ones the streaming rate); with one, the layer overhead keeps its default. The result
    predicts further models on this machine.
    """
    base = base or DEFAULTS["cpu"]
    if not points:
        return base
    bw = m.bandwidth_gb_s * GB
    rows = [
        (p.shape.bytes_read_per_pass + p.context * p.shape.kv_bytes_per_token, p.shape.n_layers)
        for p in points
    ]
    t = np.array([1.0 / p.decode_tok_s for p in points])
    overhead_s = base.layer_overhead_us * 1e-6
    if len({layers for _, layers in rows}) > 1 and len(points) >= 2:
        a = np.array([[b, layers] for b, layers in rows], dtype=np.float64)
        (per_byte, per_layer), *_ = np.linalg.lstsq(a, t, rcond=None)
        if per_layer >= 0 and per_byte > 0:
            overhead_s = float(per_layer)
        else:
            per_byte = None
    else:
        per_byte = None
    if per_byte is None:  # one model (or a degenerate fit): only the streaming rate
        rates = [(ti - layers * overhead_s) / b for (b, layers), ti in zip(rows, t, strict=True)]
        per_byte = float(np.mean(rates))
    eff_bw = min(1.0, max(1e-3, 1.0 / (float(per_byte) * bw)))
    names = ", ".join(p.shape.name for p in points)
    return base.model_copy(
        update={
            "bandwidth": round(eff_bw, 4),
            "layer_overhead_us": round(overhead_s * 1e6, 1),
            "source": f"calibrated on this machine from plain decodes of {names}",
        }
    )
