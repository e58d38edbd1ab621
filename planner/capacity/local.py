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
from dataclasses import dataclass

import numpy as np

from planner.capacity.efficiency import DEFAULTS
from planner.capacity.roofline import Device, ModelShape, decode_tok_s


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


def predict_local(m: LocalMeasurement, shape: ModelShape, *, context: int = 64) -> float:
    return decode_tok_s(local_device(m), shape, DEFAULTS["cpu"], context=context)
