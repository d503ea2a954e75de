"""Registry: a household read by id through the gateway, at 32 connections (issue 3: p99 under
20 ms).

    .venv/bin/python -m bench registry_read
    REGISTRY_READ_CITY_SCALE=1.0 .venv/bin/python -m bench registry_read
    REGISTRY_READ_LOG_LEVEL=INFO .venv/bin/python -m bench registry_read   # with an access log line per request
    REGISTRY_READ_TELEMETRY=1 .venv/bin/python -m bench registry_read      # tracing and metrics exported over OTLP
    REGISTRY_READ_PLACEMENT=shared .venv/bin/python -m bench registry_read  # no process pinned to a core
    .venv/bin/python -m bench.registry_read in-process [--reads 6400] [--profile FILE] [--telemetry]   # registry CPU per read

Real processes: the gateway (with its development issuer) and the registry on PostgreSQL with the
synthetic city loaded; the registry trusts the gateway's issuer as in `make run`. A township
worker reads the households of their township by id, in turn (masked, with members, facts and
their sources, the scoring view; each read writes its audit record). The load generator is
bench.common's raw_http_load (its own process on the other core from the servers;
REGISTRY_READ_GENERATOR=aiohttp for http_load, as in gateway_hop). The CPU time per read of the
registry, the gateway, every PostgreSQL process (unpinned; and apart, the server processes of the
registry's own connections) and the load generator is reported beside the wall-clock figures,
being far less disturbed by other work on the machine, and showing the whole budget of a read on
the machine's two cores; so is the CPU everything else on the machine took meanwhile
(other_work_cores: the wall-clock figures are only comparable between runs where it is alike).
Loading the city is not timed, nor is settling it (``VACUUM (ANALYZE)``, as autovacuum would have
in service; ``BENCH_SETTLE=0`` leaves it as the bulk load left it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    cpu_seconds, drop_schema, free_port, http_load, pin, postgres_cpu_seconds, postgres_url, raw_http_load, report,
    stop, wait_ready,
)
from bench.registry_feed import load_city

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE, LOAD_CORE = 0, 1
CONNECTIONS = 32
SECONDS = 10.0
ROUNDS = 3
HOUSEHOLDS_READ = 500
# raw: bench.common.raw_http_load (an asyncio protocol with httptools, ~a third of aiohttp's CPU
# per read); aiohttp: bench.common.http_load, as measured before 2026-11-28 19:30.
GENERATOR = os.environ.get("REGISTRY_READ_GENERATOR", "raw")
# WARNING by default (no access log line per request, as the other benchmarks); INFO measures the
# servers as deployed, writing an access log line for every request.
LOG_LEVEL = os.environ.get("REGISTRY_READ_LOG_LEVEL", "WARNING")
# 1: both servers trace (production's 10% sampling) and export spans and metrics over OTLP/HTTP
# to a sink in this process that answers 200 and keeps nothing.
TELEMETRY = os.environ.get("REGISTRY_READ_TELEMETRY", "0") == "1"
# pinned: both servers on one core, the load generator on the other (steadier CPU figures);
# shared: nothing pinned, the servers and the load generator share both cores.
PLACEMENT = os.environ.get("REGISTRY_READ_PLACEMENT", "pinned")


def _otlp_sink() -> tuple[Any, str]:
    """An OTLP/HTTP receiver that reads each export to its end and discards it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


async def _township_households(url: str, schema: str) -> tuple[str, list[str]]:
    """The township with the most households, and up to HOUSEHOLDS_READ of its households."""
    import asyncpg

    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        township = await conn.fetchval(
            "SELECT substr(area_code, 1, 9) FROM households GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ids = [r["id"] for r in await conn.fetch(
            "SELECT id FROM households WHERE area_code LIKE $1 ORDER BY id LIMIT $2", f"{township}%", HOUSEHOLDS_READ)]
    finally:
        await conn.close()
    return township + "000", ids


