"""Small raw-ASGI helpers of the gateway: problem responses, request ids, trace context."""

from __future__ import annotations

import random
import re
from typing import Any

from servicekit.errors import PROBLEM_JSON, ProblemError, dumps_problem
from servicekit.logging import REQUEST_ID_MAX_LENGTH, looks_personal

Scope = dict[str, Any]
Message = dict[str, Any]

# A client's X-Request-Id is kept only if it is short and plain: it ends up in every log line and
# in the audit records of the services, which keep an id no longer than this (one id everywhere).
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{8,%d}$" % REQUEST_ID_MAX_LENGTH)
# W3C Trace Context, version 00 exactly; a later version may append fields after a dash.
_TRACEPARENT = re.compile(rb"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16


def new_request_id() -> bytes:
    # Unique, not secret: a request id names a request in the logs and grants nothing, so the
    # process's PRNG (seeded from the OS at start) serves, without a system call per request.
    return b"%032x" % random.getrandbits(128)


def accept_request_id(value: bytes | None) -> bytes:
    """The caller's request id if it is safe to propagate and log, else a fresh one: one that
    holds what looks like an ID number or a mobile number is not (log lines are not redacted
    for their request id)."""
    if value and _REQUEST_ID.match(value) and not looks_personal(value.decode("ascii")):
        return value
    return new_request_id()


def valid_traceparent(value: bytes) -> bool:
    match = _TRACEPARENT.match(value)
    if match is None:
        return False
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == b"ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return False
    return rest is None if version == b"00" else True


def problem_parts(err: ProblemError, request_id: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of an RFC 9457 problem. No ``instance``: the path is the caller's input."""
    body = dumps_problem(err)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-request-id", request_id),
    ]
    headers.extend(
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()
    )
    return headers, body


async def send_problem(
    send: Any, err: ProblemError, request_id: bytes, *, head: bool = False
) -> None:
    """Answer with an RFC 9457 problem."""
    headers, body = problem_parts(err, request_id)
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
