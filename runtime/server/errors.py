"""HTTP errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}``.

Only the server maps backplan's errors to HTTP (``BackplanError.http_status``); everything a
client can send wrong is a 4xx here, never a 5xx.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime.errors import BackplanError, ContextOverflowError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_busy_error",
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class APIError(Exception):
    """An error response: status, message (what went wrong and what to do), OpenAI type/code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        # a client's text quoted back may hold lone surrogates: keep the body encodable
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_ or _TYPES.get(status, "server_error" if status >= 500 else "api_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def from_backplan(exc: BackplanError) -> APIError:
    code = "context_length_exceeded" if isinstance(exc, ContextOverflowError) else None
    return APIError(exc.http_status, str(exc), code=code)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "the request body is invalid", None
    err = errors[0]
    loc = [str(x) for x in err.get("loc", ()) if x != "body"]
    if err.get("type") == "json_invalid":
        ctx = err.get("ctx") or {}
        return f"the body is not valid JSON ({ctx.get('error', err.get('msg'))})", None
    where = ".".join(loc)
    param = loc[-1] if loc else None
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if not where:
        return f"the request body is invalid: {err.get('msg')}{more}", None
    return f"invalid value for '{where}': {err.get('msg')}{more}", param


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param = _validation_message(exc)
    return APIError(400, message, param=param, code="invalid_value").response()


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return exc.response()


async def backplan_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BackplanError)
    return from_backplan(exc).response()


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    messages = {
        404: f"no route {request.url.path}; see /openapi.json for the API",
        405: f"method {request.method} is not allowed on {request.url.path}",
    }
    message = messages.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers) if exc.headers else None
    return APIError(exc.status_code, message, headers=headers).response()


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return APIError(
        500, f"internal error ({type(exc).__name__}); the server keeps serving, please report it"
    ).response()