def _start(tmp: Path, url: str, schema: str, otlp: str | None = None
           ) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """The gateway and the registry; returns them, the gateway's URL and a township worker's key."""
    registry_port, gateway_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    base = {k: v for k, v in os.environ.items()
            if k not in ("OIDC_ISSUER", "REDIS_URL", "DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT")}
    if otlp:
        base["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
    gateway_env = base | {
        "PORT": str(gateway_port), "VAR_DIR": str(tmp), "DEV_ISSUER_URL": gateway_url,
        "REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
        "DEMO_ACCOUNTS_FILE": str(ROOT / "config" / "demo-accounts.yaml"),
        "ROUTE_TABLE_FILE": str(ROOT / "config" / "routes.yaml"),
        # Limits on, so that their cost counts, but too high to refuse the benchmark.
        "RATE_LIMIT_PER_SECOND": "1000000", "RATE_LIMIT_BURST": "1000000", "LOG_LEVEL": LOG_LEVEL,
    }
    registry_env = base | {
        "PORT": str(registry_port), "VAR_DIR": str(tmp / "registry"), "DEV_ISSUER_URL": gateway_url,
        "DATABASE_URL": url, "DB_SCHEMA": schema, "CONFIG_DIR": str(ROOT / "config"), "LOG_LEVEL": LOG_LEVEL,
    }
    processes = [
        subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=ROOT, env=gateway_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "registry", "serve"], cwd=ROOT, env=registry_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_ready(f"{gateway_url}/livez", processes[0])
        wait_ready(f"http://127.0.0.1:{registry_port}/readyz", processes[1])
    except BaseException:
        stop(processes)
        raise
    if PLACEMENT == "pinned":
        for process in processes:
            pin(process.pid, SERVER_CORE)
    return processes, gateway_url, str(tmp / "dev-issuer-key.pem")


def _token(key_path: str, issuer: str, township: str) -> str:
    from servicekit.tokens import SigningKey, standard_claims

    key = SigningKey.load_or_create(Path(key_path))
    return key.sign(standard_claims(
        issuer=issuer, audience="zhongfu", subject="bench-town-worker", lifetime=3600,
        extra={"role": "town_worker", "area": township, "client_id": "town-worker"}))


def _backends_of(pid: int) -> set[int]:
    """The PostgreSQL server processes serving the connections of process ``pid``: their CPU is
    the database's share of a read, without whatever other work the server does meanwhile."""
    import psutil

    try:
        connections = psutil.net_connections("tcp")
    except psutil.AccessDenied:  # another user's processes: reported as unknown
        return set()
    ports = {c.laddr.port for c in connections if c.pid == pid and c.raddr}
    return {c.pid for c in connections if c.raddr and c.raddr.port in ports and c.pid != pid and c.pid is not None}


def _load(urls: list[str], token: str, pids: dict[str, int]) -> dict[str, Any]:
    """One measured run in a process of its own, on the load core."""
    import resource

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(urls, f)
    before = cpu_seconds(pids)
    postgres_before = postgres_cpu_seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before, wall_before = _machine_busy_seconds(), time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.registry_read", "load", "--urls", f.name, "--token", token,
         "--connections", str(CONNECTIONS), "--seconds", str(SECONDS), "--generator", GENERATOR],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if PLACEMENT == "pinned":
        pin(process.pid, LOAD_CORE)
    out, err = process.communicate(timeout=300)
    Path(f.name).unlink(missing_ok=True)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    result = json.loads(out)
    machine, wall = _machine_busy_seconds() - machine_before, time.perf_counter() - wall_before
    after = cpu_seconds(pids)
    postgres_after = postgres_cpu_seconds()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator, waited for above
    reads = max(1, result["total_requests"])
    for name in pids:
        result[f"{name}_cpu_ms_per_read"] = round((after[name] - before[name]) / reads * 1e3, 3)
    postgres = sum(cpu - postgres_before.get(pid, 0.0) for pid, cpu in postgres_after.items())
    result["postgres_cpu_ms_per_read"] = round(postgres / reads * 1e3, 3)
    backends = _backends_of(pids["registry"]) & postgres_after.keys()
    backends_cpu = sum(postgres_after[pid] - postgres_before.get(pid, 0.0) for pid in backends)
    result["postgres_backends_cpu_ms_per_read"] = round(backends_cpu / reads * 1e3, 3) if backends else None
    load = (children_after.ru_utime + children_after.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    result["load_generator_cpu_ms_per_read"] = round(load / reads * 1e3, 3)
    ours = sum(after[name] - before[name] for name in pids) + backends_cpu + load
    result["other_work_cores"] = round((machine - ours) / wall, 2)
    return result


def _machine_busy_seconds() -> float:
    """CPU time the whole machine has been busy (all cores, anyone's work)."""
    import psutil

    times = psutil.cpu_times()
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0) \
        + getattr(times, "steal", 0.0)


