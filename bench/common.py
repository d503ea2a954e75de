"""The one convention every benchmark follows: print the figures, write bench/results/NAME.json."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/zhongfu_dev"


def postgres_url() -> str:
    """The PostgreSQL database benchmarks use: ``DATABASE_URL``, else the local ``zhongfu_dev``.

    The default database is created when it does not exist yet, so that ``make bench`` works on a
    fresh machine with only the local server running.
    """
    import os

    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        return url
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'zhongfu_dev'") is None:
                await conn.execute("CREATE DATABASE zhongfu_dev")
        finally:
            await conn.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(create())
    else:
        # Called from inside an event loop: create the database from a thread of its own.
        import threading

        worker = threading.Thread(target=asyncio.run, args=(create(),))
        worker.start()
        worker.join()
    return DEFAULT_URL


async def drop_schema(url: str, schema: str) -> None:
    """Drop a benchmark's scratch schema (whatever driver the URL names)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def settle(url: str, schema: str) -> None:
    """``VACUUM (ANALYZE)`` every table of a freshly loaded ``schema``, untimed: the state a
    service's database is in (autovacuum, which this machine's server has off, would have done
    it), with the planner's statistics known and the visibility map set, rather than a bulk
    load's first minutes (no statistics; every page's hint bits still to be set by its first
    reader, which dirties it)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        for t in tables:
            await conn.execute(f'VACUUM (ANALYZE) "{schema}"."{t["tablename"]}"')
    finally:
        await conn.close()


def report(name: str, figures: dict[str, Any], goals: dict[str, str], met: dict[str, bool]) -> dict:
    """Print and save one benchmark's outcome.

    ``figures`` are what was measured, ``goals`` the target each was held to (in words, e.g.
    ``"ratio >= 0.5"``), ``met`` whether each goal was reached.
    """
    result = {
        "name": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": _cpus(), "python": platform.python_version(), "reference_loop_seconds": reference_loop(),
                    "reference_objects_seconds": reference_objects()},
        "figures": figures,
        "goals": goals,
        "met": met,
        "all_met": all(met.values()) if met else False,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"== {name}")
    machine = result["machine"]
    print(f"   machine: {machine['cpus']} cores, Python {machine['python']}, reference loop "
          f"{machine['reference_loop_seconds']} s, reference objects {machine['reference_objects_seconds']} s "
          f"(the same pure-Python work in every run: the machine's speed then)")
    for key, value in figures.items():
        print(f"   {key:<40} {value}")
    for key, goal in goals.items():
        print(f"   goal {key:<35} {goal:<30} {'MET' if met.get(key) else 'NOT MET'}")
    return result


REFERENCE_LOOP = 10_000_000


def reference_loop() -> float:
    """Seconds for a fixed pure-Python loop (best of five), taken as the figures are reported:
    this machine's speed moves by 2x and more from one session to the next, and a figure means
    something only beside it (a run of 1.3 s against one of 3 s)."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        total = 0
        for i in range(REFERENCE_LOOP):
            total += i
        best = min(best, time.process_time() - start)
    return round(best, 3)


# Objects as the services make them: fact documents decoded and walked (the collector paused).
REFERENCE_DOCUMENTS = 5_000
_REFERENCE_DOCUMENT = json.dumps({
    f"fact_{i:02d}": {"v": i * 1.5, "eff": "2026-03-05", "at": "2026-11-28T01:00:00+00:00",
                      "src": "synthetic", "rec": None}
    for i in range(24)
}).encode()


def reference_objects() -> float:
    """Seconds (best of five) to decode a fixed 2.5 KB fact document 5,000 times with orjson and
    gather each entry's value. ``reference_loop`` measures the interpreter alone; the services'
    work is mostly making and dropping objects (the feed's fact documents and views, a read's
    facts), which a machine's memory and caches can slow apart from it. Reported beside it so
    that the two can be told apart from one session's machine to the next."""
    import orjson
    from servicekit.collector import gc_paused

    best = float("inf")
    for _ in range(5):
        # Without the collector, whose passes would cost what the calling process holds.
        with gc_paused():
            start = time.process_time()
            kept = [orjson.loads(_REFERENCE_DOCUMENT) for _ in range(REFERENCE_DOCUMENTS)]
            values = [{key: entry["v"] for key, entry in document.items()} for document in kept]
            del kept, values
            best = min(best, time.process_time() - start)
    return round(best, 3)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# -- processes and HTTP load, shared by the benchmarks that drive real services -----------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: Any, timeout: float = 90.0) -> None:
    """Until ``url`` answers 200; fails early if ``process`` (a Popen) has exited."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url}: not up after {timeout} s")


def pin(pid: int, core: int) -> None:
    """Keep a process on one core (of those this process may use)."""
    import os

    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(pid, {cores[core % len(cores)]})


def stop(processes: list[Any]) -> None:
    """SIGTERM each process (Popen), then wait; kill what has not stopped in 30 s."""
    import signal
    import subprocess

    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    import psutil

    return {name: sum(psutil.Process(pid).cpu_times()[:2]) for name, pid in pids.items()}


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU time of every PostgreSQL server process by pid (the server runs unpinned, on both
    cores; whatever else uses it in the meantime counts too)."""
    import psutil

    out = {}
    for process in psutil.process_iter(["name", "cpu_times"]):
        if process.info["name"] == "postgres" and process.info["cpu_times"] is not None:
            out[process.pid] = sum(process.info["cpu_times"][:2])
    return out


