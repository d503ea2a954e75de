"""What tracing costs a request: the same endpoint under uvicorn with telemetry off and on.

"On" is production's set-up (ParentBased 10% sampling, batch processor, metrics) with exporters
that discard, so no network. Runs alternate off/on and each mode keeps its best, because the
machine is small and noisy; the CPU time per request, in the server and with the app called
in-process, is reported beside throughput as a steadier estimate.
Run: ``python -m bench telemetry_cost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.common import report

ROUNDS = 5
THROUGHPUT_SECONDS = 6.0
LATENCY_SECONDS = 2.5
WARMUP_SECONDS = 1.0
CONNECTIONS = 16
SAMPLE_RATIO = 0.1
PATH = "/api/v1/households:preview"
REPO = Path(__file__).resolve().parent.parent

# A household as a worker would submit it: validated field by field on every request.
BODY = (
    b'{"area_code":"330106001001","members":['
    b'{"relation":"head","birth_year":1968,"monthly_income":"1820.50","disability_level":null},'
    b'{"relation":"spouse","birth_year":1970,"monthly_income":"960.00","disability_level":2},'
    b'{"relation":"child","birth_year":2009,"monthly_income":"0","disability_level":null},'
    b'{"relation":"parent","birth_year":1941,"monthly_income":"310.00","disability_level":1}],'
    b'"flags":["chronic_illness","tuition"]}'
)


# ---- the server (runs in a child process) -------------------------------------------------


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relation: Literal["head", "spouse", "child", "parent", "other"]
    birth_year: int = Field(ge=1900, le=2030)
    monthly_income: Decimal = Field(ge=0, max_digits=10, decimal_places=2)
    disability_level: int | None = Field(default=None, ge=1, le=4)


class HouseholdDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    area_code: str = Field(pattern=r"^\d{12}$")
    members: list[Member] = Field(min_length=1, max_length=20)
    flags: list[str] = Field(default_factory=list, max_length=10)


class Preview(BaseModel):
    area_code: str
    size: int
    per_capita_income: Decimal
    elderly: int
    disabled: int
    flags: list[str]


def build_app(mode: Literal["off", "on"], *, install_global: bool = True) -> Any:
    """The endpoint under test, and the exporter count that proves tracing is on.

    "On" installs the global providers as a service does, unless ``install_global`` is False
    (the in-process measurement, where an "off" app shares the process).
    """
    from fastapi import FastAPI
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from servicekit.logging import configure_logging
    from servicekit.settings import ServiceSettings
    from servicekit.telemetry import setup_telemetry

    class Discard(SpanExporter):
        exported = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            Discard.exported += len(spans)
            return SpanExportResult.SUCCESS

    class DiscardMetrics(MetricExporter):
        def export(
            self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            return None

    app = FastAPI()
    served = [0]

    @app.post(PATH, response_model=Preview)
    async def preview(draft: HouseholdDraft) -> Preview:
        served[0] += 1
        income = sum((m.monthly_income for m in draft.members), Decimal(0))
        return Preview(
            area_code=draft.area_code,
            size=len(draft.members),
            per_capita_income=(income / len(draft.members)).quantize(Decimal("0.01")),
            elderly=sum(1 for m in draft.members if m.birth_year <= 1960),
            disabled=sum(1 for m in draft.members if m.disability_level is not None),
            flags=sorted(draft.flags),
        )

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bench/spans")
    async def spans() -> dict[str, int]:
        handle.tracer_provider and handle.tracer_provider.force_flush()
        return {"exported": Discard.exported, "requests": served[0]}

    settings = ServiceSettings(service_name="bench", otel_sample_ratio=SAMPLE_RATIO)
    configure_logging(settings.service_name, "WARNING")
    if mode == "on":
        handle = setup_telemetry(
            app,
            settings,
            exporter=Discard(),
            metric_exporter=DiscardMetrics(),
            processor="batch",
            install_global=install_global,
        )
    else:
        handle = setup_telemetry(app, settings)
    app.state.telemetry = handle
    return app


def serve(mode: Literal["off", "on"], port: int, core: int | None) -> None:
    import uvicorn

    if core is not None:
        os.sched_setaffinity(0, {core})
    app = build_app(mode)
    # As servicekit.runner runs a service: uvloop, httptools, no access log.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        log_config=None,
    )
    uvicorn.Server(config).run()
    app.state.telemetry.shutdown()


# ---- the load generator (this process) ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(mode: Literal["off", "on"], core: int | None) -> Iterator[tuple[str, int]]:
    """A uvicorn child process serving ``mode``; yields its base URL and pid."""
    port = _free_port()
    cli = ["serve", mode, str(port), "" if core is None else str(core)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.telemetry_cost", *cli],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc, log)
            yield base, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Any) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


async def _drive(base: str, server_pid: int, connections: int, seconds: float) -> dict[str, float]:
    """Closed-loop load: ``connections`` clients each send the next request on the last reply."""
    import aiohttp
    import psutil

    server = psutil.Process(server_pid)

    url = base + PATH
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            async with session.post(url, data=BODY, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - start)

        async def worker(until: float) -> None:
            while time.perf_counter() < until:
                await one()

        warm_until = time.perf_counter() + WARMUP_SECONDS
        await asyncio.gather(*(worker(warm_until) for _ in range(connections)))
        latencies.clear()
        cpu_before, server_before = time.process_time(), _cpu_seconds(server)
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(connections)))
        elapsed = time.perf_counter() - started
        cpu, server_cpu = time.process_time() - cpu_before, _cpu_seconds(server) - server_before
    return {
        "rps": len(latencies) / elapsed,
        # CPU time is steadier than throughput on a noisy machine: a second estimate.
        "server_cpu_us": server_cpu / len(latencies) * 1e6,
        "median_ms": statistics.median(latencies) * 1000,
        "errors": errors,
        # Near 1.0 the client, not the server, would be the bottleneck.
        "client_cpu": cpu / elapsed,
    }


def _cpu_seconds(process: Any) -> float:
    # All threads: the batch span processor and the metric reader count as telemetry's cost.
    times = process.cpu_times()
    return times.user + times.system


def _in_process_cost(loop_factory: Any, rounds: int = 7, requests: int = 1000) -> dict[str, float]:
    """CPU time per request with uvicorn and the network taken out: the app called as ASGI.

    Steadier than throughput when other work shares the machine; best of ``rounds``.
    """
    apps = {mode: build_app(mode, install_global=False) for mode in ("off", "on")}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def call(app: Any) -> None:
        messages = [{"type": "http.request", "body": BODY, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            return None

        await app(dict(scope), receive, send)

    async def measure(app: Any, n: int) -> float:
        started = time.process_time()  # all threads: the span processor's included
        for _ in range(n):
            await call(app)
        return (time.process_time() - started) / n * 1e6

    best = {"off": float("inf"), "on": float("inf")}
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            for app in apps.values():
                runner.run(measure(app, 200))
            for round_no in range(rounds):
                for mode in ("off", "on") if round_no % 2 == 0 else ("on", "off"):
                    best[mode] = min(best[mode], runner.run(measure(apps[mode], requests)))
    finally:
        for app in apps.values():
            app.state.telemetry.shutdown()
    return best


def _span_stats(base: str) -> dict[str, int]:
    import httpx

    return httpx.get(f"{base}/bench/spans", timeout=10).json()


def main() -> dict:
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        loop_factory = None
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_core, client_core = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    original_affinity = set(cpus)

    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    latency: dict[str, list[float]] = {"off": [], "on": []}
    with _server("off", server_core) as off, _server("on", server_core) as on:
        servers = {"off": off, "on": on}
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                for round_no in range(ROUNDS):
                    # Alternate which mode goes first, so drift does not favour either.
                    order = ("off", "on") if round_no % 2 == 0 else ("on", "off")
                    for mode in order:
                        runs[mode].append(
                            runner.run(_drive(*servers[mode], CONNECTIONS, THROUGHPUT_SECONDS))
                        )
                    for mode in order:
                        latency[mode].append(
                            runner.run(_drive(*servers[mode], 1, LATENCY_SECONDS))["median_ms"]
                        )
            spans = _span_stats(on[0])
            in_process = _in_process_cost(loop_factory)
        finally:
            if client_core is not None:
                os.sched_setaffinity(0, original_affinity)

    best_off = max(r["rps"] for r in runs["off"])
    best_on = max(r["rps"] for r in runs["on"])
    ratio = best_on / best_off
    added_us = (1 / best_on - 1 / best_off) * 1e6
    cpu_off = min(r["server_cpu_us"] for r in runs["off"])
    cpu_on = min(r["server_cpu_us"] for r in runs["on"])
    figures = {
        "throughput_off_rps": round(best_off),
        "throughput_on_rps": round(best_on),
        "throughput_ratio": round(ratio, 3),
        # Each round runs both modes back to back; their ratio is less exposed to drift.
        "throughput_ratio_median_of_rounds": round(
            statistics.median(
                b["rps"] / a["rps"] for a, b in zip(runs["off"], runs["on"], strict=True)
            ),
            3,
        ),
        "added_cost_per_request_us": round(added_us, 1),
        "median_latency_1conn_off_ms": round(min(latency["off"]), 3),
        "median_latency_1conn_on_ms": round(min(latency["on"]), 3),
        "server_cpu_per_request_off_us": round(cpu_off, 1),
        "server_cpu_per_request_on_us": round(cpu_on, 1),
        "added_server_cpu_per_request_us": round(cpu_on - cpu_off, 1),
        "in_process_cpu_per_request_off_us": round(in_process["off"], 1),
        "in_process_cpu_per_request_on_us": round(in_process["on"], 1),
        "in_process_added_us": round(in_process["on"] - in_process["off"], 1),
        "runs_off_rps": [round(r["rps"]) for r in runs["off"]],
        "runs_on_rps": [round(r["rps"]) for r in runs["on"]],
        "client_cpu_share_max": round(max(r["client_cpu"] for r in runs["off"] + runs["on"]), 2),
        "errors": sum(int(r["errors"]) for r in runs["off"] + runs["on"]),
        # Proves the "on" server traced: about SAMPLE_RATIO of its requests became spans.
        "on_sampled_share": round(spans["exported"] / max(spans["requests"], 1), 3),
        "connections": CONNECTIONS,
        "seconds_per_run": THROUGHPUT_SECONDS,
        "pinned": server_core is not None,
        # Other work on the machine shows up as noise between runs.
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    goals = {"throughput_ratio": "on/off >= 0.8", "added_cost_per_request_us": "<= 150 us"}
    met = {"throughput_ratio": ratio >= 0.8, "added_cost_per_request_us": added_us <= 150}
    return report("telemetry_cost", figures, goals, met)


if __name__ == "__main__":
    # The child process: python -m bench.telemetry_cost serve MODE PORT [CORE]
    _, command, mode, port, *rest = sys.argv
    if command != "serve" or mode not in ("off", "on"):
        sys.exit("usage: python -m bench.telemetry_cost serve off|on PORT [CORE]")
    serve(mode, int(port), int(rest[0]) if rest and rest[0] else None)  # type: ignore[arg-type]
