"""``python -m runtime.server [flags]``: the same server and flags as ``backplan serve``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from runtime.errors import BackplanError, first_problem
from runtime.server.settings import ServerSettings, option_specs


def parse_args(argv: Sequence[str] | None = None) -> ServerSettings:
    parser = argparse.ArgumentParser(
        prog="python -m runtime.server",
        description="backplan's OpenAI-compatible server (same flags as `backplan serve`).",
    )
    for spec in option_specs():
        kw: dict[str, Any] = {"dest": spec.name, "help": spec.help, "default": None}
        if spec.kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction if spec.default else "store_true"
        elif spec.kind == "list":
            kw["action"] = "append"
        elif spec.kind == "choice":
            kw["choices"] = spec.choices
        else:
            kw["type"] = {"str": str, "int": int, "float": float}[spec.kind]
        if spec.kind not in ("bool", "list") and spec.default is not None:
            kw["help"] += f" (default: {spec.default})"
        parser.add_argument(spec.flag, **kw)
    ns = parser.parse_args(argv)
    values = {k: v for k, v in vars(ns).items() if v is not None}
    try:
        return ServerSettings(**values)
    except ValidationError as exc:
        field, msg = first_problem(exc)
        where = "--" + field.split(".")[0].replace("_", "-")
        print(f"error: invalid value for {where}: {msg}", file=sys.stderr)  # one line
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from runtime.server.run import run_server

    try:
        run_server(settings)
    except BackplanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
