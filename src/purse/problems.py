"""RFC 9457 problem+json for every error the HTTP layer answers with.

``PurseError`` carries the code, status and message; FastAPI's validation errors
and Starlette's HTTP errors are mapped onto the same shape; anything unexpected
is answered by the request middleware (``purse.app``) with a generic 500 that
says nothing about the internals, logged with the request id.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from purse.errors import (
    HttpError,
    MethodNotAllowed,
    NotFound,
    PurseError,
    ValidationFailed,
)
from purse.i18n import N_, N_plural, ngettext, normalize_locale, translate
from purse.routing import allowed_methods

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://purse.dev/problems/"


class Problem(BaseModel):
    """An RFC 9457 problem: every error purse answers with, with a stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    retryable: bool
    next_step: str | None = None
    instance: str | None = None
    request_id: str | None = None


_PROBLEM_STATUSES = {
    400: "The request is malformed (a missing Idempotency-Key, say).",
    401: "No valid credentials.",
    403: "Not allowed for this caller, or a recent step-up is needed.",
    404: "No such object, or not the caller's.",
    405: "This method is not allowed here.",
    408: "The request body arrived too slowly; send the request again.",
    409: "The request conflicts with the current state (not enough money, say).",
    413: "The request body is larger than this address accepts.",
    422: "The body or a parameter is not valid.",
    429: "Too many attempts; wait as Retry-After says.",
    503: "purse is overloaded or a part it depends on is unavailable; wait as Retry-After "
    "says and retry with the same key.",
}


# Pydantic's error types and what purse says for each, in the caller's language; the
# values come from the error's context (``max_length``, ``le``...). A type not listed
# keeps Pydantic's English message. A pair of forms is chosen by the named count.
_NUMBER = N_("Must be a number.")
_WHOLE_NUMBER = N_("Must be a whole number.")
_DATE = N_("Must be a date such as 2026-11-30.")
_DATETIME = N_("Must be a date and time such as 2026-11-30T08:00:00Z.")
_OBJECT = N_("Must be a JSON object.")
_ONE_OF = N_("Must be one of: {expected}.")
VALIDATION_MESSAGES: dict[str, str | tuple[tuple[str, str], str]] = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not expected here."),
    "json_invalid": N_("The body is not valid JSON."),
    "string_type": N_("Must be a string."),
    "string_unicode": N_("Must be valid UTF-8 text."),
    "string_too_short": (
        N_plural(
            "Must have at least {min_length} character.",
            "Must have at least {min_length} characters.",
        ),
        "min_length",
    ),
    "string_too_long": (
        N_plural(
            "Must have at most {max_length} character.",
            "Must have at most {max_length} characters.",
        ),
        "max_length",
    ),
    "string_pattern_mismatch": N_("Must match the pattern {pattern}."),
    "int_type": _WHOLE_NUMBER,
    "int_parsing": _WHOLE_NUMBER,
    "int_from_float": _WHOLE_NUMBER,
    "float_type": _NUMBER,
    "float_parsing": _NUMBER,
    "decimal_type": _NUMBER,
    "decimal_parsing": _NUMBER,
    "bool_type": N_("Must be true or false."),
    "bool_parsing": N_("Must be true or false."),
    "greater_than": N_("Must be greater than {gt}."),
    "greater_than_equal": N_("Must be at least {ge}."),
    "less_than": N_("Must be less than {lt}."),
    "less_than_equal": N_("Must be at most {le}."),
    "literal_error": _ONE_OF,
    "enum": _ONE_OF,
    "dict_type": _OBJECT,
    "model_type": _OBJECT,
    "model_attributes_type": _OBJECT,
    "list_type": N_("Must be a list."),
    "too_short": (
        N_plural("Must have at least {min_length} item.", "Must have at least {min_length} items."),
        "min_length",
    ),
    "too_long": (
        N_plural("Must have at most {max_length} item.", "Must have at most {max_length} items."),
        "max_length",
    ),
    "date_type": _DATE,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    "datetime_type": _DATETIME,
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "uuid_type": N_("Must be a UUID."),
    "uuid_parsing": N_("Must be a UUID."),
}


