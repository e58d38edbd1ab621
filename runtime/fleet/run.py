"""Deploying a fleet onto a Ray cluster: the running one, a remote one, or one started here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from runtime.errors import UsageError
from runtime.fleet.spec import FleetSpec

log = logging.getLogger(__name__)


def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` (``auto``, ``local`` or ``ray://HOST:PORT``); True
    when this process started it (it then ends with this process)."""
    import ray

    if address == "local":
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
        return True
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError:
        raise UsageError(
            f"no Ray cluster at {address}; start one with `ray start --head`, or pass "
            "--address local to run one in this process"
        ) from None
    return False


def deploy_live(
    spec: FleetSpec,
    address: str,
    *,
    echo: Callable[[str], None],
    host: str = "0.0.0.0",
) -> None:
    """Deploy ``spec`` with Serve; with a cluster started here, serve until Ctrl-C."""
    from ray import serve

    from runtime.fleet.serve_app import build
    from runtime.models.registry import lookup

    if lookup(spec.model) is None:
        raise UsageError(
            f"the plan's model {spec.model!r} is not in backplan's registry, so replicas "
            "cannot fetch it; choose another --candidate, or use --write and provide the file"
        )
    owned = connect(address)
    port = spec.port
    serve.start(http_options={"host": host, "port": port})
    serve.run(build({"fleet": spec.model_dump(mode="json")}), name=spec.name, route_prefix="/")
    echo(
        f"backplan on Ray Serve: {spec.replicas} replica(s) of {spec.model} ({spec.parallel} "
        f"slots each) at http://{host}:{port}/v1"
    )
    if not owned:
        return
    echo("this process runs the cluster: Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("draining and stopping")
    finally:
        serve.shutdown()
