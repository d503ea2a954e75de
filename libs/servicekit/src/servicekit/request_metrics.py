"""``http.server.request.duration``: aggregated by servicekit rather than by the SDK's Histogram,
and exported through the same metric exporter as the SDK's instruments.

What a request is recorded under (``request_key``) is also what its server span's attributes
say (``request_attributes``); ``servicekit.telemetry`` uses both.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

__all__ = ["KNOWN_METHODS", "RequestDurations", "WithRequestDurations", "request_attributes", "request_key"]

KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)
# The semantic conventions' advisory buckets for http.server.request.duration, in seconds.
_DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


# (method, scheme, status, route, error type): what a request's duration is recorded under.
_RequestKey = tuple[str, str, int, str | None, str | None]
_OVERFLOW_KEY: _RequestKey = ("", "", 0, None, None)


def request_key(
    method: str, scheme: str, status: int, route: str | None, error: str | None = None
) -> _RequestKey:
    """What a request's duration is recorded under, and what its span's attributes say.

    ``error`` is the exception the request ended with; without one, a 5xx status or no
    response at all is the error.
    """
    if method not in KNOWN_METHODS:
        method = "_OTHER"
    if error is None and (status >= 500 or status == 0):
        error = str(status) if status else "incomplete_response"
    return (method, scheme, status, route, error)


def request_attributes(key: _RequestKey) -> dict[str, Any]:
    if key is _OVERFLOW_KEY:
        return {"otel.metric.overflow": True}
    method, scheme, status, route, error = key
    attributes: dict[str, Any] = {"http.request.method": method, "url.scheme": scheme}
    if status:
        attributes["http.response.status_code"] = status
    if route:
        attributes["http.route"] = route
    if error:
        attributes["error.type"] = error
    return attributes


class _DurationPoint:
    __slots__ = ("counts", "sum", "min", "max", "exemplars")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        # bucket -> (value, time, span id, trace id) of the latest sampled request in it
        self.exemplars: dict[int, tuple[float, int, int, int]] = {}


class RequestDurations:
    """``http.server.request.duration``, aggregated here rather than by the SDK's Histogram.

    The SDK's ``Histogram.record`` validates, copies and hashes the attributes of every
    measurement in generic code: 10-25 us a request on the benchmark machine, the largest part
    of what telemetry cost an endpoint. Here a request costs a bisect and a dict lookup on a
    tuple. The data leave through the same metric exporter as the SDK's own instruments
    (``WithRequestDurations``), as a cumulative explicit-bucket histogram with the semantic
    conventions' buckets and attributes, and an exemplar per bucket linking it to the latest
    sampled trace. At most ``CARDINALITY_LIMIT`` attribute sets, then one overflow point, as the
    SDK would do.
    """

    CARDINALITY_LIMIT = 2000

    def __init__(self, bounds: Sequence[float] = _DURATION_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.active = 0  # requests in flight (the middleware counts them)
        self._points: dict[_RequestKey, _DurationPoint] = {}
        self._lock = threading.Lock()  # the event loop records, the exporter's thread reads
        self._start = time.time_ns()

    def record(self, seconds: float, key: _RequestKey, sampled: SpanContext | None = None) -> None:
        bucket = bisect_left(self.bounds, seconds)  # bucket i holds (bounds[i-1], bounds[i]]
        with self._lock:
            point = self._points.get(key)
            if point is None:
                if len(self._points) >= self.CARDINALITY_LIMIT:
                    key = _OVERFLOW_KEY
                point = self._points.get(key)
                if point is None:
                    point = self._points[key] = _DurationPoint(len(self.bounds) + 1)
            point.counts[bucket] += 1
            point.sum += seconds
            if seconds < point.min:
                point.min = seconds
            if seconds > point.max:
                point.max = seconds
            if sampled is not None:
                point.exemplars[bucket] = (
                    seconds, time.time_ns(), sampled.span_id, sampled.trace_id
                )

    def observe_active(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(self.active)]

    def metric(self) -> Metric | None:
        """The histogram as the exporters take it; None before the first request."""
        now = time.time_ns()
        with self._lock:
            snapshot = [
                (key, list(p.counts), p.sum, p.min, p.max, list(p.exemplars.values()))
                for key, p in self._points.items()
            ]
        if not snapshot:
            return None
        points = [
            HistogramDataPoint(
                attributes=request_attributes(key),
                start_time_unix_nano=self._start,
                time_unix_nano=now,
                count=sum(counts),
                sum=total,
                bucket_counts=counts,
                explicit_bounds=self.bounds,
                min=low,
                max=high,
                exemplars=[
                    Exemplar({}, value, at, span_id=span_id, trace_id=trace_id)
                    for value, at, span_id, trace_id in exemplars
                ],
            )
            for key, counts, total, low, high, exemplars in snapshot
        ]
        return Metric(
            name="http.server.request.duration",
            description="Duration of HTTP server requests.",
            unit="s",
            data=Histogram(
                data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
            ),
        )


class WithRequestDurations(MetricExporter):
    """Passes the SDK's metrics on to ``inner`` with the request durations added."""

    def __init__(
        self, inner: MetricExporter, durations: RequestDurations, resource: Resource
    ) -> None:
        # The periodic reader asks its exporter for these; they are the inner exporter's.
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.inner = inner
        self.durations = durations
        self.scope = InstrumentationScope("servicekit.telemetry")
        self.resource = resource

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        metric = self.durations.metric()
        if metric is not None:
            scope = ScopeMetrics(scope=self.scope, metrics=[metric], schema_url="")
            resources = list(metrics_data.resource_metrics) if metrics_data else []
            if resources:
                first = resources[0]
                resources[0] = ResourceMetrics(
                    resource=first.resource,
                    scope_metrics=[*first.scope_metrics, scope],
                    schema_url=first.schema_url,
                )
            else:
                resources = [ResourceMetrics(self.resource, [scope], self.resource.schema_url)]
            metrics_data = MetricsData(resource_metrics=resources)
        return self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
