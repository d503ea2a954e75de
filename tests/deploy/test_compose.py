"""compose.yaml starts the whole suite in the right order, with health checks on /readyz."""

from __future__ import annotations

import http.server
import os
import re
import stat
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest
import yaml
from checks import (
    API_ONLY_SETTINGS,
    DB_SERVICES,
    PORTS,
    REPO,
    UID,
    WORKERS,
)


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def _depends(service: dict) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in (service.get("depends_on") or {}).items()}


def test_compose_has_the_whole_suite():
    services = compose()["services"]
    assert set(services) == {
        "postgres",
        "redis",
        *PORTS,
        *WORKERS,
        *(f"{n}-migrate" for n in DB_SERVICES),
    }
    assert services["postgres"]["image"].split(":")[1].startswith("16")


def test_compose_migrations_run_once_after_postgres_is_healthy():
    services = compose()["services"]
    for name in DB_SERVICES:
        migrate = services[f"{name}-migrate"]
        assert migrate["command"] == ["python", "-m", name, "migrate"]
        assert _depends(migrate) == {"postgres": "service_healthy"}
        assert migrate.get("restart") == "no"
        assert "healthcheck" not in migrate and "ports" not in migrate


def test_compose_processes_wait_for_their_migration_and_check_readyz():
    services = compose()["services"]
    for name, port in PORTS.items():
        process = services[name]
        depends = _depends(process)
        assert process["command"] == ["python", "-m", name, "serve"]
        assert str(process["environment"]["PORT"]) == str(port)
        if name in DB_SERVICES:
            assert depends[f"{name}-migrate"] == "service_completed_successfully"
            env = process["environment"]
            assert env["DB_SCHEMA"] == name
            assert urlsplit(env["DATABASE_URL"].replace("${", "").replace("}", "")).username == name
            assert env["DATABASE_URL"] == services[f"{name}-migrate"]["environment"]["DATABASE_URL"]
        else:
            assert {depends[n] for n in DB_SERVICES} == {"service_healthy"}
            for service in DB_SERVICES:
                assert (
                    process["environment"][f"{service.upper()}_URL"]
                    == f"http://{service}:{PORTS[service]}"
                )
        check = process["healthcheck"]["test"]
        assert (
            check[:3] == ["CMD", "python", "-c"] and "/readyz" in check[3] and "urllib" in check[3]
        )
        assert process["environment"]["ENVIRONMENT"] == "development"
        assert process["environment"]["DEV_ISSUER_URL"] == "http://gateway:8000"
        assert "OIDC_ISSUER" not in process["environment"]
    for backing in ("postgres", "redis"):
        assert services[backing]["healthcheck"]["test"]


def test_compose_alerts_runs_as_its_api_and_its_worker():
    """The same image, command, env and start-up order; only the background settings differ."""
    services = compose()["services"]
    api = services["alerts"]
    assert {k: api["environment"].get(k) for k in API_ONLY_SETTINGS} == API_ONLY_SETTINGS
    for worker_name, process in WORKERS.items():
        worker, api = services[worker_name], services[process]
        background = {k: worker["environment"][k] for k in API_ONLY_SETTINGS}
        assert set(background.values()) == {"true"}, background
        rest = {k: v for k, v in worker["environment"].items() if k not in API_ONLY_SETTINGS}
        assert rest == {k: v for k, v in api["environment"].items() if k not in API_ONLY_SETTINGS}
        for key in ("image", "command", "depends_on", "healthcheck"):
            assert worker[key] == api[key], key
        assert _depends(worker)[f"{process}-migrate"] == "service_completed_successfully"
        assert "ports" not in worker
        # Nothing waits on the worker: the suite is usable while it catches up.
        assert not any(worker_name in _depends(s) for s in services.values())


def test_compose_publishes_the_gateway_only_and_hardens_the_app():
    services = compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"gateway"}
    assert [p.rsplit(":", 1)[-1] for p in services["gateway"]["ports"]] == ["8000"]
    app = [n for n in services if n not in ("postgres", "redis")]
    assert len({services[n]["image"] for n in app}) == 1
    for name in app:
        service = services[name]
        assert service["user"] == f"{UID}:{UID}" and service["read_only"] is True, name
        assert (
            service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
        ), name
        assert service["tmpfs"] == ["/tmp"], name


def test_compose_postgres_init_makes_a_role_and_schema_per_service():
    postgres = compose()["services"]["postgres"]
    [mount] = [v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v]
    script = REPO / mount.split(":")[0]
    assert script.is_file() and script.stat().st_mode & stat.S_IXUSR
    text = script.read_text()
    assert re.search(r"for service in " + " ".join(DB_SERVICES) + r"\b", text)
    assert 'CREATE ROLE :"role" LOGIN' in text and 'CREATE SCHEMA AUTHORIZATION :"role"' in text


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_compose_healthcheck_command_reads_readyz(status, healthy):
    """The exact command in compose.yaml, run against a stand-in server on loopback."""
    command = compose()["services"]["registry"]["healthcheck"]["test"]
    handler = type("Handler", (_Probe,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [sys.executable, *command[2:]],
            capture_output=True,
            timeout=30,
            env={**os.environ, "PORT": str(server.server_address[1])},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy, result.stderr
