"""What an operator applies: the Serve config file, a KubeRay ``RayService`` and a README.

Both files come from one :class:`~runtime.fleet.spec.FleetSpec` and are checked before they are
written: the Serve config against Ray's own schema (``ray.serve.schema.ServeDeploySchema``),
the ``RayService`` against the KubeRay CRD's OpenAPI schema shipped beside this module
(``schemas/``, KubeRay v1.7.0), and its pod templates against Kubernetes' own schemas
(``kubernetes-validate``, as ``PodTemplate`` objects).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from runtime.errors import UsageError
from runtime.fleet.spec import FleetSpec

KUBERAY_VERSION = "1.7.0"
KUBERNETES_VERSION = "1.30.0"
SCHEMA_FILE = f"rayservice-kuberay-v{KUBERAY_VERSION}.schema.json"
IMPORT_PATH = "runtime.fleet.serve_app:build"
CACHE_DIR = "/var/cache/backplan"


def ray_version() -> str:
    from importlib.metadata import version

    return version("ray")


def serve_config(spec: FleetSpec) -> dict[str, Any]:
    """The ``serve deploy`` / ``serve run`` config file of the fleet."""
    from runtime.fleet.serve_app import deployment_options

    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": spec.port},
        "applications": [
            {
                "name": spec.name,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": {"fleet": spec.model_dump(mode="json")},
                "deployments": [{"name": "backplan", **deployment_options(spec)}],
            }
        ],
    }


def _container(name: str, image: str, resources: dict[str, Any], ports: list[int]) -> Any:
    return {
        "name": name,
        "image": image,
        "resources": {"limits": resources, "requests": resources},
        "ports": [{"containerPort": p} for p in ports],
        "env": [{"name": "BACKPLAN_CACHE", "value": CACHE_DIR}],
        "volumeMounts": [{"name": "model-cache", "mountPath": CACHE_DIR}],
    }


def _pod(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "spec": {
            "containers": [container],
            "volumes": [{"name": "model-cache", "emptyDir": {}}],
        }
    }


def rayservice(spec: FleetSpec, image: str) -> dict[str, Any]:
    """A KubeRay ``RayService``: a CPU head that runs no replica, and one worker group of the
    plan's hosts, each with its GPUs, CPUs and memory for its replicas."""
    per_host = max(1, spec.replicas // spec.hosts) if spec.hosts > 1 else spec.replicas
    worker: dict[str, Any] = {
        "cpu": str(max(1, int(spec.cpus_per_replica * per_host))),
        "memory": f"{max(1, round(spec.memory_gb_per_replica * per_host))}Gi",
    }
    if spec.gpus_per_host:
        vendor_key = "amd.com/gpu" if spec.gpu_vendor == "amd" else "nvidia.com/gpu"
        worker[vendor_key] = str(spec.gpus_per_host)
    head = {"cpu": "2", "memory": "4Gi"}
    serve_apps = {"applications": serve_config(spec)["applications"]}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {
            "name": spec.name,
            "labels": {"app.kubernetes.io/name": "backplan"},
            "annotations": {
                "backplan/candidate": spec.candidate_id,
                "backplan/model": spec.model,
                "backplan/model-sha256": spec.model_sha256 or "unknown",
            },
        },
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_apps, sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": ray_version(),
                "headGroupSpec": {
                    # the head schedules no replica: its CPUs are not offered to Ray
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                    "template": _pod(_container("ray-head", image, head, [6379, 8265, spec.port])),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "replicas",
                        "replicas": spec.hosts,
                        "minReplicas": 1,
                        "maxReplicas": spec.hosts,
                        "rayStartParams": {},
                        "template": _pod(_container("ray-worker", image, worker, [spec.port])),
                    }
                ],
            },
        },
    }


# -- validation ------------------------------------------------------------------------------


def validate_serve_config(config: dict[str, Any]) -> None:
    """Ray's own schema of a Serve config file; UsageError naming the first problem."""
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    try:
        ServeDeploySchema.model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise UsageError(f"the Serve config is invalid at {where}: {err['msg']}") from None


