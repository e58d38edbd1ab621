"""Shared click options whose help text comes from the pydantic settings models."""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ValidationError

from runtime.errors import UsageError, first_problem


def field_help(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    return info.description or name


def validated(schema: type[BaseModel], /, **values: Any) -> Any:
    """Build a settings model, turning validation errors into one clear usage line."""
    try:
        return schema(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        field, msg = first_problem(exc)
        where = "--" + field.replace("_", "-") if field and "." not in field else field
        raise UsageError(f"invalid value for {where or 'settings'}: {msg}") from None


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


#: Seeds every command accepts (numpy's generator takes any non-negative integer).
MAX_SEED = 2**63 - 1
#: Threads every command accepts.
MAX_THREADS = 512
MODEL_HELP = "Registry name, path to a .gguf, or hf:OWNER/REPO/FILE."


def model_option(default: str | None, help_text: str = MODEL_HELP) -> Decorator:
    """``--model/-m``; ``default`` comes from the core (the registry's default model, or the
    measured harness's), never spelled here."""
    return click.option(
        "--model", "-m", default=default, show_default=default is not None, help=help_text
    )


def verifier_option(extra_help: str = "") -> Decorator:
    from runtime.verifiers.registry import SPEC_HELP

    return click.option(
        "--verifier", default="none", show_default=True, help=SPEC_HELP + extra_help
    )


def strategy_option() -> Decorator:
    from runtime.generation import StrategyName

    return click.option(
        "--strategy",
        type=click.Choice(list(typing.get_args(StrategyName))),
        default="plain",
        show_default=True,
    )


def seed_option(default: int | None, help_text: str) -> Decorator:
    return click.option(
        "--seed",
        type=click.IntRange(0, MAX_SEED),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def threads_option() -> Decorator:
    return click.option(
        "--threads",
        type=click.IntRange(1, MAX_THREADS),
        default=None,
        help="CPU threads (default: all cores).",
    )


#: ``--catalog DIR``: the user's catalogue overlay (plan, predict, deploy).
catalog_option = click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Your catalogue folder: entries add to or override ours (default: the home's "
    "overlay, where the dashboard saves entries).",
)
