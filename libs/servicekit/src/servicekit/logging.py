"""JSON-lines logging for every process: one object per line on stderr, with trace and request ids.

Personal data never belongs in a log line; ``RedactingFilter`` is the last line of defence.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ID_NUMBER_MASK",
    "PHONE_MASK",
    "AccessLogMiddleware",
    "JsonFormatter",
    "RedactingFilter",
    "REQUEST_ID_MAX_LENGTH",
    "accept_request_id",
    "configure_logging",
    "log_access",
    "redact",
    "request_id_var",
]

# Set by the request edge (middleware) so every line logged while serving a request carries it.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# A caller's X-Request-Id is kept only if it is short and plain: it goes into every log line, and
# into the audit record of every read of personal data (``AuditRecord.request_id``, as long as
# this). The gateway (gateway.asgi) keeps no longer an id, so a request has one id in every service.
REQUEST_ID_MAX_LENGTH = 64
REQUEST_ID = re.compile(rf"^[A-Za-z0-9._:\-]{{1,{REQUEST_ID_MAX_LENGTH}}}$")


def accept_request_id(value: str) -> str:
    """The caller's request id if it is safe to log and echo, else a fresh one.

    An id that holds what looks like an ID number or a mobile number is not kept: it goes into
    every log line of the request, which the redaction filter does not look into."""
    return value if REQUEST_ID.match(value) and not looks_personal(value) else uuid.uuid4().hex

ID_NUMBER_MASK = "[ID-REDACTED]"
PHONE_MASK = "[PHONE-REDACTED]"

# An 18-character resident ID (17 digits + check digit or X), optionally written in groups
# 6-8-4. The look-arounds stop matches inside longer numbers and hex strings (trace ids),
# but not next to Chinese text, where \b would fail because CJK characters count as \w.
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])\d{6}[ -]?\d{8}[ -]?\d{3}[\dXx](?![\dA-Za-z])")
# A mainland mobile number, optionally with +86 and written in groups 3-4-4.
_PHONE = re.compile(r"(?<![\dA-Za-z+])(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?![\dA-Za-z])")

# What every match of either holds: three digits, perhaps a space or hyphen, four digits (the
# end of an ID number's area code and the start of its birth date; a mobile number's prefix and
# first group). Most text has no such run, and this finds that in a third of the time the two
# full patterns take; ASCII text is looked at in ASCII (``\d`` also takes other scripts' digits,
# which the full patterns mask).
_DIGIT_RUN = re.compile(r"\d{3}[ -]?\d{4}")
_ASCII_DIGIT_RUN = re.compile(r"[0-9]{3}[ -]?[0-9]{4}")

# httpx logs every request URL, query string included, at INFO.
_QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_HANDLER_MARK = "_servicekit_json_handler"


def redact(text: str) -> str:
    """Mask anything in ``text`` that looks like a resident ID number or a mobile number."""
    if not _may_be_personal(text):
        return text
    return _PHONE.sub(PHONE_MASK, _ID_NUMBER.sub(ID_NUMBER_MASK, text))


def looks_personal(text: str) -> bool:
    """Whether ``text`` holds anything ``redact`` would mask."""
    return _may_be_personal(text) and (_ID_NUMBER.search(text) is not None or _PHONE.search(text) is not None)


def _may_be_personal(text: str) -> bool:
    return (_ASCII_DIGIT_RUN if text.isascii() else _DIGIT_RUN).search(text) is not None


class RedactingFilter(logging.Filter):
    """Masks ID numbers and phone numbers in the message, its arguments and string extras.

    The message is rendered once (``msg % args``) and the result redacted, so a number passed
    as an int, or split between the format string and an argument, is caught as well.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format call: the handler reports it, with its args
            return True
        record.msg = redact(message)
        record.args = None
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """Renders a record as one JSON object: the core fields, trace/request ids, extras."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record.created, record.levelname, record.name, record.getMessage())
        for key, value in vars(record).items():
            # An explicit trace_id extra (e.g. from an event's traceparent) fills in when no
            # span is current; it never overrides the core fields.
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            # Exception messages may quote input values: redact the rendered traceback too.
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return render(entry)

    def entry(self, created: float, level: str, logger: str, message: str) -> dict[str, Any]:
        """A line's core fields and the current trace and request ids."""
        entry: dict[str, Any] = {
            "ts": _timestamp(created),
            "level": level,
            "logger": logger,
            "message": message,
            "service": self.service_name,
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        return entry


def render(entry: dict[str, Any]) -> str:
    try:
        return orjson.dumps(entry, default=str).decode()
    except TypeError:  # what orjson does not take (an int past 64 bits, a dict with other keys than str)
        return json.dumps(entry, ensure_ascii=False, default=str)


_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """``created`` (seconds since the epoch) as UTC ISO 8601 to the millisecond, with a Z; the
    date and time of day made once a second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


def configure_logging(
    service_name: str, level: str = "INFO", *, stream: TextIO | None = None
) -> None:
    """Send every log record of the process to ``stream`` (stderr) as JSON lines.

    Idempotent: a second call replaces the handler installed by the first. uvicorn's own
    handlers are removed so its error log flows through here; its access log is silenced
    because it prints the query string (add ``AccessLogMiddleware`` instead). Run uvicorn with
    ``log_config=None`` so it does not reinstall its handlers after this call.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter(service_name))
    # On the handler, not a logger: logger filters do not see records propagated from children.
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())

    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.addHandler(logging.NullHandler())
    access.propagate = False
    access.disabled = True

    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet_level, root.level))