def validation_message(item: dict[str, Any], locale: str) -> str:
    """One of Pydantic's validation errors in ``locale`` (English if its type is not known)."""
    wording = VALIDATION_MESSAGES.get(str(item.get("type", "")))
    context = item.get("ctx") or {}
    if wording is None:
        return str(item.get("msg", ""))
    if isinstance(wording, tuple):
        forms, count_field = wording
        text = ngettext(*forms, int(context.get(count_field, 2)), locale)
    else:
        text = translate(wording, locale)
    values = {key: str(value) for key, value in context.items()}
    if "expected" in values and normalize_locale(locale) == "zh-CN":
        # Pydantic joins the choices in English: "'x', 'y' or 'z'".
        values["expected"] = values["expected"].replace(", ", "、").replace(" or ", "、")
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):  # a Pydantic that gives other context
        return str(item.get("msg", ""))


def problem_responses() -> dict[int | str, dict[str, Any]]:
    """The errors every API route may answer with, documented in the OpenAPI schema."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "model": Problem,
            "description": description,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status, description in _PROBLEM_STATUSES.items()
    }


def request_locale(request: Request) -> str:
    return normalize_locale(request.headers.get("accept-language", "").split(",")[0])


def problem_response(
    request: Request, error: PurseError, *, extra: dict[str, Any] | None = None
) -> JSONResponse:
    locale = request_locale(request)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": error.title_message(locale),
        "status": error.status,
        "detail": error.message(locale),
        "code": error.code,
        "retryable": error.retryable,
        "next_step": error.next_step_message(locale) or None,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    body.update({k: v for k, v in error.public_data(locale).items() if k not in body})
    if extra:
        body.update(extra)
    headers = {"Content-Language": locale, **_problem_headers(error)}
    return JSONResponse(body, status_code=error.status, media_type=PROBLEM_JSON, headers=headers)


def _problem_headers(error: PurseError) -> dict[str, str]:
    """What the status asks for: when to come back, how to authenticate, that the body is unread.

    An error raised before the body was read (408, 413) closes the connection: the rest of the
    body is still on its way, and HTTP has no way to skip it but to read it.
    """
    headers: dict[str, str] = {}
    if error.status in (429, 503):
        headers["Retry-After"] = str(error.data.get("retry_after_seconds", 1))
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if error.status in (408, 413):
        headers["Connection"] = "close"
    return headers


def wants_html(request: Request) -> bool:
    """A browser on a page route gets an HTML page; API clients always get problem+json."""
    if request.url.path.startswith("/v1/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def html_problem(request: Request, error: PurseError) -> Response:
    from purse.web.templating import render

    response = render(request, "error.html", status_code=error.status, problem=error)
    response.headers.update(_problem_headers(error))
    return response


def error_response(request: Request, error: PurseError) -> Response:
    """The error as the caller reads it: a page in their language for a browser on a page
    route, problem+json for everyone else."""
    if wants_html(request):
        return html_problem(request, error)
    return problem_response(request, error)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(PurseError)
    async def _purse_error(request: Request, error: PurseError) -> Response:
        if error.status >= 500:
            log.warning("request.failed", code=error.code, error=repr(error.__cause__ or error))
        return error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> Response:
        if wants_html(request):
            return html_problem(request, ValidationFailed())
        locale = request_locale(request)
        errors = [
            {
                "location": [str(part) for part in item.get("loc", ())],
                "message": validation_message(item, locale),
                "type": str(item.get("type", "")),
            }
            for item in error.errors()
        ]
        return problem_response(request, ValidationFailed(), extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            # A browser that followed a wrong link gets the error page in its language.
            return error_response(request, NotFound())
        if error.status_code == 405:
            response = problem_response(request, MethodNotAllowed())
            # Every method the path takes: Starlette's own Allow names only the first route's.
            response.headers["Allow"] = ", ".join(
                allowed_methods(request.app, request.url.path)
            ) or (error.headers or {}).get("Allow", "")
            return response
        mapped = HttpError(detail=str(error.detail))
        response = problem_response(request, mapped, extra={"status": error.status_code})
        response.status_code = error.status_code
        return response
