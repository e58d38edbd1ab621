"""``backplan serve`` as a Ray Serve deployment: the same FastAPI app, one engine per replica.

No second implementation of the API: each replica builds :func:`runtime.server.app.create_app`
with its settings and Serve routes HTTP to it (``serve.ingress``, the app built on the
replica). A replica checks its model file's sha256 and loads the model in its constructor, so
Serve counts it ready only when it can answer; Serve's health check asks the engine; Serve
drains a replica (no new requests, those in flight finish) before it stops it. Every answer
names its replica in ``X-Backplan-Replica``; its ``backplan_*`` metrics are republished through
Ray's (:mod:`runtime.fleet.metrics_bridge`). The Serve config file's ``import_path`` is
:func:`build` (an application builder: ``args`` carry the :class:`~runtime.fleet.spec.FleetSpec`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ray import serve
from ray.serve import Application
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.errors import ChecksumError, EngineError
from runtime.fleet.spec import FleetSpec

log = logging.getLogger(__name__)

REPLICA_HEADER = "x-backplan-replica"


class _NameReplica:
    """ASGI middleware: every HTTP answer says which replica made it."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app, self.name = app, name.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REPLICA_HEADER.encode(), self.name)]
            await send(message)

        await self.app(scope, receive, named)


@serve.ingress()
class BackplanReplica:
    """One replica: one model, one batch engine with its slots, the whole OpenAI API."""

    def __init__(self, settings: dict[str, Any], model_sha256: str | None = None) -> None:
        from runtime.models.fetch import model_path, sha256_file
        from runtime.server.engine import ServerCore
        from runtime.server.settings import ServerSettings

        self.settings = ServerSettings(**settings)
        path = model_path(self.settings.model)
        if model_sha256 is not None:
            found = sha256_file(path)
            if found != model_sha256:
                raise ChecksumError(
                    f"{path} on this replica has sha256 {found}, the plan's model has "
                    f"{model_sha256}; delete the file and let the replica fetch it again"
                )
        try:
            self.replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # noqa: BLE001 - outside Serve (a test constructs it directly)
            self.replica = f"pid-{os.getpid()}"
        self.core = ServerCore(self.settings)
        self.core.load()  # Serve waits for the constructor: ready means loaded
        if self.core.load_error:
            raise EngineError(f"replica {self.replica}: {self.core.load_error}")
        from runtime.fleet.metrics_bridge import MetricsBridge

        self.bridge = MetricsBridge(self.core.metrics.registry, self.replica).start()
        log.warning("backplan replica %s ready (%s)", self.replica, self.settings.model)

    def __serve_build_asgi_app__(self) -> ASGIApp:
        from runtime.server.app import create_app

        return _NameReplica(create_app(self.settings, core=self.core), self.replica)

    def check_health(self) -> None:
        """Serve's health check: a replica whose engine is gone is replaced."""
        core = self.core
        if core.load_error or (core.ready and core.engine is None and not core.draining):
            raise EngineError(f"replica {self.replica}: the engine is not running")


def deployment_options(spec: FleetSpec) -> dict[str, Any]:
    """The Serve deployment options the plan sets (the config file writes the same)."""
    options: dict[str, Any] = {
        "max_ongoing_requests": spec.max_ongoing_requests,
        "ray_actor_options": {
            "num_cpus": spec.cpus_per_replica,
            "num_gpus": spec.gpus_per_replica,
            "memory": int(spec.memory_gb_per_replica * 2**30),
        },
        "health_check_period_s": 10,
        "health_check_timeout_s": 30,
        "graceful_shutdown_wait_loop_s": 2,
        "graceful_shutdown_timeout_s": 120,
    }
    if spec.min_replicas == spec.max_replicas:
        options["num_replicas"] = spec.replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": spec.min_replicas,
            "initial_replicas": spec.replicas,
            "max_replicas": spec.max_replicas,
            "target_ongoing_requests": spec.parallel,
        }
    return options


def build(args: dict[str, Any]) -> Application:
    """Serve application builder (``import_path: runtime.fleet.serve_app:build``)."""
    spec = FleetSpec.model_validate(args["fleet"])
    deployment = serve.deployment(name="backplan", **deployment_options(spec))(BackplanReplica)
    return deployment.bind(spec.server_settings(), spec.model_sha256)
