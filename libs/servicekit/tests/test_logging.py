"""configure_logging: JSON lines with trace and request ids, uvicorn routed, no personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from servicekit.logging import (
    ID_NUMBER_MASK,
    PHONE_MASK,
    AccessLogMiddleware,
    REQUEST_ID_MAX_LENGTH,
    accept_request_id,
    configure_logging,
    log_access,
    looks_personal,
    redact,
    request_id_var,
)
from servicekit.logging import _ID_NUMBER, _PHONE

ID_NUMBER = "330106199001010014"
PHONE = "13812345678"
TOUCHED_LOGGERS = (
    "",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "servicekit.access",
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """configure_logging into a buffer; the loggers it touches are restored afterwards."""
    saved = {}
    for name in TOUCHED_LOGGERS:
        lg = logging.getLogger(name)
        saved[name] = (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
    buffer = io.StringIO()
    configure_logging("testsvc", "DEBUG", stream=buffer)
    yield buffer
    for name, (handlers, level, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_core_fields(stream: io.StringIO) -> None:
    logging.getLogger("testsvc.x").info("household %s updated", "h-1")

    [line] = lines(stream)
    assert line["message"] == "household h-1 updated"
    assert line["level"] == "INFO"
    assert line["logger"] == "testsvc.x"
    assert line["service"] == "testsvc"
    assert line["ts"].endswith("Z")
    assert datetime.fromisoformat(line["ts"]).utcoffset().total_seconds() == 0
    assert "trace_id" not in line and "request_id" not in line


def test_lines_inside_a_span_carry_its_trace_and_span_ids(stream: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("testsvc").warning("inside")
    logging.getLogger("testsvc").warning("outside")

    inside, outside = lines(stream)
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in outside


def test_request_id_and_extras_are_included(stream: io.StringIO) -> None:
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("testsvc").info("with extras", extra={"household_id": "h-9", "count": 3})
    finally:
        request_id_var.reset(token)

    [line] = lines(stream)
    assert line["request_id"] == "req-42"
    assert line["household_id"] == "h-9" and line["count"] == 3


def test_extras_of_any_kind_still_make_a_line(stream: io.StringIO) -> None:
    """orjson encodes the line; what it refuses (an int past 64 bits) goes through json, what
    neither knows is written as its str()."""
    logging.getLogger("testsvc").info("odd extras", extra={"big": 2**70, "when": datetime(2026, 11, 28), "set": {1}})

    [line] = lines(stream)
    assert line["big"] == 2**70 and line["when"].startswith("2026-11-28") and line["set"] == "{1}"


def test_exceptions_are_rendered_and_redacted(stream: io.StringIO) -> None:
    try:
        raise ValueError(f"bad resident {ID_NUMBER}")
    except ValueError:
        logging.getLogger("testsvc").exception("lookup failed")

    [line] = lines(stream)
    assert "ValueError" in line["exception"] and "Traceback" in line["exception"]
    assert ID_NUMBER not in json.dumps(line, ensure_ascii=False)


def test_configuring_twice_does_not_duplicate_lines(stream: io.StringIO) -> None:
    configure_logging("testsvc", "DEBUG", stream=stream)
    configure_logging("testsvc", "DEBUG", stream=stream)
    logging.getLogger("testsvc").info("once")

    assert len(lines(stream)) == 1


def test_uvicorn_error_flows_through_and_its_access_log_is_silenced(stream: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/x?q={ID_NUMBER}", "1.1", 200
    )

    [line] = lines(stream)
    assert line["logger"] == "uvicorn.error" and line["message"] == "Started server process"


def test_httpx_request_lines_with_urls_are_quietened(stream: io.StringIO) -> None:
    logging.getLogger("httpx").info("HTTP Request: GET http://registry/x?q=1")
    assert lines(stream) == []


@pytest.mark.parametrize(
    ("message", "args"),
    [
        ("resident %s", (ID_NUMBER,)),
        (f"resident {ID_NUMBER}", ()),
        ("resident %d", (int(ID_NUMBER),)),  # a number passed as an int
        ("resident %s", ("33010619900101001X",)),  # X check digit
        ("resident %s", ("33010619900101001x",)),
        ("resident %s", ("330106 19900101 0014",)),  # written in groups
        ("身份证号%s。", (ID_NUMBER,)),  # glued to Chinese text
        ("payload %s", ({"id_number": ID_NUMBER},)),  # inside a structure
    ],
)
def test_id_numbers_are_masked_in_messages_and_args(
    stream: io.StringIO, message: str, args: tuple
) -> None:
    logging.getLogger("testsvc").info(message, *args)

    [line] = lines(stream)
    assert ID_NUMBER_MASK in line["message"]
    assert "0101001" not in line["message"] and "19900101" not in line["message"]


@pytest.mark.parametrize(
    "phone",
    [PHONE, "+86 13812345678", "+8613812345678", "138-1234-5678", "138 1234 5678", "19912345678"],
)
def test_mobile_numbers_are_masked(stream: io.StringIO, phone: str) -> None:
    logging.getLogger("testsvc").info("call %s please", phone, extra={"contact": f"tel:{phone}"})

    [line] = lines(stream)
    assert line["message"] == f"call {PHONE_MASK} please"
    assert line["contact"] == f"tel:{PHONE_MASK}"


@pytest.mark.parametrize(
    "text",
    [
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",  # hex ids are left alone
        "trace 12345678901234567890123456789012",  # even an all-digit one
        "area 330106001001",  # 12-digit area codes
        "at 1732780800123 ms",  # millisecond timestamps
        "count 12812345678",  # 11 digits, but not a mobile prefix
        "order 3301061990010100145",  # 19 digits: not an ID number
    ],
)
def test_lookalikes_are_not_masked(text: str) -> None:
    assert redact(text) == text


async def test_access_middleware_logs_method_path_status_duration_but_no_query(
    stream: io.StringIO,
) -> None:
    app = FastAPI()

    @app.get("/households/{household_id}")
    async def get_household(household_id: str) -> dict[str, str]:
        return {"id": household_id}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {}

    app.add_middleware(AccessLogMiddleware)
    logging.getLogger("servicekit.access").setLevel(logging.INFO)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get(f"/households/h-1?q={ID_NUMBER}&phone={PHONE}")
        await client.get("/livez")  # probes log at DEBUG, below this logger's level
        await client.get("/nowhere")

    found, missing = [line for line in lines(stream) if line["logger"] == "servicekit.access"]
    assert found["message"] == "GET /households/h-1 200"
    assert found["path"] == "/households/h-1"
    assert found["route"] == "/households/{household_id}"
    assert found["status"] == 200 and found["http_method"] == "GET"
    assert isinstance(found["duration_ms"], float) and found["duration_ms"] >= 0
    assert missing["status"] == 404 and missing["route"] is None
    raw = stream.getvalue()
    assert "?" not in raw and ID_NUMBER not in raw and PHONE not in raw


def _fully_redacted(text: str) -> str:
    """Both patterns over the whole text, as redact did before it looked for a digit run first."""
    return _PHONE.sub(PHONE_MASK, _ID_NUMBER.sub(ID_NUMBER_MASK, text))


# Digits of three scripts (ASCII, full width, Arabic-Indic), separators, letters, a plus, CJK.
_PIECES = st.text(alphabet="0123456789０１２３４５６７８９٠١٢٣ -+xXab/?=身份", max_size=40)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.sampled_from([ID_NUMBER, PHONE, "+86 138-1234-5678", "33010619900101001X",
                                                    "３３０１０６１９９００１０１００１４"])), max_size=4))
def test_the_quick_look_for_a_digit_run_never_lets_a_number_through(parts: list[str]) -> None:
    """redact skips text with no run of 3+4 digits; it must mask exactly what both patterns do."""
    text = "".join(parts)
    assert redact(text) == _fully_redacted(text)
    assert looks_personal(text) == (_fully_redacted(text) != text)


@pytest.mark.parametrize("value", [ID_NUMBER, f"req-{ID_NUMBER}", PHONE, "a-13812345678"])
def test_a_request_id_holding_a_number_is_replaced(value: str) -> None:
    fresh = accept_request_id(value)
    assert fresh != value and not looks_personal(fresh) and len(fresh) == 32


@pytest.mark.parametrize("value", ["req-42", "4bf92f3577b34da6a3ce929d0e0e4736", "trace.1732780800123", "r" * 64])
def test_a_plain_request_id_is_kept(value: str) -> None:
    assert accept_request_id(value) == value


def test_a_request_id_kept_fits_the_audit_record() -> None:
    # Every read of personal data records its request id; a longer one failed the record's
    # INSERT on PostgreSQL (varchar), and every read of its group with it.
    from servicekit.tables import AuditRecord

    assert AuditRecord.__table__.c.request_id.type.length == REQUEST_ID_MAX_LENGTH
    too_long = "r" * (REQUEST_ID_MAX_LENGTH + 1)
    assert accept_request_id(too_long) != too_long


def _access_line(stream: io.StringIO, path: str, *, method: str = "GET") -> dict:
    stream.seek(0)
    stream.truncate()
    tracer = TracerProvider().get_tracer("test")
    token = request_id_var.set("req-7")
    try:
        with tracer.start_as_current_span("request"):
            log_access(logging.getLogger("servicekit.access"), method, path, "/households/{household_id}", 200, 0.0)
    finally:
        request_id_var.reset(token)
    [line] = lines(stream)
    return line


@pytest.mark.parametrize("path", ["/households/h-1", f"/households/{ID_NUMBER}", f"/households/{PHONE}/x"])
@pytest.mark.parametrize("method", ["GET", ID_NUMBER])  # no server would take the second
def test_the_written_access_line_is_the_records_line(stream: io.StringIO, path: str, method: str) -> None:
    """Written straight to the kit's handler (the running service's case), the access line is the
    line the record's way makes -- fields, order, redaction -- but for its time and duration."""
    direct = _access_line(stream, path, method=method)
    other = logging.NullHandler()  # a second handler: the record's way must be taken
    logging.getLogger("servicekit.access").addHandler(other)
    try:
        through_record = _access_line(stream, path, method=method)
    finally:
        logging.getLogger("servicekit.access").removeHandler(other)

    for line in (direct, through_record):
        assert datetime.fromisoformat(line["ts"]).utcoffset().total_seconds() == 0
        assert line["duration_ms"] > 0
        assert len(line["trace_id"]) == 32 and len(line["span_id"]) == 16  # each call's own span
        for key in ("ts", "duration_ms", "trace_id", "span_id"):
            line[key] = "-"
    assert list(direct.items()) == list(through_record.items())
    assert direct["request_id"] == "req-7"
    raw = json.dumps(direct, ensure_ascii=False)
    assert ID_NUMBER not in raw and PHONE not in raw


def test_an_access_line_another_handler_may_see_goes_the_records_way(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="servicekit.access"):
        log_access(logging.getLogger("servicekit.access"), "GET", f"/households/{ID_NUMBER}", None, 404, 0.0)

    [record] = [r for r in caplog.records if r.name == "servicekit.access"]
    assert record.status == 404
    [line] = lines(stream)
    assert line["path"] == f"/households/{ID_NUMBER_MASK}"


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))  # 1970 to 2100
def test_a_lines_time_is_its_utc_iso_time_to_the_millisecond(created: float) -> None:
    """The time of day is made once a second and the milliseconds added: the same text as
    datetime's own ISO form, truncated to the millisecond (away from the microsecond rounding
    datetime does just below a millisecond's end)."""
    from datetime import UTC

    from servicekit.logging import _timestamp

    micros = round(created % 1 * 1e6)
    if micros % 1000 in (0, 999):
        return
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert _timestamp(created) == expected
    assert _timestamp(int(created) + 0.5).startswith(expected[:19])  # the same second, from the cache
