"""Shared click options whose help text comes from the pydantic settings models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from runtime.errors import UsageError


def field_help(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    return info.description or name


def validated(schema: type[BaseModel], /, **values: Any) -> Any:
    """Build a settings model, turning validation errors into one clear usage line."""
    try:
        return schema(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(x) for x in err["loc"]]
        where = "--" + loc[0].replace("_", "-") if len(loc) == 1 else ".".join(loc) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise UsageError(f"invalid value for {where}: {msg}") from None


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
