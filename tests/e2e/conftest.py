"""The whole suite as real processes, for the end-to-end tests of tests/e2e.

One session fixture migrates the four services and starts them and the gateway on free ports,
with the environment `make run` gives them (scripts/devsuite.py): the development issuer in the
gateway, the demo accounts of config/demo-accounts.yaml, service accounts for the calls between
services. With DATABASE_URL (PostgreSQL) every service gets its own fresh schema, dropped at the
end; otherwise each uses its embedded SQLite file under a temporary VAR_DIR. REDIS_URL is passed
through when set. Each process logs to a file in the temporary directory; a failing test carries
the tail of every log in its report.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SERVICES = ("registry", "scoring", "alerts", "matching")
ORDER = ("gateway", *SERVICES)
MIGRATE_TIMEOUT = 120.0
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 60


def free_ports(n: int) -> list[int]:
    """n distinct free ports, never the fixed 8000-8004 of `make run` (another checkout may use them)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            socks.append(s)  # held open until all are chosen, so no port comes twice
            if 8000 <= port <= 8004:
                continue
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Suite:
    """The running suite: where the gateway answers, and the processes behind it."""

    var_dir: Path
    ports: dict[str, int]
    database_url: str | None
    schemas: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def log(self, name: str) -> Path:
        return self.var_dir / "log" / f"{name}.log"

    def env_for(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "OIDC_ISSUER", "DB_SCHEMA")}
        env.update(
            ENVIRONMENT="development",
            HOST="127.0.0.1",
            PORT=str(self.ports[name]),
            VAR_DIR=str(self.var_dir),
            CONFIG_DIR=str(ROOT / "config"),
            DEV_ISSUER_URL=self.gateway,
            SERVICE_CLIENT_ID=f"svc-{name}",
            SERVICE_CLIENT_SECRET=f"demo-svc-{name}",
            PYTHONUNBUFFERED="1",
            # The gateway's per-client limit, raised: test_api_fuzz sends thousands of requests
            # a minute per caller, and a 429 would stand in for what the service answers.
            RATE_LIMIT_PER_SECOND="2000",
            RATE_LIMIT_BURST="4000",
        )
        for other in SERVICES:
            env[f"{other.upper()}_URL"] = f"http://127.0.0.1:{self.ports[other]}"
        if self.database_url and name in self.schemas:
            env["DATABASE_URL"] = self.database_url
            env["DB_SCHEMA"] = self.schemas[name]
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        return env

    def logs_tail(self) -> str:
        parts = []
        for name in ORDER:
            proc = self.procs.get(name)
            state = "not started" if proc is None else (
                "running" if proc.poll() is None else f"exited with {proc.returncode}")
            parts.append(f"----- {name} ({state}) {self.log(name)} -----\n{tail(self.log(name))}")
        for name in SERVICES:
            migrate_log = self.var_dir / "log" / f"{name}-migrate.log"
            if migrate_log.exists() and migrate_log.stat().st_size and name not in self.procs:
                parts.append(f"----- {name} migrate -----\n{tail(migrate_log)}")
        return "\n".join(parts)

    def dead(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self.procs.items() if p.poll() is not None]

    def launch(self) -> None:
        """Migrate the four services side by side (their databases are their own), the gateway
        starting meanwhile; each service starts as soon as its own migration has succeeded."""
        t0 = time.monotonic()
        self.procs["gateway"] = self._serve("gateway")
        migrations: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for name in SERVICES:
            log = self.var_dir / "log" / f"{name}-migrate.log"
            with open(log, "wb") as out:
                migrations[name] = (subprocess.Popen([PY, "-m", name, "migrate"], cwd=ROOT, env=self.env_for(name),
                                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True), log)
        deadline = time.monotonic() + MIGRATE_TIMEOUT
        try:
            while migrations:
                for name, (proc, log) in list(migrations.items()):
                    rc = proc.poll()
                    if rc is None:
                        continue
                    del migrations[name]
                    if rc != 0:
                        raise RuntimeError(f"'python -m {name} migrate' failed (exit {rc}):\n{tail(log)}")
                    self.timings[f"{name} migrated"] = time.monotonic() - t0
                    self.procs[name] = self._serve(name)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"migrations still running after {MIGRATE_TIMEOUT:.0f}s: {', '.join(migrations)}")
                time.sleep(0.1)
        finally:
            for proc, _ in migrations.values():
                proc.kill()
                proc.wait(timeout=10)

    def _serve(self, name: str) -> subprocess.Popen[bytes]:
        with open(self.log(name), "ab") as out:
            return subprocess.Popen([PY, "-m", name, "serve"], cwd=ROOT, env=self.env_for(name),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(timeout=3.0) as client:
            for name in ORDER:
                url = f"http://127.0.0.1:{self.ports[name]}/readyz"
                last = "no answer"
                while True:
                    if self.procs[name].poll() is not None:
                        raise RuntimeError(f"{name} exited with {self.procs[name].returncode} before it was ready")
                    try:
                        r = client.get(url)
                        if r.status_code == 200:
                            self.timings[f"{name} ready"] = time.monotonic() - self.started
                            break
                        last = f"{r.status_code} {r.text[:300]}"
                    except httpx.TransportError as exc:
                        last = repr(exc)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} not ready within {READY_TIMEOUT:.0f}s at {url}: {last}")
                    time.sleep(0.2)

    def stop(self) -> list[str]:
        """SIGTERM to every process, SIGKILL to those still running after STOP_TIMEOUT; returns the killed."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        killed = []
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(name)
                proc.kill()
                proc.wait(timeout=10)
        return killed

    async def _drop_schemas(self) -> None:
        import asyncpg

        url = self.database_url or ""
        for plain in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
            if url.startswith(plain):
                url = "postgresql://" + url[len(plain):]
        conn = await asyncpg.connect(url)
        try:
            for schema in self.schemas.values():
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    def drop_schemas(self) -> None:
        if self.database_url and self.schemas:
            asyncio.run(self._drop_schemas())


_SUITE: Suite | None = None
_TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def suite(request: pytest.FixtureRequest) -> Iterator[Suite]:
    global _SUITE
    database_url = os.environ.get("DATABASE_URL") or None
    if database_url and not database_url.startswith(("postgresql", "postgres")):
        database_url = None  # a SQLite URL: each service keeps its own file under VAR_DIR instead
    tag = uuid.uuid4().hex[:8]
    schemas = {name: f"e2e_{name}_{tag}" for name in SERVICES} if database_url else {}
    var_dir = Path(tempfile.mkdtemp(prefix="zhongfu-e2e-"))
    (var_dir / "log").mkdir()
    ports = dict(zip(ORDER, free_ports(len(ORDER)), strict=True))
    s = Suite(var_dir=var_dir, ports=ports, database_url=database_url, schemas=schemas)
    _SUITE = s
    failed = False
    try:
        try:
            s.launch()
            s.wait_ready()
            s.timings["all ready"] = time.monotonic() - s.started
        except Exception as exc:  # noqa: BLE001 - report with the logs, then fail every test
            failed = True
            sys.stderr.write(f"\nthe suite did not start: {exc}\n{s.logs_tail()}\n")
            pytest.fail(f"the suite did not start: {exc}\n{s.logs_tail()}", pytrace=False)
        yield s
    finally:
        t_stop = time.monotonic()
        killed = s.stop()
        s.timings["stopped in"] = time.monotonic() - t_stop
        _TIMINGS.update(s.timings, postgres=1.0 if database_url else 0.0)
        _SUITE = None
        if killed:
            sys.stderr.write(f"\nkilled after {STOP_TIMEOUT:.0f}s without stopping on SIGTERM: {', '.join(killed)}\n")
        try:
            s.drop_schemas()
        finally:
            if not failed and not request.session.testsfailed:
                shutil.rmtree(var_dir, ignore_errors=True)
            else:
                sys.stderr.write(f"logs kept in {var_dir / 'log'}\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SUITE is not None:
        dead = _SUITE.dead()
        header = f"processes exited: {', '.join(dead)}\n" if dead else ""
        report.sections.append(("suite process logs (tails)", header + _SUITE.logs_tail()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if _TIMINGS:
        backend = "PostgreSQL" if _TIMINGS.get("postgres") else "SQLite"
        line = ", ".join(f"{k} {v:.1f}s" for k, v in _TIMINGS.items() if k != "postgres")
        terminalreporter.write_line(f"e2e suite on {backend}: {line}")
