"""Errors as RFC 9457 problem details: one hierarchy, rendered the same way by every process.

A ``ProblemError`` subclass carries its status and a stable ``type``; its ``detail`` is written
for the caller and must never contain personal data or echo input values. Anything else that
escapes a handler is a bug: it becomes a bare 500 whose body says only the trace id.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.db import lock_conflict
from servicekit.groupcommit import GroupWriteFailed
from servicekit.telemetry import current_trace_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:zhongfu:problem:"


class FieldIssue(BaseModel):
    """One invalid part of a request: where and what, never the value itself."""

    location: str = Field(examples=["body.members.0.resident_id"])
    issue: str = Field(examples=["string_too_long"])
    message: str = Field(examples=["String should have at most 64 characters"])


class Problem(BaseModel):
    """An RFC 9457 problem details document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[TYPE_PREFIX + "not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["No household with that id is in your jurisdiction."])
    instance: str | None = None
    trace_id: str | None = None
    errors: list[FieldIssue] | None = None


class ProblemError(Exception):
    """Base of every expected failure. Subclasses set ``status``, ``slug`` and ``title``."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: list[FieldIssue] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors
        self.extensions = extensions

    @classmethod
    def type_uri(cls) -> str:
        return TYPE_PREFIX + cls.slug

    def to_problem(self, instance: str | None = None, trace_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri(),
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
        }
        if instance:
            body["instance"] = instance
        if trace_id:
            body["trace_id"] = trace_id
        if self.errors:
            body["errors"] = [e.model_dump() for e in self.errors]
        body.update(self.extensions)
        return body


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedBody(ProblemError):
    status, slug, title = 400, "malformed-body", "The request body is not well-formed"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="zhongfu"'})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed for your role"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class Gone(ProblemError):
    status, slug, title = 410, "gone", "No longer available"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "The resource has changed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported content type"


class Unprocessable(ProblemError):
    status, slug, title = 422, "validation-failed", "The request is not valid"


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "If-Match is required"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class BadGateway(ProblemError):
    status, slug, title = 502, "bad-gateway", "An upstream service failed"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class GatewayTimeout(ProblemError):
    status, slug, title = 504, "gateway-timeout", "An upstream service did not answer in time"


_STATUS_CLASSES: dict[int, type[ProblemError]] = {
    cls.status: cls
    for cls in (
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, Gone,
        PreconditionFailed, PayloadTooLarge, UnsupportedMediaType, Unprocessable,
        PreconditionRequired, TooManyRequests, BadGateway, ServiceUnavailable, GatewayTimeout,
    )
}


def problem_for_status(status: int, detail: str | None = None) -> ProblemError:
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        err = ProblemError(detail)
        err.status = status  # type: ignore[misc]
        return err
    return cls(detail)


def problem_response(err: ProblemError, request: Request | None = None) -> JSONResponse:
    trace_id = current_trace_id()
    instance = request.url.path if request is not None else None
    headers = dict(err.headers)
    return JSONResponse(
        err.to_problem(instance=instance, trace_id=trace_id),
        status_code=err.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def validation_issues(exc: RequestValidationError) -> tuple[list[FieldIssue], bool]:
    """Turn pydantic errors into issues without the offending input; tell if the JSON was broken."""
    issues: list[FieldIssue] = []
    malformed = False
    for e in exc.errors():
        kind = str(e.get("type", "invalid"))
        if kind == "json_invalid":
            malformed = True
        # pydantic messages can quote the input ("Input should be 'a' or 'b'" is fine, but
        # "Value error, <input>" from custom validators is not): keep only the message of
        # known-safe kinds and a generic one otherwise.
        message = str(e.get("msg", "invalid")) if kind in _SAFE_MESSAGE_KINDS else _GENERIC.get(kind, "Invalid value")
        issues.append(FieldIssue(location=_location(tuple(e.get("loc", ()))), issue=kind, message=message))
    return issues, malformed


_SAFE_MESSAGE_KINDS = {
    "missing", "extra_forbidden", "string_too_long", "string_too_short", "too_long", "too_short",
    "int_parsing", "int_type", "float_parsing", "float_type", "bool_parsing", "bool_type",
    "string_type", "list_type", "dict_type", "model_type", "greater_than", "greater_than_equal",
    "less_than", "less_than_equal", "literal_error", "enum", "date_parsing", "date_from_datetime_parsing",
    "datetime_parsing", "datetime_from_date_parsing", "uuid_parsing", "uuid_type", "string_pattern_mismatch",
    "multiple_of", "decimal_parsing", "int_from_float", "json_invalid", "json_type", "union_tag_invalid",
    "union_tag_not_found", "url_parsing", "url_scheme", "too_many_items",
    "day_format", "instant_format",  # servicekit.isotime: messages of its own, never the input
}
_GENERIC = {"value_error": "Invalid value", "assertion_error": "Invalid value"}


class ValueErrorDetail(ValueError):
    """Raise from a validator with a message that is safe to show (it must not quote the input)."""


def install_error_handlers(app: FastAPI) -> None:
    """Replace FastAPI's default handlers so every error is a problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues, malformed = validation_issues(exc)
        if malformed:
            err: ProblemError = MalformedBody("The body could not be parsed as JSON.")
        else:
            n = len(issues)
            err = Unprocessable(
                f"{n} part{'s' if n != 1 else ''} of the request {'are' if n != 1 else 'is'} not valid; see errors.",
                errors=issues,
            )
        return problem_response(err, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing errors (404, 405) and anything raised as a bare HTTPException.
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # FastAPI's own answer when the JSON parser gives up on a body nested too deeply
            return problem_response(MalformedBody("The body is nested too deeply to be read as JSON."), request)
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
        err = problem_for_status(exc.status_code, detail)
        if exc.headers:
            err.headers.update(exc.headers)
        return problem_response(err, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(exc)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        err = database_problem(exc)
        return _internal(exc) if err is None else problem_response(err, request)

    for kind in (*DATABASE_ERRORS, GroupWriteFailed):
        app.add_exception_handler(kind, _database)


def database_problem(exc: BaseException) -> ProblemError | None:
    """The 503 a database error is answered with, or None when it is an internal error (500)."""
    if isinstance(exc, GroupWriteFailed) and exc.__cause__ is not None:
        exc = exc.__cause__  # the group's statement failed: for what, says its cause
    if not isinstance(exc, DATABASE_ERRORS):
        return None
    if lock_conflict(exc):
        # PostgreSQL aborted the transaction for another's (a deadlock): nothing was committed.
        log.warning("transaction aborted by a concurrent one (%s)", type(exc).__name__)
        return ServiceUnavailable(
            "The request met a concurrent change and nothing of it was applied. Retry it (with the same "
            "Idempotency-Key, if it had one).", headers={"Retry-After": "1"})
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated:  # not a lost connection
        return None
    # The server restarted or failed over under a connection in use (the pool replaces its
    # connections now). Whether a commit under way took effect is unknown: a retry with the
    # same Idempotency-Key is safe either way.
    log.warning("database connection lost (%s)", type(exc).__name__)
    return ServiceUnavailable(
        "The database connection was lost. Retry the request (with the same Idempotency-Key, if it had one).",
        headers={"Retry-After": "1"})


def internal_problem(exc: BaseException) -> dict[str, Any]:
    """The body of the 500 for an unexpected error, which is logged here with its traceback."""
    trace_id = current_trace_id()
    # The exception text may hold values; the log keeps its type and traceback, the body only the
    # trace id, so support can find it.
    log.error("unhandled error", exc_info=exc, extra={"trace_id": trace_id})
    return {
        "type": TYPE_PREFIX + "internal",
        "title": "Internal error",
        "status": 500,
        "detail": "Something went wrong on our side. Quote the trace id when reporting it.",
        "trace_id": trace_id,
    }


def _internal(exc: Exception) -> JSONResponse:
    return JSONResponse(internal_problem(exc), status_code=500, media_type=PROBLEM_JSON)


def _database_errors() -> tuple[type[Exception], ...]:
    """What a lost database connection or a transaction aborted for another's raises:
    SQLAlchemy's error (a disconnect when its ``connection_invalidated`` is set), or the
    driver's own (statements run on the driver connection directly)."""
    try:
        from asyncpg.exceptions import ConnectionDoesNotExistError, PostgresConnectionError, TransactionRollbackError
    except ImportError:  # pragma: no cover -- the embedded default has no asyncpg to lose
        return (DBAPIError,)
    return DBAPIError, ConnectionDoesNotExistError, PostgresConnectionError, TransactionRollbackError


DATABASE_ERRORS = _database_errors()


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries so every emitted status code is declared."""
    out: dict[int | str, dict[str, Any]] = {}
    for cls in errors:
        out[cls.status] = {
            "model": Problem,
            "description": cls.title,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def dumps_problem(err: ProblemError, instance: str | None = None) -> bytes:
    """The problem as bytes, for pure-ASGI code paths (middleware) that cannot use JSONResponse."""
    return json.dumps(err.to_problem(instance=instance, trace_id=current_trace_id()), ensure_ascii=False).encode()
