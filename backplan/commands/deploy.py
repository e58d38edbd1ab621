"""``backplan deploy ray``: a plan's candidate as a fleet on Ray Serve (or the files for one)."""

from __future__ import annotations

from pathlib import Path

import click

from backplan.options import catalog_option


def _ray_needed() -> None:
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError:
        raise click.UsageError(
            "Ray Serve is an optional extra: install it with pip install -e '.[cluster]'"
        ) from None


@click.group()
def deploy() -> None:
    """Run a planned configuration on a distributed engine."""


@deploy.command("ray")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="A plan JSON file (`backplan plan --out FILE`).",
)
@click.option(
    "--candidate", type=click.IntRange(min=1), default=1, show_default=True,
    help="Shortlist position (1: the recommended one).",
)  # fmt: skip
@click.option("--replicas", type=click.IntRange(1, 256), help="Override the plan's replicas.")
@click.option(
    "--cpus-per-replica",
    type=click.FloatRange(min=0.1),
    help="Override the plan's CPUs per replica (e.g. to try a plan on a smaller machine).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
    help="Serve's HTTP port.",
)  # fmt: skip
@click.option(
    "--address",
    default="auto",
    show_default=True,
    help="Ray cluster: auto (the running one), local (start one here), or ray://HOST:PORT.",
)
@click.option(
    "--write",
    "write_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write serve-config.yaml, rayservice.yaml and README.md here instead of deploying.",
)
@click.option(
    "--image", default="backplan:0.1.0", show_default=True, help="Container image (--write)."
)
@click.option("--name", default="backplan", show_default=True, help="Serve application name.")
@catalog_option
def ray_(
    plan_file: Path,
    candidate: int,
    replicas: int | None,
    cpus_per_replica: float | None,
    port: int,
    address: str,
    write_dir: Path | None,
    image: str,
    name: str,
    catalog_dir: Path | None,
) -> None:
    """Deploy shortlist candidate N of a plan onto Ray Serve: one replica = one backplan engine
    with its slots; GPUs, CPUs and memory per replica and the autoscaling bounds from the
    plan. With --write, write the Serve config and a KubeRay RayService instead (both validated
    against their schemas)."""
    from runtime.fleet.spec import fleet_from_plan, read_plan

    spec = fleet_from_plan(
        read_plan(plan_file), candidate, replicas=replicas, catalog_dir=catalog_dir
    )
    update: dict[str, object] = {"name": name, "port": port}
    if cpus_per_replica is not None:
        update["cpus_per_replica"] = cpus_per_replica
    spec = spec.model_validate({**spec.model_dump(), **update})
    if write_dir is not None:
        _ray_needed()
        from runtime.fleet.manifests import write_fleet

        for path in write_fleet(spec, write_dir, image):
            click.echo(f"wrote {path}")
        return
    _ray_needed()
    from runtime.fleet.run import deploy_live

    deploy_live(spec, address, echo=click.echo)
