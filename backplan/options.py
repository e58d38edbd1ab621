"""Shared click options whose help text comes from the pydantic settings models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
