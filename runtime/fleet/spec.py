"""What a fleet is: one plan candidate as replicas of ``backplan serve`` on Ray Serve.

:func:`fleet_from_plan` reads a ``backplan plan --out`` file and takes one shortlist candidate:
its replicas and GPUs per replica, the memory a replica needs, the model and its sha256, the
verifier and strategy, and the workload's peak concurrency, which sets the slots per replica
and the autoscaling bounds. Everything the Serve deployment, the Serve config file and the
KubeRay manifest say comes from this one model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.errors import UsageError, first_problem
from runtime.samplers.strategies import STRATEGY_HELP, StrategyName

if TYPE_CHECKING:
    from hardware_catalog.loader import Catalog

#: Vendors whose GPUs Ray schedules as ``num_gpus`` (CUDA and ROCm devices).
RAY_GPU_VENDORS = ("nvidia", "amd")


class FleetSpec(BaseModel):
    """One planned configuration, as Ray Serve runs it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("backplan", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=50)
    candidate_id: str = Field(description="The plan candidate this fleet serves.")
    model: str = Field(description="Registry name of the model.")
    model_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Each replica checks its file against it."
    )
    verifier: str = "none"
    strategy: StrategyName = Field("plain", description=STRATEGY_HELP)
    replicas: int = Field(1, ge=1, le=256, description="Replicas to start with.")
    min_replicas: int = Field(1, ge=1, le=256)
    max_replicas: int = Field(1, ge=1, le=256)
    gpus_per_replica: float = Field(0.0, ge=0, description="Ray num_gpus of one replica.")
    cpus_per_replica: float = Field(1.0, gt=0, description="Ray num_cpus of one replica.")
    memory_gb_per_replica: float = Field(2.0, gt=0, description="Host memory one replica needs.")
    gpu: str | None = Field(None, description="Catalogue id of the accelerator.")
    gpu_vendor: str | None = Field(None, description="Its vendor (nvidia, amd, apple ...).")
    hosts: int = Field(1, ge=1, description="Worker hosts the plan counts.")
    gpus_per_host: int = Field(0, ge=0)
    parallel: int = Field(4, ge=1, le=64, description="Slots per replica.")
    queue: int = Field(16, ge=0, description="Requests a replica queues beyond its slots.")
    n_ctx: int = Field(2048, ge=64, le=131072, description="Context tokens per slot.")
    port: int = Field(8000, ge=1, le=65535, description="Serve's HTTP port.")

    @property
    def max_ongoing_requests(self) -> int:
        """What Serve sends one replica at once: its slots plus its queue."""
        return self.parallel + self.queue

    def server_settings(self) -> dict[str, Any]:
        """The ``ServerSettings`` of every replica (as JSON-able values); a verifier that
        runs the answer (examples, tests) needs code execution, which runs in the jail."""
        from runtime.verifiers.spec import VerifierSpec

        runs_code = any(p.info.runs_code for p in VerifierSpec.parse(self.verifier).parts)
        return {
            "model": self.model,
            "verifier": self.verifier,
            "strategy": self.strategy,
            "parallel": self.parallel,
            "queue": self.queue,
            "n_ctx": self.n_ctx,
            "n_threads": max(1, math.floor(self.cpus_per_replica)),
            "allow_code_execution": runs_code,
        }


def read_plan(path: Path) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist; write one with `backplan plan --out`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not a plan JSON file ({exc})") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("shortlist"), list):
        raise UsageError(f"{path} has no shortlist: is it `backplan plan --out` output?")
    return plan


def fleet_from_plan(
    plan: dict[str, Any],
    candidate: int = 1,
    *,
    replicas: int | None = None,
    catalog_dir: Path | None = None,
) -> FleetSpec:
    """Shortlist candidate ``candidate`` (1 = the recommended one) as a fleet; ``replicas``
    overrides the plan's count (the autoscaling ceiling follows it)."""
    from planner.recommend.workload import make_workload

    shortlist = plan["shortlist"]
    if not shortlist:
        raise UsageError("the plan's shortlist is empty: nothing fits its constraints")
    if not 1 <= candidate <= len(shortlist):
        raise UsageError(
            f"--candidate {candidate} is not in the shortlist (1..{len(shortlist)}); "
            "`backplan plan` prints them in order"
        )
    c = shortlist[candidate - 1]
    workload = make_workload(dict(plan["workload"]), "the plan's workload")
    concurrency = workload.concurrency
    planned = int(c["replicas"])
    n = replicas or planned
    parallel = max(1, min(64, math.ceil(concurrency / planned)))
    from hardware_catalog.loader import load_catalog

    catalog = load_catalog(catalog_dir)
    gpu_vendor = _vendor(catalog, str(c["gpu"]))
    ray_gpus = float(c["gpus_per_replica"]) if gpu_vendor in RAY_GPU_VENDORS else 0.0
    weights = float(c["main_weights_gb"]) + float(c["verifier_weights_gb"])
    if ray_gpus:
        memory = weights + 2.0  # host RAM for the loader and the process; the KV lives on GPU
        cpus = 2.0
    else:  # the model runs on the host (a CPU box or a unified-memory system)
        memory = float(c["memory_gb_per_replica"]) + 1.0
        cores = int(c.get("host_cpu_cores") or 2)
        cpus = float(max(1, cores // max(1, planned)))
    hosts, gpus_per_host = 1, int(c["gpu_count"]) if ray_gpus else 0
    host = catalog.host_shares.get(str(c["host"])) if c.get("host") else None
    if ray_gpus and host is not None and int(c["gpu_count"]) > host.gpu_slots:
        hosts = math.ceil(int(c["gpu_count"]) / host.gpu_slots)  # the plan's hosts of a kind
        gpus_per_host = host.gpu_slots
    try:
        return FleetSpec(
            candidate_id=str(c["id"]),
            model=str(c["model"]),
            model_sha256=_sha256(str(c["model"])),
            verifier=str(c["verifier"]),
            strategy=c["strategy"],
            replicas=n,
            min_replicas=1,
            max_replicas=max(n, planned),
            gpus_per_replica=ray_gpus,
            cpus_per_replica=cpus,
            memory_gb_per_replica=round(memory, 2),
            gpu=str(c["gpu"]),
            gpu_vendor=gpu_vendor,
            hosts=hosts,
            gpus_per_host=gpus_per_host,
            parallel=parallel,
            n_ctx=int(workload.context_tokens),
        )
    except ValidationError as exc:
        where, msg = first_problem(exc)
        raise UsageError(f"the candidate cannot be served as a fleet: {where}: {msg}") from None


def _vendor(catalog: Catalog, gpu_id: str) -> str:
    gpu = catalog.gpus.get(gpu_id)
    if gpu is None:
        raise UsageError(
            f"the plan's accelerator {gpu_id!r} is not in the catalogue; pass the --catalog "
            "folder the plan was made with"
        )
    return str(gpu.vendor)


def _sha256(model: str) -> str | None:
    from runtime.models.registry import lookup

    spec = lookup(model)
    return spec.sha256 if spec is not None else None
