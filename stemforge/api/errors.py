"""Every error the API answers with, mapped to an HTTP status in this one place.

Bodies keep FastAPI's ``detail`` list for validation errors (clients may already parse it) and
add ``message``: one readable line naming each bad field and what is allowed.
"""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from stemforge.errors import InvalidRequest, StemforgeError

logger = logging.getLogger(__name__)


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "parameters", "chord_progression", 2)`` -> ``parameters.chord_progression[2]``."""
    name = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    text = f"{field_name(error.get('loc', ()))}: {message}"
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
            "field": field_name(e.get("loc", ())),
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


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"message": "internal error", "error": "InternalError"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StemforgeError, _stemforge_error)
    app.add_exception_handler(Exception, _unexpected_error)
