"""Errors as RFC 9457 problem details (``application/problem+json``), with Engram's typed error
name in ``error`` so that ``engram.Client`` can raise the same exception class as ``Memory``."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from engram.errors import EngramError, RateLimitError, ValidationError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:engram:error:"
_REQUEST_PARTS = ("body", "query", "path", "header", "cookie")


def problem(error: EngramError, *, instance: str | None = None, status: int | None = None,
            errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The problem document describing ``error``."""
    code = status or error.http_status
    document: dict[str, Any] = {
        "type": TYPE_PREFIX + error.code,
        "title": _title(code),
        "status": code,
        "detail": error.message,
        "instance": instance,
        "error": type(error).__name__,
        "code": error.code,
        "field": error.field,
        "hint": error.hint,
    }
    if errors is not None:
        document["errors"] = errors
    return document


def problem_response(error: EngramError, *, instance: str | None = None, status: int | None = None,
                     errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """A JSON response carrying the problem document (and ``Retry-After`` for rate limits)."""
    document = problem(error, instance=instance, status=status, errors=errors)
    headers = {}
    if isinstance(error, RateLimitError):
        headers["Retry-After"] = str(int(error.retry_after))
    if document["status"] == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="engram"'
    return JSONResponse(document, status_code=document["status"], headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def unparsable_body(cause: BaseException | None) -> ValidationError:
    """The error for a body the JSON parser gave up on (``cause`` is what it raised): 400."""
    if isinstance(cause, UnicodeError):
        message = "the body is not valid UTF-8 text"
    elif isinstance(cause, RecursionError):
        message = "the JSON body is nested too deeply"
    else:
        message = "the body could not be parsed as JSON"
    error = ValidationError(message, field="body", hint="send a UTF-8 JSON document")
    error.http_status = 400
    return error


def is_json_content_type(value: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json`` (parameters ignored)."""
    media = (value or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def field_of(location: Sequence[Any]) -> str:
    """``("body", "messages", 0)`` -> ``"messages[0]"``; the request part alone names itself."""
    parts = list(location)
    if len(parts) > 1 and parts[0] in _REQUEST_PARTS:
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