def main() -> dict[str, Any]:
    import httpx

    url = postgres_url()
    scale = float(os.environ.get("REGISTRY_READ_CITY_SCALE", "0.1"))
    schema = f"bench_registry_read_{uuid.uuid4().hex[:6]}"
    figures: dict[str, Any] = {"city_scale": scale, "connections": CONNECTIONS, "load_generator": GENERATOR,
                               "placement": PLACEMENT,
                               "log_level": LOG_LEVEL, "telemetry_exported": TELEMETRY}
    sink, otlp = _otlp_sink() if TELEMETRY else (None, None)
    try:
        figures |= asyncio.run(load_city(url, schema, scale))
        township, ids = asyncio.run(_township_households(url, schema))
        with tempfile.TemporaryDirectory(prefix="registry-read-") as tmp:
            processes, gateway, key_path = _start(Path(tmp), url, schema, otlp)
            try:
                token = _token(key_path, gateway, township)
                urls = [f"{gateway}/api/v1/households/{hid}" for hid in ids]
                check = httpx.get(urls[0], headers={"Authorization": f"Bearer {token}"}, timeout=30)
                if check.status_code != 200 or check.json().get("id") != ids[0]:
                    raise RuntimeError(f"the read does not work: {check.status_code}")
                pids = {"gateway": processes[0].pid, "registry": processes[1].pid}
                rounds = []
                for r in range(ROUNDS):
                    rounds.append(_load(urls, token, pids))
                    print(f"   round {r + 1}: {rounds[-1]}", flush=True)
            finally:
                stop(processes)
    finally:
        if sink is not None:
            sink.shutdown()
        asyncio.run(drop_schema(url, schema))
    best = min(rounds, key=lambda x: x["p99_ms"] or float("inf"))
    figures |= {
        "households_read_in_turn": len(ids),
        "rounds": ROUNDS,
        "seconds_per_round": SECONDS,
        "p99_ms_each_round": [x["p99_ms"] for x in rounds],
        "median_ms_each_round": [x["median_ms"] for x in rounds],
        "reads_per_second_each_round": [x["requests_per_second"] for x in rounds],
        "errors": sum(x["errors"] for x in rounds),
        "p99_ms_median_round": sorted(x["p99_ms"] for x in rounds)[ROUNDS // 2],
        "registry_cpu_ms_per_read": best["registry_cpu_ms_per_read"],
        "gateway_cpu_ms_per_read": best["gateway_cpu_ms_per_read"],
        "postgres_cpu_ms_per_read": best["postgres_cpu_ms_per_read"],
        "postgres_backends_cpu_ms_per_read": best["postgres_backends_cpu_ms_per_read"],
        "load_generator_cpu_ms_per_read": best["load_generator_cpu_ms_per_read"],
        "other_work_cores_each_round": [x["other_work_cores"] for x in rounds],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    p99 = figures["p99_ms_median_round"]
    return report(
        "registry_read", figures,
        goals={"p99_ms_median_round": "< 20 ms at 32 connections, through the gateway", "errors": "0"},
        met={"p99_ms_median_round": p99 is not None and p99 < 20, "errors": figures["errors"] == 0},
    )


async def _in_process(scale: float, reads: int, profile: str | None, concurrency: int,
                      telemetry: bool = False) -> dict[str, Any]:
    """Registry CPU per masked household read, in-process (no HTTP, no gateway: the fast read's
    handler called as the server's protocol calls it, under the request's span), ``concurrency``
    at a time as the gateway would send them (under uvloop, as served), on
    PostgreSQL: steadier than the HTTP figures on a shared machine. With ``profile`` the reads
    run under cProfile and the stats are written there. With ``telemetry`` the registry traces
    (10% sampling) and exports over OTLP/HTTP to a discarding sink in this process, and each read
    carries the traceparent the gateway would send: a new trace, sampled one time in ten by the
    same rule, so the registry follows the gateway's decision."""
    import cProfile
    import random
    import time

    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    from registry.app import create_app
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    from registry.households.endpoints import FAST_READ
    from registry.settings import RegistrySettings
    from servicekit.fastread import FastRequest
    from servicekit.request_metrics import request_key
    from servicekit.telemetry import end_server_span
    from servicekit.testing import TestIdentity, running_service, settings_for_tests

    url = postgres_url()
    schema = f"bench_registry_read_{uuid.uuid4().hex[:6]}"
    sink = None
    try:
        await load_city(url, schema, scale)
        township, ids = await _township_households(url, schema)
        identity = TestIdentity()
        otel: dict[str, Any] = {}
        if telemetry:
            sink, otlp = _otlp_sink()
            otel = {"otel_exporter_otlp_endpoint": otlp, "otel_sample_ratio": 0.1}
        bound = TraceIdRatioBased(0.1).bound
        settings = settings_for_tests(RegistrySettings, database_url=url, db_schema=schema, config_dir=ROOT / "config",
                                      log_level="WARNING", **otel)
        async with running_service(create_app, settings, identity) as svc:
            token = identity.token("town_worker", area=township, subject="bench-town-worker").encode()
            app = svc.app

            handle = app.state.telemetry if telemetry else None

            async def read(hid: str) -> int:
                # What the server's protocol does with the read (servicekit.fastread): the handler,
                # under the request's span (with telemetry: the gateway's decision, followed).
                path = f"/api/v1/households/{hid}"
                headers = [(b"host", b"registry"), (b"authorization", b"Bearer " + token)]
                span, recording = None, False
                if handle is not None:
                    trace_id = random.getrandbits(128) or 1
                    flags = 3 if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < bound else 2
                    parent = b"00-%032x-%016x-%02x" % (trace_id, random.getrandbits(64) or 1, flags)
                    headers.append((b"traceparent", parent))
                    trace_id, flags, root = handle.sampling.decide(parent)
                    if flags & 1:
                        span = handle.span_starter().start_get(path, "http", "1.1", headers, trace_id, root)
                        recording = True
                    else:
                        span = handle.sampling.unsampled_span(trace_id, flags)
                token_ = otel_context.attach(trace.set_span_in_context(span)) if span is not None else None
                try:
                    answer = await FAST_READ.handler(FastRequest(app, path, headers))
                finally:
                    if token_ is not None:
                        otel_context.detach(token_)
                status = 200 if answer is not None else 0
                if recording:
                    end_server_span(span, request_key("GET", "http", status, FAST_READ.route.path_format))
                return status

            async def reader(first: int, count: int) -> None:
                for i in range(first, first + count * concurrency, concurrency):
                    if await read(ids[i % len(ids)]) != 200:
                        raise RuntimeError("the read does not work")

            # Warm up: every connection of the driver pool, prepared statements, caches.
            await asyncio.gather(*(reader(k, 3) for k in range(concurrency)))
            each = max(1, reads // concurrency)
            reads = each * concurrency
            profiler = cProfile.Profile(time.process_time) if profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            await asyncio.gather(*(reader(k, each) for k in range(concurrency)))
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await drop_schema(url, schema)
        if sink is not None:
            sink.shutdown()
    return {"reads": reads, "concurrency": concurrency, "telemetry": telemetry,
            "cpu_ms_per_read": round(cpu / reads * 1e3, 3), "reads_per_second": round(reads / wall, 1)}


def _cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.registry_read")
    sub = parser.add_subparsers(dest="role", required=True)
    load = sub.add_parser("load")
    load.add_argument("--urls", required=True, help="a JSON file with the list of URLs to read in turn")
    load.add_argument("--token", required=True)
    load.add_argument("--connections", type=int, required=True)
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--generator", choices=("raw", "aiohttp"), default="raw")
    sub.add_parser("run")
    inproc = sub.add_parser("in-process", help="registry CPU per read, in-process on PostgreSQL")
    inproc.add_argument("--scale", type=float, default=0.02)
    inproc.add_argument("--reads", type=int, default=6400)
    inproc.add_argument("--profile", help="write cProfile stats to this file")
    inproc.add_argument("--concurrency", type=int, default=CONNECTIONS, help="reads at a time")
    inproc.add_argument("--telemetry", action="store_true",
                        help="trace (10%%, following the gateway's traceparent) and export to a discarding sink")
    args = parser.parse_args(argv)
    if args.role == "load":
        import uvloop

        urls = json.loads(Path(args.urls).read_text())
        generate = raw_http_load if args.generator == "raw" else http_load
        print(json.dumps(uvloop.run(generate(urls, args.token, args.connections, args.seconds))))
    elif args.role == "in-process":
        import uvloop

        print(json.dumps(uvloop.run(_in_process(args.scale, args.reads, args.profile, args.concurrency,
                                                args.telemetry))))
    else:
        main()


if __name__ == "__main__":
    _cli(sys.argv[1:])
