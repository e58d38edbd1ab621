"""``backplan models``: list, fetch and locate model files."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from runtime.models.fetch import cache_status, cached_file, fetch, model_path
from runtime.models.registry import DEFAULT_MODEL, all_models


@click.group()
def models() -> None:
    """Known models and the local model cache."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(as_json: bool) -> None:
    """List the models backplan knows and whether each is cached."""
    specs = all_models()
    if as_json:
        rows = [
            {
                **spec.model_dump(mode="json"),
                "default": spec.name == DEFAULT_MODEL,
                "cached": cache_status(spec),
                "path": str(cached_file(spec)),
            }
            for spec in specs
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(caption="* default model; fetch with `backplan models fetch NAME`")
    for col in ("name", "params", "quant", "size MB", "cached", "license"):
        table.add_column(col, justify="right" if col in ("params", "size MB") else "left")
    for spec in specs:
        table.add_row(
            spec.name + (" *" if spec.name == DEFAULT_MODEL else ""),
            f"{spec.params_b:g}B",
            spec.quant,
            f"{spec.size_mb:,.0f}",
            cache_status(spec),
            spec.license,
        )
    Console(soft_wrap=True).print(table)


@models.command("fetch")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download and verify again even if cached.")
def fetch_(name: str, force: bool) -> None:
    """Download, assemble and verify NAME (registry name or hf:OWNER/REPO/FILE); print its path."""
    click.echo(str(fetch(name, force=force)))


@models.command("path")
@click.argument("name")
def path_(name: str) -> None:
    """Print the local path of NAME if it is cached (never downloads)."""
    click.echo(str(model_path(name, download=False)))