class AccessLogMiddleware:
    """One access line per HTTP request: method, path, route, status, duration; no query string.

    Place it inside the telemetry middleware (i.e. add it with ``app.add_middleware``) so the
    line carries the request's trace id. Probe paths log at DEBUG to keep the log readable.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger_name: str = "servicekit.access",
        quiet_paths: Iterable[str] = ("/livez", "/readyz", "/metrics"),
    ) -> None:
        self.app = app
        self.log = logging.getLogger(logger_name)
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            log_access(self.log, scope.get("method", ""), scope.get("path", ""),
                       getattr(scope.get("route"), "path_format", None), status, start,
                       quiet=scope.get("path") in self.quiet_paths)


def log_access(log: logging.Logger, method: str, path: str, route: str | None, status: int, start: float,
               *, quiet: bool = False) -> None:
    """The access line of a request that began at ``start`` (``time.perf_counter()``); at DEBUG
    for a probe (``quiet``). Also written by ``servicekit.fastread`` for the reads it answers.

    When the kit's JSON handler (``configure_logging``) is the only one the line would reach, as
    in a running service, the line is rendered and written to it directly, without a LogRecord:
    the same line (``JsonFormatter`` makes its core fields), with the method and the path
    redacted here, as ``RedactingFilter`` would have -- the route is the application's template
    and the status a number. That is a third of the cost of the record's way (filter, formatter,
    handler), which is taken whenever anything else -- a test's capture, another handler or
    filter -- could see the record."""
    level = logging.DEBUG if quiet else logging.INFO
    if not log.isEnabledFor(level):
        return
    duration = round((time.perf_counter() - start) * 1000, 3)
    handler = _sole_json_handler(log, level)
    if handler is None:
        # The record made directly: Logger.log would also look up the calling frame (file,
        # line, function), which no line prints.
        log.handle(log.makeRecord(
            log.name, level, "", 0, "%s %s %d", (method, path, status), None,
            extra={"http_method": method, "path": path, "route": route, "status": status, "duration_ms": duration},
        ))
        return
    if method not in _METHODS:
        method = redact(method)
    path = redact(path)
    formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
    entry = formatter.entry(time.time(), logging.getLevelName(level), log.name, f"{method} {path} {status}")
    entry["http_method"] = method
    entry["path"] = path
    entry["route"] = route
    entry["status"] = status
    entry["duration_ms"] = duration
    line = render(entry) + handler.terminator
    handler.acquire()
    try:
        handler.stream.write(line)
        handler.flush()
    except Exception:  # as StreamHandler.emit: reported on stderr, the request goes on
        handler.handleError(log.makeRecord(log.name, level, "", 0, "an access line could not be written",
                                           None, None))
    finally:
        handler.release()


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def _sole_json_handler(log: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """The kit's JSON handler, as ``configure_logging`` left it, if it is the only handler a
    record of ``log`` at ``level`` would reach and no logger's filter would see it first."""
    if log.filters:
        return None
    found: logging.Handler | None = None
    current: logging.Logger | None = log
    while current is not None:
        for handler in current.handlers:
            if found is not None or not getattr(handler, _HANDLER_MARK, False):
                return None
            found = handler
        current = current.parent if current.propagate else None
    if not isinstance(found, logging.StreamHandler) or level < found.level \
            or type(found.formatter) is not JsonFormatter \
            or [type(f) for f in found.filters] != [RedactingFilter]:
        return None
    return found
