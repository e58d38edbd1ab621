"""A replica's ``backplan_*`` Prometheus series, republished through Ray's metrics.

``GET /metrics`` through Serve's proxy answers one replica at a time; Ray's metrics agent on
each node exports every replica's series together (with a ``replica`` tag), next to Serve's
own ``ray_serve_*``. Every few seconds the bridge reads the replica's registry and sets one
Ray gauge per sample (counters as their running totals, histograms as ``_sum``/``_count``);
Ray's exporter prefixes ``ray_``: scrape ``ray_backplan_*``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


class MetricsBridge:
    def __init__(self, registry: CollectorRegistry, replica: str, period_s: float = 5.0) -> None:
        self.registry, self.replica, self.period_s = registry, replica, period_s
        self._gauges: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-bridge", daemon=True)

    def start(self) -> MetricsBridge:
        self._thread.start()
        return self

    def publish(self) -> int:
        """Set every bridged gauge from the registry now; the number of samples set."""
        from ray.util.metrics import Gauge

        n = 0
        for family in self.registry.collect():
            for sample in family.samples:
                name = sample.name
                if not name.startswith("backplan_") or name.endswith(("_bucket", "_created")):
                    continue
                gauge = self._gauges.get(name)
                if gauge is None:
                    keys = (*sorted(sample.labels), "replica")
                    gauge = Gauge(name, description=family.documentation, tag_keys=keys)
                    self._gauges[name] = gauge
                gauge.set(float(sample.value), tags={**sample.labels, "replica": self.replica})
                n += 1
        return n

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.publish()
            except Exception:  # noqa: BLE001 - metrics never take a replica down
                log.exception("republishing metrics through Ray failed")

    def stop(self) -> None:
        self._stop.set()
