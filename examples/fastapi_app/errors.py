"""Every failure becomes a JSON body ``{"error": code, "message": text}``.

orra-di's own messages are written to be shown (a :class:`ProviderError`
never holds a key), so they are passed on; store and configuration failures
may name hosts or paths, so clients get a generic message and the log gets
the details. Nothing ever answers with a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from orra_di import (
    NamespaceError,
    OrraError,
    OrraRuntimeError,
    ProviderError,
    SessionBusyError,
    StoreError,
)

__all__ = ["ApiError", "ErrorBody", "install_error_handlers"]

log = logging.getLogger("fastapi_app")


class ErrorBody(BaseModel):
    """What every error response holds."""

    error: str
    message: str


class ApiError(Exception):
    """An error the routes raise on purpose, with its status and code."""

    def __init__(self, status_code: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message


def _json(status_code: int, error: str, message: str) -> JSONResponse:
    body = ErrorBody(error=error, message=message)
    return JSONResponse(body.model_dump(), status_code=status_code)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json(exc.status_code, exc.error, exc.message)


async def _orra_error(request: Request, exc: Exception) -> JSONResponse:
    """orra-di's exception tree, most specific first."""
    if isinstance(exc, NamespaceError):
        return _json(422, "invalid_namespace", str(exc))
    if isinstance(exc, SessionBusyError):
        return _json(409, "session_busy", str(exc))
    if isinstance(exc, ProviderError):
        return _json(502, "provider_error", str(exc))
    if isinstance(exc, OrraRuntimeError):  # e.g. MaxTurnsExceeded: the model kept calling tools
        return _json(502, "agent_failed", str(exc))
    if isinstance(exc, StoreError):
        log.error("session store failed on %s %s", request.method, request.url.path, exc_info=exc)
        return _json(503, "store_unavailable", "the session store is unavailable; retry later")
    log.error("orra-di failed on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(500, "server_error", "the server is misconfigured or failed; see its log")


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The problems without their "input": a body is not echoed back.
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return _json(422, "invalid_request", problems)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette still re-raises the exception after this response, so the server logs it.
    return _json(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(OrraError, _orra_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
