"""`make run`: migrate, seed a small synthetic city, start the gateway and the four services.

Embedded default: SQLite files and logs under var/, no Redis, the gateway's development OIDC
issuer with the demo accounts of config/demo-accounts.yaml. Ctrl-C (or SIGTERM) stops every
process gracefully; if one process dies, the others are stopped too and the log says which.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOGS = VAR / "log"
PY = sys.executable
SERVICES = {"registry": 8001, "scoring": 8002, "alerts": 8003, "matching": 8004}
GATEWAY_PORT = 8000
STOP_TIMEOUT = 25.0


def env_for(name: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    # The embedded default on purpose: a newcomer's shell may carry a DATABASE_URL for tests.
    for key in ("DATABASE_URL", "REDIS_URL", "OIDC_ISSUER", "DB_SCHEMA"):
        env.pop(key, None)
    env.update(
        ENVIRONMENT="development",
        HOST="127.0.0.1",
        PORT=str(port),
        VAR_DIR=str(VAR),
        CONFIG_DIR=str(ROOT / "config"),
        DEV_ISSUER_URL=f"http://127.0.0.1:{GATEWAY_PORT}",
        SERVICE_CLIENT_ID=f"svc-{name}",
        SERVICE_CLIENT_SECRET=f"demo-svc-{name}",
        PYTHONUNBUFFERED="1",
    )
    for other, other_port in SERVICES.items():
        env[f"{other.upper()}_URL"] = f"http://127.0.0.1:{other_port}"
    return env


def run_step(args: list[str], name: str, env: dict[str, str]) -> None:
    result = subprocess.run([PY, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"{name}: '{' '.join(args)}' failed (exit {result.returncode})")


def has_command(module: str, command: str, env: dict[str, str]) -> bool:
    result = subprocess.run([PY, "-m", module, "--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    return command in result.stdout


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def banner(scale: float) -> str:
    accounts = yaml.safe_load((ROOT / "config" / "demo-accounts.yaml").read_text())["accounts"]
    people = [a for a in accounts if a["role"] != "service"]
    width = max(len(a["client_id"]) for a in people)
    lines = [
        "",
        "The suite is running on the embedded default (SQLite under var/, no Redis).",
        f"  gateway      http://127.0.0.1:{GATEWAY_PORT}   (API under /api/v1)",
        f"  API docs     http://127.0.0.1:{GATEWAY_PORT}/docs",
        f"  OpenAPI      http://127.0.0.1:{GATEWAY_PORT}/openapi.json",
        f"  logs         {LOGS.relative_to(ROOT)}/*.log",
        f"  synthetic city loaded at scale {scale}",
        "",
        "Demo accounts (client credentials; secret in config/demo-accounts.yaml):",
    ]
    for a in people:
        bound = a.get("area") or a.get("organisation") or a.get("department") or ""
        lines.append(f"  {a['client_id']:<{width}}  {a['role']:<16} {bound:<14} {a.get('description', '')}")
    lines += [
        "",
        "Try:",
        f"  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id=town-worker "
        f"-d client_secret=demo-town-worker http://127.0.0.1:{GATEWAY_PORT}/oauth/token | "
        "python3 -c 'import sys,json;print(json.load(sys.stdin)[\"access_token\"])')",
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:{GATEWAY_PORT}/api/v1/areas/330106001000",
        "",
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.02, help="synthetic city scale (1.0 = Hangzhou)")
    parser.add_argument("--ready-timeout", type=float, default=90.0)
    args = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)

    print("migrating databases ...", flush=True)
    migrations = {
        name: subprocess.Popen([PY, "-m", name, "migrate"], cwd=ROOT, env=env_for(name, port),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, port in SERVICES.items()
    }  # side by side: each service has its own database, and start-up is mostly imports
    for name, proc in migrations.items():
        output, _ = proc.communicate()
        if proc.returncode != 0:
            sys.stderr.write(output.decode(errors="replace"))
            raise SystemExit(f"{name}: migrate failed (exit {proc.returncode})")
    if has_command("registry", "seed", env_for("registry", SERVICES["registry"])):
        print(f"loading the synthetic city (scale {args.scale}) ...", flush=True)
        run_step(["registry", "seed", "--scale", str(args.scale)], "registry", env_for("registry", SERVICES["registry"]))
    else:
        print("note: this registry has no seed command yet; starting with an empty city", flush=True)

    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        # A second signal (make forwards its own to us) must not cut the orderly stop short;
        # the stop has its own deadline, after which stragglers are killed.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping ...", flush=True)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, proc in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time; killing it", flush=True)
                proc.kill()
        print("stopped.", flush=True)

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts us in the background ignores SIGINT by default.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    try:
        order = [("gateway", GATEWAY_PORT)] + list(SERVICES.items())
        for name, port in order:
            log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
            procs[name] = subprocess.Popen(
                [PY, "-m", name, "serve"], cwd=ROOT, env=env_for(name, port), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us once; we stop the children in order
            )
        for name, port in order:
            if not wait_ready(f"http://127.0.0.1:{port}/readyz", procs[name], args.ready_timeout):
                print(f"{name} did not become ready; see {LOGS / (name + '.log')}", flush=True)
                stop_all()
                return 1
        print(banner(args.scale), flush=True)
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; see {LOGS / (name + '.log')}", flush=True)
                    stop_all()
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop_all()
        return 0


if __name__ == "__main__":
    sys.exit(main())