@lru_cache(maxsize=1)
def _rayservice_schema() -> dict[str, Any]:
    text = files("runtime.fleet").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_rayservice(manifest: dict[str, Any]) -> None:
    """The KubeRay CRD's schema, then Kubernetes' own for each pod template."""
    import jsonschema
    import kubernetes_validate

    validator = jsonschema.Draft7Validator(_rayservice_schema())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(x) for x in e.absolute_path) or "(top level)"
        raise UsageError(
            f"the RayService is invalid against KubeRay v{KUBERAY_VERSION}'s CRD at "
            f"{where}: {e.message}"
        )
    cluster = manifest["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])] + [
        (g["groupName"], g) for g in cluster.get("workerGroupSpecs", [])
    ]
    for name, group in groups:
        pod = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{manifest['metadata']['name']}-{name}"},
            "template": group["template"],
        }
        try:
            kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(x) for x in exc.path)
            raise UsageError(
                f"the {name} pod template is invalid for Kubernetes {KUBERNETES_VERSION} at "
                f"{path}: {exc.message}"
            ) from None


# -- writing ---------------------------------------------------------------------------------


def readme(spec: FleetSpec, image: str) -> str:
    return f"""# backplan fleet: {spec.candidate_id}

{spec.replicas} replica(s) of `backplan serve` ({spec.model}, verifier `{spec.verifier}`,
strategy `{spec.strategy}`), {spec.parallel} slots each, {spec.gpus_per_replica:g} GPU(s),
{spec.cpus_per_replica:g} CPU(s) and {spec.memory_gb_per_replica:g} GB of host memory per
replica; autoscaling between {spec.min_replicas} and {spec.max_replicas} replicas on
{spec.parallel} ongoing requests per replica. Each replica checks its model file against
sha256 `{spec.model_sha256}` before it reports ready.

## On a running Ray cluster

    pip install -e '.[cluster]'          # on every node: backplan and Ray {ray_version()}
    serve deploy serve-config.yaml       # or: serve run serve-config.yaml (foreground)

## On Kubernetes (KubeRay v{KUBERAY_VERSION})

Build an image with backplan installed (`{image}`), e.g.

    FROM rayproject/ray:{ray_version()}-py311
    COPY . /backplan
    RUN pip install -e '/backplan[cluster]'

then

    kubectl apply -f rayservice.yaml

Replicas fetch the model into `{CACHE_DIR}` (an emptyDir; mount a volume there to keep it).
Send requests to the `{spec.name}-serve-svc` service on port {spec.port} (the OpenAI API:
`/v1/chat/completions`, `/v1/completions`, `/infill`); every answer names its replica in
`X-Backplan-Replica`.

## Metrics

Scrape Ray's metrics port on every node (`ray start --metrics-export-port`; KubeRay's pods
expose 8080). Serve's own: `ray_serve_num_http_requests`, `ray_serve_num_http_error_requests`,
`ray_serve_http_request_latency_ms`, `ray_serve_num_ongoing_http_requests` (the proxy);
`ray_serve_deployment_request_counter`, `ray_serve_deployment_processing_latency_ms`,
`ray_serve_replica_processing_queries`, `ray_serve_num_ongoing_requests_at_replicas` (per
replica). backplan's, republished by every replica with a `replica` tag: `ray_backplan_*`
(e.g. `ray_backplan_generated_tokens_total`, `ray_backplan_rollbacks_total`,
`ray_backplan_active_slots`, `ray_backplan_prompt_cached_tokens_total`). `GET /metrics`
through Serve answers one replica's own `backplan_*` (named in `X-Backplan-Replica`).
"""


def write_fleet(spec: FleetSpec, out_dir: Path, image: str) -> list[Path]:
    """Validate, then write the three files atomically; the paths written."""
    from runtime.atomic import write_text_atomic

    config = serve_config(spec)
    validate_serve_config(config)
    manifest = rayservice(spec, image)
    validate_rayservice(manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_text_atomic(out_dir / "serve-config.yaml", yaml.safe_dump(config, sort_keys=False)),
        write_text_atomic(out_dir / "rayservice.yaml", yaml.safe_dump(manifest, sort_keys=False)),
        write_text_atomic(out_dir / "README.md", readme(spec, image)),
    ]
    return written


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path} cannot be read as YAML ({exc})") from None
