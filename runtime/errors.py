"""The one exception tree of backplan.

Every error a user can cause is a :class:`BackplanError` whose message says what went wrong
and what to do next. Only the CLI maps these to exit codes, and only the server to HTTP
errors; library code raises and never prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class BackplanError(Exception):
    """Base of every error backplan raises on purpose. ``exit_code`` is the CLI's exit status."""

    exit_code: int = 1
    http_status: int = 500


class UsageError(BackplanError):
    """The caller asked for something invalid (bad option, empty prompt, ...)."""

    exit_code = 2
    http_status = 400


class ModelNotFoundError(BackplanError):
    """An unknown model name or a missing model file."""

    exit_code = 2
    http_status = 404


class ModelFetchError(BackplanError):
    """Downloading or assembling a model failed (no network, bad checksum, missing part)."""

    exit_code = 3
    http_status = 502


class ChecksumError(ModelFetchError):
    """A file's sha256 differs from the registry's."""


class ModelLoadError(BackplanError):
    """llama.cpp could not load a model file (corrupt or truncated GGUF, wrong format)."""

    exit_code = 3
    http_status = 500


class ContextOverflowError(UsageError):
    """The prompt (plus what is asked to be generated) does not fit the context."""


class HeadError(BackplanError):
    """A value-head file is unreadable or does not fit the model it is used with."""

    exit_code = 2
    http_status = 400


class EngineError(BackplanError):
    """llama.cpp returned an error while decoding."""

    exit_code = 4
    http_status = 500


class SandboxUnavailableError(BackplanError):
    """Generated code must run in the jail (``serve --allow-code-execution``) and it cannot
    here: bubblewrap or libseccomp is missing, or namespaces are refused."""

    exit_code = 2
    http_status = 503


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """A validation error's first problem, for a one-line message: the field's dotted path
    ("" for the whole object) and pydantic's text without its "Value error, " prefix."""
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    return where, str(err["msg"]).removeprefix("Value error, ")
