"""JSON logs for the gateway: servicekit.logging when it is there, a small stand-in until then.

The stand-in exists only because servicekit.logging was being written alongside the gateway;
once it has landed this module just re-exports it.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

try:  # pragma: no cover - depends on which servicekit is installed
    from servicekit.logging import configure_logging, request_id_var
except ImportError:  # pragma: no cover
    request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)  # type: ignore[no-redef]

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message",
        "asctime",
        "taskName",
    }

    class _JsonFormatter(logging.Formatter):
        def __init__(self, service_name: str) -> None:
            super().__init__()
            self.service_name = service_name

        def format(self, record: logging.LogRecord) -> str:
            entry = {
                "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
                "service": self.service_name,
            }
            if (request_id := request_id_var.get()) and "request_id" not in vars(record):
                entry["request_id"] = request_id
            entry.update(
                (k, v) for k, v in vars(record).items() if k not in _STANDARD and k not in entry
            )
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            return json.dumps(entry, ensure_ascii=False, default=str)

    def configure_logging(service_name: str, level: str = "INFO") -> None:  # type: ignore[misc]
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonFormatter(service_name))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(level.upper())
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
        logging.getLogger(
            "uvicorn.access"
        ).disabled = True  # the gateway writes its own access line


__all__ = ["configure_logging", "request_id_var"]
