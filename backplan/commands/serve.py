"""``backplan serve``: the chosen configuration as an OpenAI-compatible HTTP server.

Flags come from :class:`runtime.server.ServerSettings` (names, defaults, help), so the CLI and
``python -m runtime.server`` cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import click

from backplan.options import validated
from runtime.server.settings import ServerSettings, option_specs


def _params() -> list[click.Parameter]:
    params: list[click.Parameter] = []
    for spec in option_specs():
        kw: dict[str, Any] = {"help": spec.help}
        decls = [spec.flag, spec.name]
        if spec.kind == "bool" and spec.default:
            # on by default: --X/--no-X, so the default is the setting's, not click's False
            decls = [f"{spec.flag}/--no-{spec.flag.removeprefix('--')}", spec.name]
            kw.update(default=True, show_default=True)
        elif spec.kind == "bool":
            kw.update(is_flag=True, default=False)
        elif spec.kind == "list":
            kw.update(multiple=True, default=())
        else:
            kind = {
                "str": click.STRING,
                "int": click.INT,
                "float": click.FLOAT,
                "choice": click.Choice(list(spec.choices)),
            }[spec.kind]
            kw.update(type=kind, default=spec.default, show_default=spec.default is not None)
        params.append(click.Option(decls, **kw))
    return params


def _serve(**values: Any) -> None:
    """Serve --model over the OpenAI API (completions, chat, streaming) with backtracking.

    Listens on 127.0.0.1:8000 by default; beyond loopback it needs --api-key (or --insecure).
    """
    from runtime.server import run_server

    values["api_key"] = list(values.get("api_key") or [])
    settings: ServerSettings = validated(ServerSettings, **values)
    run_server(settings)


serve = click.Command(
    "serve",
    callback=_serve,
    params=_params(),
    help=_serve.__doc__,
    short_help="Serve the model over an OpenAI-compatible HTTP API.",
)
