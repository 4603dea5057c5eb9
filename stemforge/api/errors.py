"""Every error the API answers with, mapped to an HTTP status in this one place.

Bodies keep FastAPI's ``detail`` list for validation errors (clients may already parse it) and
add ``message``: one readable line naming each bad field and what is allowed.
"""

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stemforge.errors import InvalidRequest, StemforgeError

logger = logging.getLogger(__name__)


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "parameters", "chord_progression", 2)`` -> ``parameters.chord_progression[2]``."""
    name = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _error_field(error: dict[str, Any]) -> str:
    # A JSON syntax error's loc ends in the character offset, which is no field.
    if error.get("type") == "json_invalid":
        return "body"
    return field_name(error.get("loc", ()))


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid" and len(error.get("loc", ())) > 1:
        message += f" at character {error['loc'][-1]}"
    text = f"{_error_field(error)}: {message}"
    if (
        "input" in error
        and error.get("type") not in ("missing", "json_invalid")
        and not isinstance(error["input"], dict | list)
    ):
        text += f" (got {error['input']!r})"
    return text


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    details = [
        {
            "loc": list(e.get("loc", ())),
            "field": _error_field(e),
            "msg": e.get("msg"),
            "type": e.get("type"),
        }
        for e in errors
    ]
    return JSONResponse(
        status_code=422, content={"message": "; ".join(_describe(e) for e in errors), "detail": details}
    )


async def _stemforge_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StemforgeError):  # pragma: no cover - registered for StemforgeError only
        raise exc
    if exc.status_code >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    content: dict[str, Any] = {"message": exc.message, "error": type(exc).__name__}
    if isinstance(exc, InvalidRequest):
        content["detail"] = [
            {"loc": ["body", *field.split(".")], "field": field, "msg": f"{field}: {message}"}
            for field, message in exc.problems
        ]
    headers = {"Retry-After": "5"} if exc.status_code == 503 else None
    return JSONResponse(status_code=exc.status_code, content=content, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (a body that cannot be parsed, an unknown route) in our shape."""
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for it only
        raise exc
    message = str(exc.detail)
    return JSONResponse(
        status_code=exc.status_code,
        content={
            "message": message,
            "error": HTTPStatus(exc.status_code).phrase.replace(" ", ""),
            "detail": message,
        },
        headers=exc.headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"message": "internal error", "error": "InternalError"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StemforgeError, _stemforge_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
