"""The server's settings: one pydantic model, the single source of truth for ``backplan serve``.

Every field is one command-line flag (``n_ctx`` -> ``--n-ctx``); :func:`option_specs` describes
them so the click command (``backplan/commands/serve.py``) and ``python -m runtime.server`` build
their flags from the same fields, defaults and help text.
"""

from __future__ import annotations

import ipaddress
import socket
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runtime.errors import UsageError
from runtime.models.registry import DEFAULT_MODEL
from runtime.samplers.strategies import STRATEGY_HELP, StrategyName
from runtime.verifiers.registry import SPEC_HELP
from runtime.verifiers.spec import VerifierSpec


class ServerSettings(BaseModel):
    """What ``backplan serve`` loads and how it serves it."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        DEFAULT_MODEL, description="Registry name, path to a .gguf, or hf:OWNER/REPO/FILE."
    )
    verifier: str = Field(
        "none",
        description=f"Default verifier: {SPEC_HELP}. Requests may choose none, syntax, "
        "latent=constant or a part of this spec (examples and tests with "
        "--allow-code-execution).",
    )
    strategy: StrategyName = Field("plain", description=f"Default strategy: {STRATEGY_HELP}")

    @field_validator("verifier")
    @classmethod
    def _spec(cls, spec: str) -> str:
        try:
            parsed = VerifierSpec.parse(spec)
        except UsageError as exc:  # as a validation error: the flag is named with it
            raise ValueError(str(exc)) from None
        if parsed.needs_request_checks:
            raise ValueError(
                "the tests verifier needs each request's own tests, so it cannot be the "
                'default; requests ask for it with "backplan": {"verifier": "tests", '
                '"tests": [...]}'
            )
        return str(parsed)

    host: str = Field(
        "127.0.0.1",
        description="Address to listen on; beyond loopback needs --api-key (or --insecure).",
    )
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port).")
    api_key: list[str] = Field(
        default_factory=list,
        description="Accept requests bearing this key (Authorization: Bearer KEY); repeatable.",
    )
    parallel: int = Field(4, ge=1, le=64, description="Parallel slots: sequences decoded together.")

    @field_validator("api_key")
    @classmethod
    def _no_blank_key(cls, keys: list[str]) -> list[str]:
        # `--api-key "$KEY"` with KEY unset must not become a key that an absent header matches
        if any(not key.strip() for key in keys):
            raise ValueError("an API key is empty (an unset variable?); pass the key itself")
        return keys

    queue: int = Field(
        32, ge=0, le=4096, description="Requests that may wait for a slot; beyond it: 429."
    )
    prompt_cache: bool = Field(
        True,
        description="Keep each slot's KV cache after a request; a new request reuses the "
        "longest common token prefix and goes to the free slot with the longest match.",
    )
    max_tokens_limit: int = Field(
        2048, ge=1, le=131072, description="Largest max_tokens a request may ask for."
    )
    max_prompt_tokens: int = Field(
        4096, ge=1, le=131072, description="Longest prompt in tokens (also bound by --n-ctx)."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Close a connection whose request headers do not arrive within this.",
    )
    body_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="A request body must arrive within this (408 after)."
    )
    max_connections: int = Field(
        1024,
        ge=8,
        le=1_000_000,
        description="Open connections at most; beyond it the oldest idle one is closed.",
    )
    max_messages: int = Field(
        512, ge=1, le=100_000, description="Most messages in one chat request (400 above)."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=1 << 30, description="Largest request body in bytes (413 above)."
    )
    timeout_s: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="Per-request limit in seconds, queue wait included; a generation cut "
        "short returns what it has with finish_reason 'length'.",
    )
    insecure: bool = Field(False, description="Allow listening beyond loopback without API keys.")
    allow_code_execution: bool = Field(
        False,
        description="Let verifiers run model output (examples, tests) in the bubblewrap "
        "jail; refused where the jail cannot run, and beyond loopback without --api-key.",
    )
    n_ctx: int = Field(2048, ge=64, le=131072, description="Context tokens per slot.")
    n_threads: int | None = Field(None, ge=1, le=512, description="CPU threads (default: all).")

    @model_validator(mode="after")
    def _code_execution(self) -> ServerSettings:
        if VerifierSpec.parse(self.verifier).runs_code and not self.allow_code_execution:
            raise ValueError(
                f"--verifier {self.verifier} runs model output; pass --allow-code-execution "
                "to let the server run it in the bubblewrap jail"
            )
        return self


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: ServerSettings) -> None:
    """Refuse to listen beyond loopback without API keys unless told ``--insecure``; code
    execution beyond loopback needs keys whatever ``--insecure`` says."""
    if settings.allow_code_execution and not settings.api_key and not is_loopback(settings.host):
        raise UsageError(
            f"refusing to run model output for anyone who can reach {settings.host}: "
            "--allow-code-execution beyond loopback needs --api-key KEY (--insecure does not "
            "cover it), or --host 127.0.0.1"
        )
    if settings.api_key or settings.insecure or is_loopback(settings.host):
        return
    raise UsageError(
        f"refusing to listen on {settings.host} without API keys: anyone who can reach it could "
        "use the model; pass --api-key KEY (repeatable), or --insecure if the network is "
        "trusted, or --host 127.0.0.1"
    )


def check_port(host: str, port: int) -> None:
    """Refuse an address this process cannot listen on, before a banner or a model load."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host} is not an address here ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror}); stop what uses it or pass "
                "another --port"
            ) from None


@dataclass(frozen=True)
class OptionSpec:
    """One command-line flag derived from a :class:`ServerSettings` field."""

    name: str  # field name
    flag: str  # --kebab-case
    kind: Literal["str", "int", "float", "bool", "list", "choice"]
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    optional: bool = False


def _kind(annotation: Any) -> tuple[str, tuple[str, ...], bool]:
    optional = False
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        annotation = next(a for a in args if a is not type(None))
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
    if origin is Literal:
        return "choice", tuple(str(a) for a in args), optional
    if origin is list:
        return "list", (), optional
    names = {str: "str", int: "int", float: "float", bool: "bool"}
    if annotation in names:
        return names[annotation], (), optional
    raise TypeError(f"no flag type for {annotation!r}")  # pragma: no cover - a new field type


def option_specs() -> list[OptionSpec]:
    """The flags of ``backplan serve``, in field order."""
    out = []
    for name, info in ServerSettings.model_fields.items():
        kind, choices, optional = _kind(info.annotation)
        default = info.get_default(call_default_factory=True)
        out.append(
            OptionSpec(
                name=name,
                flag="--" + name.replace("_", "-"),
                kind=kind,  # type: ignore[arg-type]
                default=default,
                help=info.description or name,
                choices=choices,
                optional=optional,
            )
        )
    return out
