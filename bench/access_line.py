"""The CPU of one access line (``servicekit.logging.log_access``) as a running service writes it:
straight to the kit's JSON handler, against the record's way (LogRecord, redaction filter,
formatter, handler) that is taken whenever something else could see the record -- here a second,
discarding handler. Both write to /dev/null, inside a span, with a request id, for a household
read's path; the two take turns, and each keeps its best round (the machine is small and noisy).

    .venv/bin/python -m bench access_line
"""

from __future__ import annotations

import logging
import time
import uuid

from opentelemetry.sdk.trace import TracerProvider

from bench.common import report

ROUNDS = 5
LINES = 20_000


def _round(log: logging.Logger, log_access, paths: list[str]) -> float:
    """CPU microseconds a line over one round."""
    started = time.process_time()
    for i in range(LINES):
        log_access(log, "GET", paths[i % len(paths)], "/api/v1/households/{household_id}", 200, time.perf_counter())
    return (time.process_time() - started) / LINES * 1e6


def main() -> dict:
    from servicekit.logging import configure_logging, log_access, request_id_var

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    sink = open("/dev/null", "w")  # noqa: SIM115 -- closed below, after the handler is gone
    log = logging.getLogger("servicekit.access")
    discarding = logging.NullHandler()
    paths = [f"/api/v1/households/{uuid.uuid4()}" for _ in range(1000)]
    direct: list[float] = []
    through_record: list[float] = []
    try:
        configure_logging("registry", "INFO", stream=sink)
        token = request_id_var.set(uuid.uuid4().hex)
        with TracerProvider().get_tracer("bench").start_as_current_span("request"):
            for _ in range(ROUNDS):
                direct.append(_round(log, log_access, paths))
                log.addHandler(discarding)
                try:
                    through_record.append(_round(log, log_access, paths))
                finally:
                    log.removeHandler(discarding)
        request_id_var.reset(token)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        sink.close()
    best_direct, best_record = min(direct), min(through_record)
    figures = {
        "lines_per_round": LINES,
        "rounds": ROUNDS,
        "direct_us_per_line_each_round": [round(x, 2) for x in direct],
        "record_way_us_per_line_each_round": [round(x, 2) for x in through_record],
        "direct_us_per_line": round(best_direct, 2),
        "record_way_us_per_line": round(best_record, 2),
        "direct_to_record_way": round(best_direct / best_record, 3),
    }
    return report(
        "access_line", figures,
        goals={"direct_to_record_way": "< 0.5 (the line written straight costs under half the record's way)"},
        met={"direct_to_record_way": figures["direct_to_record_way"] < 0.5},
    )


if __name__ == "__main__":
    main()