async def http_load(urls: list[str], token: str, connections: int, seconds: float,
                    warmup: float = 1.0) -> dict[str, Any]:
    """GET ``urls`` in turn on ``connections`` keep-alive connections for ``seconds`` after a
    warm-up: rate, median and p99 of the answers that were 200, errors, and every answer counted."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    latencies: list[float] = []
    errors = 0
    total = 0  # every answer, warm-up included: what the servers' CPU time is divided by
    turn = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        begin = time.perf_counter()
        measure_from = begin + warmup
        end = measure_from + seconds

        async def worker() -> None:
            nonlocal errors, total, turn
            while True:
                url = urls[turn % len(urls)]
                turn += 1
                started = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                done = time.perf_counter()
                total += 1
                if done > end:
                    return
                if started >= measure_from:
                    if ok:
                        latencies.append(done - started)
                    else:
                        errors += 1

        import asyncio

        await asyncio.gather(*(worker() for _ in range(connections)))
    return _load_figures(latencies, seconds, errors, total)


def _load_figures(latencies: list[float], seconds: float, errors: int, total: int) -> dict[str, Any]:
    latencies.sort()
    n = len(latencies)
    return {
        "requests_per_second": round(n / seconds, 1),
        "median_ms": round(latencies[n // 2] * 1000, 3) if n else None,
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 3) if n else None,
        "errors": errors,
        "total_requests": total,
    }


async def raw_http_load(urls: list[str], token: str, connections: int, seconds: float,
                        warmup: float = 1.0) -> dict[str, Any]:
    """``http_load``'s measurement with a load generator costing a fraction of its CPU: each
    connection an asyncio protocol sending pre-built request bytes, the answer parsed by
    httptools (the parser uvicorn uses: status line, Content-Length or chunked). Every answer is
    read to its end; a status other than 200 or a connection lost mid-answer is an error (the
    connection is then opened again). Latency is per request, from the write to the end of its
    answer, as in ``http_load``. For benches whose clients would be elsewhere in production, so
    that the bench apparatus takes less of the machine from the servers under test."""
    import asyncio
    from urllib.parse import urlsplit

    import httptools

    first = urlsplit(urls[0])
    host, port = first.hostname or "127.0.0.1", first.port or 80
    if any(urlsplit(u).netloc != first.netloc for u in urls):
        raise ValueError("raw_http_load: every URL on one host")
    requests = [
        b"GET %b HTTP/1.1\r\nHost: %b\r\nAuthorization: Bearer %b\r\nAccept: */*\r\n\r\n" % (
            (p.path + (f"?{p.query}" if p.query else "")).encode(), first.netloc.encode(), token.encode())
        for p in map(urlsplit, urls)
    ]
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    state = {"errors": 0, "total": 0, "turn": 0}
    begin = time.perf_counter()
    measure_from = begin + warmup
    end = measure_from + seconds
    clock = time.perf_counter

    class Client(asyncio.Protocol):
        def __init__(self, done: asyncio.Future[None]) -> None:
            self.done = done
            self.transport: Any = None
            self.parser = httptools.HttpResponseParser(self)
            self.started = 0.0
            self.waiting = False

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.send()

        def send(self) -> None:
            turn = state["turn"]
            state["turn"] = turn + 1
            self.waiting = True
            self.started = clock()
            self.transport.write(requests[turn % len(requests)])

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()  # counted in connection_lost

        def on_message_complete(self) -> None:
            now = clock()
            self.waiting = False
            state["total"] += 1
            if now > end:
                self.transport.close()
                return
            if self.started >= measure_from:
                if self.parser.get_status_code() == 200:
                    latencies.append(now - self.started)
                else:
                    state["errors"] += 1
            if not self.parser.should_keep_alive():
                self.transport.close()
                return
            self.send()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.waiting:  # cut off mid-answer: an error, and a new connection
                state["total"] += 1
                if measure_from <= self.started and clock() <= end:
                    state["errors"] += 1
            if clock() > end:
                if not self.done.done():
                    self.done.set_result(None)
                return
            loop.create_task(connect(self.done))

    async def connect(done: asyncio.Future[None]) -> None:
        try:
            await loop.create_connection(lambda: Client(done), host, port)
        except OSError:
            state["errors"] += 1
            await asyncio.sleep(0.01)
            if clock() > end:
                done.set_result(None)
            else:
                loop.create_task(connect(done))

    # The apparatus must not stop mid-run to collect: a full collection here delays every answer
    # in flight (12-39 ms measured), which would be counted against the servers.
    import gc

    from servicekit.collector import gc_paused

    gc.collect()
    with gc_paused():
        futures = [loop.create_future() for _ in range(connections)]
        for done in futures:
            await connect(done)
        await asyncio.gather(*futures)
    return _load_figures(latencies, seconds, state["errors"], state["total"])
