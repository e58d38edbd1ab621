"""Prometheus metrics of one server (its own registry, so several apps may live in one process)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runtime.samplers.trace import Trace
from runtime.telemetry.meters import Meter

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_TOKS_BUCKETS = (1, 5, 10, 20, 40, 80, 160, 320, 640, 1280)


def resident_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unreadable)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class _EnergyCollector(Collector):
    """Energy since the meter was attached, read at each scrape; per generated token too.

    The source label says what was measured: ``nvml`` (the GPU's energy counter), ``rapl``
    (the CPU package, every process on it), or ``estimate`` (this process's CPU time x watts
    per core). Idle time is included: it is what serving costs.
    """

    def __init__(self, meter: Meter, generated: Callable[[], int]) -> None:
        self.meter = meter
        self.start = meter.read()
        self.generated = generated

    def collect(self) -> Iterator[Metric]:
        energy_j = self.meter.window(self.start).energy_j
        src = self.meter.energy_source
        total = CounterMetricFamily(
            "backplan_energy_joules",
            "Energy since the model loaded (source: nvml, rapl or estimate)",
            labels=["source"],
        )
        total.add_metric([src], energy_j)
        yield total
        tokens = self.generated()
        per_token = GaugeMetricFamily(
            "backplan_energy_per_generated_token_joules",
            "Energy since the model loaded / tokens emitted (idle time included)",
            labels=["source"],
        )
        per_token.add_metric([src], energy_j / tokens if tokens else math.nan)
        yield per_token


class Metrics:
    def __init__(self, n_slots: int) -> None:
        self.registry = r = CollectorRegistry()
        self._emitted = 0
        ProcessCollector(registry=r)
        self.requests = Counter(
            "backplan_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "backplan_request_latency_seconds",
            "End-to-end request latency",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "backplan_time_to_first_token_seconds",
            "From arrival to the first committed token (queue wait and prompt included)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "backplan_queue_wait_seconds",
            "Time spent waiting for a slot",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_rate = Histogram(
            "backplan_decode_tokens_per_second",
            "Emitted tokens/s of each generation",
            buckets=_TOKS_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "backplan_prompt_tokens", "Prompt tokens evaluated", registry=r
        )
        self.cached_prompt_tokens = Counter(
            "backplan_prompt_cached_tokens",
            "Prompt tokens reused from a slot's KV cache instead of evaluated",
            registry=r,
        )
        self.generated_tokens = Counter(
            "backplan_generated_tokens", "Tokens emitted to clients", registry=r
        )
        self.sampled_tokens = Counter(
            "backplan_sampled_tokens", "Tokens sampled, rolled-back ones included", registry=r
        )
        self.forward_tokens = Counter(
            "backplan_forward_tokens",
            "Forward-token evaluations after the prompt",
            ["model"],
            registry=r,
        )
        self.rollbacks = Counter("backplan_rollbacks", "Rollback events", registry=r)
        self.rolled_back = Counter(
            "backplan_rolled_back_tokens", "Tokens removed by rollbacks", registry=r
        )
        self.rejections = Counter(
            "backplan_verifier_rejections", "Tokens the verifier rejected", registry=r
        )
        self.verifier_calls = Counter(
            "backplan_verifier_calls", "Times a verifier scored pending tokens", registry=r
        )
        self.generations = Counter(
            "backplan_generations",
            "Finished generations by finish reason",
            ["finish_reason"],
            registry=r,
        )
        self.refused = Counter(
            "backplan_refused", "Requests refused before generating", ["reason"], registry=r
        )
        self.queue_depth = Gauge("backplan_queue_depth", "Requests waiting for a slot", registry=r)
        self.active = Gauge("backplan_active_slots", "Slots generating now", registry=r)
        slots = Gauge("backplan_slots", "Parallel slots", registry=r)
        slots.set(n_slots)
        rss = Gauge(
            "backplan_resident_memory_bytes", "Resident memory of the server process", registry=r
        )
        rss.set_function(lambda: float(resident_bytes()))

    def attach_meter(self, meter: Meter) -> None:
        """Export energy from ``meter`` (once the model is loaded)."""
        self.registry.register(_EnergyCollector(meter, lambda: self._emitted))

    def record(self, trace: Trace, finish_reason: str) -> None:
        self.prompt_tokens.inc(trace.evaluated_prompt_tokens)
        self.cached_prompt_tokens.inc(trace.cached_prompt_tokens)
        self.generated_tokens.inc(trace.emitted_tokens)
        self._emitted += trace.emitted_tokens
        self.sampled_tokens.inc(trace.generated_tokens)
        self.forward_tokens.labels("main").inc(
            max(0, trace.main_forward_tokens - trace.evaluated_prompt_tokens)
        )
        self.forward_tokens.labels("verifier").inc(
            max(0, trace.verifier_forward_tokens - trace.verifier_prompt_tokens)
        )
        self.rollbacks.inc(trace.rollbacks)
        self.rolled_back.inc(trace.rolled_back_tokens)
        self.rejections.inc(trace.rejected_tokens)
        self.verifier_calls.inc(trace.verifier_calls)
        self.generations.labels(finish_reason).inc()
        if trace.emitted_tokens:
            self.decode_rate.observe(trace.decode_tok_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
