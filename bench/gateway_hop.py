"""The cost of the gateway hop: one authenticated read, direct and through the gateway.

The service is the real registry (one area with its parent chain) and, as a plainer and so
harsher reference, a bare FastAPI app that checks the bearer token with servicekit's JWTVerifier
and answers with a household-sized document. Service and gateway share core 0; the load generator
(aiohttp in one process, or wrk when installed) runs on core 1. Throughput is measured at 32
connections, direct then through the gateway (order alternating between rounds); latency at one
connection, with direct and gateway requests alternating within one run, so that both see the
same background load. Ratios and differences are taken per round, and their median reported.
Server CPU time per request is reported too: it is far less disturbed by other work on the
machine than wall-clock figures are.
"""

# No `from __future__ import annotations`: FastAPI must see the real type of the service's
# dependency, which is imported inside run_service.
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds as _cpu_seconds
from bench.common import free_port as _free_port
from bench.common import http_load
from bench.common import pin as _pin
from bench.common import stop as _stop
from bench.common import wait_ready as _wait_ready

REPO = Path(__file__).resolve().parents[1]
SERVER_CORE = 0
LOAD_CORE = 1
ROUNDS = 3
SECONDS = {32: 6.0}
PAIRED_SECONDS = 8.0  # one connection each, direct and gateway requests alternating
WARMUP_SECONDS = 1.0
HOUSEHOLD_ID = "hh-7f3a9c2e41d84b0f"


# -- the service under test -------------------------------------------------------------------


def household_document() -> dict[str, Any]:
    """What a masked household read returns: about 1 KB of JSON, synthetic data only."""
    return {
        "id": HOUSEHOLD_ID,
        "area": "330106001001",
        "status": "monitored",
        "level": "attention",
        "head": {"name": "张*明", "resident_id": "330106********0014", "phone": "138****1234"},
        "members": [
            {
                "id": f"mb-{i}",
                "relation": rel,
                "name": name,
                "birth_year": year,
                "disability": dis,
                "chronic_illness": ill,
                "employment": emp,
            }
            for i, (rel, name, year, dis, ill, emp) in enumerate(
                [
                    ("head", "张*明", 1968, None, True, "unemployed"),
                    ("spouse", "李*芳", 1970, "limb-3", False, "flexible"),
                    ("child", "张*", 2009, None, False, "student"),
                ]
            )
        ],
        "income": {"monthly_per_capita": 812.5, "currency": "CNY", "assessed_at": "2026-10-31"},
        "flags": ["medical_expense_high", "single_income"],
        "programmes": ["low_income_household", "medical_assistance"],
        "updated_at": "2026-11-20T09:14:03Z",
        "etag": 'W/"3-1a2b3c"',
    }


def run_service(port: int, key_path: str, issuer: str) -> None:
    import uvicorn
    from fastapi import FastAPI
    from servicekit.auth import CurrentCaller, JWTVerifier
    from servicekit.tokens import SigningKey

    key = SigningKey.load_or_create(Path(key_path))

    async def jwks() -> dict[str, Any]:
        return key.jwks()

    app = FastAPI()
    app.state.verifier = JWTVerifier(issuer, "zhongfu", fetch_jwks=jwks)
    document = household_document()

    @app.get("/api/v1/households/{household_id}")
    async def read_household(household_id: str, caller: CurrentCaller) -> dict[str, Any]:
        return {**document, "id": household_id, "read_by": caller.role.value}

    @app.get("/livez")
    @app.get("/readyz")
    async def probe() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


# -- the load generator ------------------------------------------------------------------------


async def _aiohttp_load(url: str, token: str, connections: int, seconds: float) -> dict[str, Any]:
    return await http_load([url], token, connections, seconds, WARMUP_SECONDS)


async def _aiohttp_paired(direct: str, gateway: str, token: str, seconds: float) -> dict[str, Any]:
    """One connection to each, requests alternating: both see the same moment of the machine.

    On a machine shared with other work, back-to-back runs of a few seconds each see different
    background load; pairs of requests a fraction of a millisecond apart do not. Which target
    goes first alternates, so neither gets a systematically warmer cache.
    """
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    differences: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2)) as session:

        async def timed(url: str) -> float | None:
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                ok = response.status == 200
            return time.perf_counter() - started if ok else None

        begin = time.perf_counter()
        measure_from, end = begin + WARMUP_SECONDS, begin + WARMUP_SECONDS + seconds
        first_direct = True
        while (now := time.perf_counter()) < end:
            order = ("direct", "gateway") if first_direct else ("gateway", "direct")
            first_direct = not first_direct
            pair = {name: await timed(direct if name == "direct" else gateway) for name in order}
            if now < measure_from:
                continue
            if pair["direct"] is None or pair["gateway"] is None:
                errors += 1
                continue
            for name, value in pair.items():
                times[name].append(value)
            differences.append(pair["gateway"] - pair["direct"])
    return {
        "direct_median_ms": round(statistics.median(times["direct"]) * 1000, 3),
        "gateway_median_ms": round(statistics.median(times["gateway"]) * 1000, 3),
        "added_median_ms": round(statistics.median(differences) * 1000, 3),
        "pairs": len(differences),
        "errors": errors,
    }


def _wrk_load(url: str, token: str, connections: int, seconds: float) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    assert wrk
    warmup = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{WARMUP_SECONDS:.0f}s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds:.0f}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = sum(int(m.group(1)) for m in re.finditer(r"(\d+) requests in", warmup + out))
    return {
        "total_requests": total,
        "requests_per_second": rps,
        "median_ms": _wrk_ms(median),
        "p99_ms": _wrk_ms(p99),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _wrk_ms(match: re.Match[str] | None) -> float | None:
    if match is None:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 3)


def run_load(
    url: str, token: str, connections: int, seconds: float, generator: str
) -> dict[str, Any]:
    if generator == "wrk":
        return _wrk_load(url, token, connections, seconds)
    import uvloop

    return uvloop.run(_aiohttp_load(url, token, connections, seconds))


# -- orchestration -----------------------------------------------------------------------------


def _check(url: str, token: str) -> None:
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except OSError as exc:
        raise RuntimeError(f"{url}: the read does not work ({exc})") from None


def _measure_paired(targets: dict[str, str], token: str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.gateway_hop",
        "paired",
        "--direct",
        targets["direct"],
        "--gateway",
        targets["gateway"],
        "--token",
        token,
        "--seconds",
        str(PAIRED_SECONDS),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pin(process.pid, LOAD_CORE)
    out, err = process.communicate(timeout=120)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    return json.loads(out)


def _measure(
    url: str, token: str, connections: int, generator: str, pids: dict[str, int]
) -> dict[str, Any]:
    before = _cpu_seconds(pids)
    command = [
        sys.executable,
        "-m",
        "bench.gateway_hop",
        "load",
        "--url",
        url,
        "--token",
        token,
        "--connections",
        str(connections),
        "--seconds",
        str(SECONDS[connections]),
        "--generator",
        generator,
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pin(process.pid, LOAD_CORE)
    out, err = process.communicate(timeout=120)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    result = json.loads(out)
    # CPU time per answer: the cost of each process, much less disturbed by other load on the
    # machine than wall-clock rates are.
    after = _cpu_seconds(pids)
    for name in pids:
        result[f"{name}_cpu_us"] = round(
            (after[name] - before[name]) / max(1, result["total_requests"]) * 1e6, 1
        )
    return result


AREA_CODE = "330106001001"


def _start_service(
    kind: str, tmp: Path, port: int, key_path: Path, issuer: str
) -> tuple[subprocess.Popen[bytes], str]:
    """The service under test and the path of its authenticated read."""
    if kind == "synthetic":
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.gateway_hop",
                "service",
                "--port",
                str(port),
                "--key",
                str(key_path),
                "--issuer",
                issuer,
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return process, f"/api/v1/households/{HOUSEHOLD_ID}"
    # The real registry: its app factory, middleware, token check against the gateway's issuer,
    # and one area with its parent chain and children (a read of about 1 KB).
    env = {
        **os.environ,
        "PORT": str(port),
        "VAR_DIR": str(tmp / "registry"),
        "DEV_ISSUER_URL": issuer,
        "CONFIG_DIR": str(REPO / "config"),
    }
    for name in ("DATABASE_URL", "OIDC_ISSUER", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop(name, None)
    subprocess.run(
        [sys.executable, "-m", "registry", "migrate"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "registry", "serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"/api/v1/areas/{AREA_CODE}"


def _measure_service(kind: str, generator: str) -> list[dict[str, dict[int, dict[str, Any]]]]:
    """Interleaved rounds, direct and through a gateway, for one service."""
    from servicekit.tokens import SigningKey, standard_claims

    with tempfile.TemporaryDirectory(prefix="gateway-hop-") as tmp_name:
        tmp = Path(tmp_name)
        service_port, gateway_port = _free_port(), _free_port()
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        key_path = (
            tmp / "dev-issuer-key.pem"
        )  # the gateway's development key; the service trusts it
        key = SigningKey.load_or_create(key_path)
        token = key.sign(
            standard_claims(
                issuer=gateway_url,
                audience="zhongfu",
                subject="town-worker",
                extra={"role": "town_worker", "area": "330106001000", "client_id": "town-worker"},
                lifetime=3600,
            )
        )
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("OIDC_ISSUER", "REDIS_URL")},
            "PORT": str(gateway_port),
            "VAR_DIR": str(tmp),
            "DEV_ISSUER_URL": gateway_url,
            "REGISTRY_URL": f"http://127.0.0.1:{service_port}",
            "DEMO_ACCOUNTS_FILE": str(REPO / "config" / "demo-accounts.yaml"),
            "ROUTE_TABLE_FILE": str(REPO / "config" / "routes.yaml"),
            # Limits on, so their cost is counted, but high enough never to refuse the benchmark.
            "RATE_LIMIT_PER_SECOND": "1000000",
            "RATE_LIMIT_BURST": "1000000",
        }
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes = [gateway]
        try:
            service, path = _start_service(kind, tmp, service_port, key_path, gateway_url)
            processes.append(service)
            _wait_ready(f"{gateway_url}/livez", gateway)
            _wait_ready(f"http://127.0.0.1:{service_port}/livez", service)
            _pin(service.pid, SERVER_CORE)
            _pin(gateway.pid, SERVER_CORE)
            pids = {"service": service.pid, "gateway": gateway.pid}
            targets = {
                "direct": f"http://127.0.0.1:{service_port}{path}",
                "gateway": f"{gateway_url}{path}",
            }
            for url in targets.values():
                _check(url, token)
            rounds: list[dict[str, dict[int, dict[str, Any]]]] = []
            for r in range(ROUNDS):
                results: dict[str, dict[int, dict[str, Any]]] = {"direct": {}, "gateway": {}}
                order = ["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]
                for name in order:
                    results[name][32] = _measure(targets[name], token, 32, generator, pids)
                pair = _measure_paired(targets, token)
                results["direct"][1] = {
                    "median_ms": pair["direct_median_ms"],
                    "errors": pair["errors"],
                }
                results["gateway"][1] = {
                    "median_ms": pair["gateway_median_ms"],
                    "added_median_ms": pair["added_median_ms"],
                    "pairs": pair["pairs"],
                    "errors": 0,
                }
                rounds.append(results)
                print(
                    f"   {kind} round {r + 1}: "
                    + ", ".join(
                        f"{n}@32: {results[n][32]['requests_per_second']} rps, "
                        f"@1: median {results[n][1]['median_ms']} ms"
                        for n in ("direct", "gateway")
                    ),
                    flush=True,
                )
            return rounds
        finally:
            _stop(processes)


def _med(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _figures(rounds: list[dict[str, dict[int, dict[str, Any]]]]) -> dict[str, Any]:
    direct_32 = [r["direct"][32]["requests_per_second"] for r in rounds]
    gateway_32 = [r["gateway"][32]["requests_per_second"] for r in rounds]
    direct_1 = [r["direct"][1]["median_ms"] for r in rounds]
    gateway_1 = [r["gateway"][1]["median_ms"] for r in rounds]
    service_cpu = _med([r["direct"][32]["service_cpu_us"] for r in rounds])
    service_cpu_via = _med([r["gateway"][32]["service_cpu_us"] for r in rounds])
    gateway_cpu = _med([r["gateway"][32]["gateway_cpu_us"] for r in rounds])
    return {
        "direct_rps_32_connections": _med(direct_32),
        "gateway_rps_32_connections": _med(gateway_32),
        # Ratios and differences per round (the two ran back to back), then the median.
        "throughput_ratio_32_connections": _med(
            [g / d for g, d in zip(gateway_32, direct_32, strict=True)]
        ),
        "direct_median_ms_1_connection": _med(direct_1),
        "gateway_median_ms_1_connection": _med(gateway_1),
        # The median of per-pair differences, per round; then the median over rounds.
        "added_median_ms_1_connection": _med([r["gateway"][1]["added_median_ms"] for r in rounds]),
        "direct_p99_ms_32_connections": _med([r["direct"][32]["p99_ms"] for r in rounds]),
        "gateway_p99_ms_32_connections": _med([r["gateway"][32]["p99_ms"] for r in rounds]),
        "service_cpu_us_per_request_direct": service_cpu,
        "service_cpu_us_per_request_via_gateway": service_cpu_via,
        "gateway_cpu_us_per_request": gateway_cpu,
        # What one core would give if nothing else ran on it: the service's cost over the sum.
        "cpu_bound_ratio_32_connections": round(service_cpu / (service_cpu_via + gateway_cpu), 3),
        "non_200_answers": sum(
            r[n][c]["errors"] for r in rounds for n in ("direct", "gateway") for c in (32, 1)
        ),
        "per_round": rounds,
    }


def main() -> dict[str, Any]:
    from bench.common import report

    generator = "wrk" if shutil.which("wrk") else "aiohttp"
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[LOAD_CORE % len(cores)]})
    # Other work on the machine shows in every wall-clock figure: say how busy it was.
    figures: dict[str, Any] = {
        "load_generator": generator,
        "rounds": ROUNDS,
        "machine_load_average_before": round(os.getloadavg()[0], 2),
    }
    measured: dict[str, dict[str, Any]] = {}
    for kind in ("registry", "synthetic"):
        try:
            measured[kind] = _figures(_measure_service(kind, generator))
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            # The registry is young; when it cannot serve its read, the synthetic service stands in.
            print(f"   {kind}: not measured ({type(exc).__name__}: {str(exc)[:300]})", flush=True)
            figures[f"{kind}_not_measured"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    figures["machine_load_average_after"] = round(os.getloadavg()[0], 2)
    primary = "registry" if "registry" in measured else "synthetic"
    figures["goals_judged_on"] = {
        "registry": f"registry GET /api/v1/areas/{AREA_CODE}",
        "synthetic": "synthetic FastAPI service GET /api/v1/households/{id}",
    }[primary]
    for kind, values in measured.items():
        for key, value in values.items():
            figures[f"{kind}.{key}"] = value
    if not measured:
        return report("gateway_hop", figures, {}, {})
    ratio = measured[primary]["throughput_ratio_32_connections"]
    added = measured[primary]["added_median_ms_1_connection"]
    goals = {
        "throughput_ratio": "gateway/direct >= 0.5 at 32 connections",
        "added_latency": "added median <= 0.3 ms at 1 connection",
    }
    met = {"throughput_ratio": ratio >= 0.5, "added_latency": added <= 0.3}
    return report("gateway_hop", figures, goals, met)


def _cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_hop")
    sub = parser.add_subparsers(dest="role", required=True)
    service = sub.add_parser("service")
    service.add_argument("--port", type=int, required=True)
    service.add_argument("--key", required=True)
    service.add_argument("--issuer", required=True)
    load = sub.add_parser("load")
    load.add_argument("--url", required=True)
    load.add_argument("--token", required=True)
    load.add_argument("--connections", type=int, required=True)
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--generator", default="aiohttp")
    paired = sub.add_parser("paired")
    paired.add_argument("--direct", required=True)
    paired.add_argument("--gateway", required=True)
    paired.add_argument("--token", required=True)
    paired.add_argument("--seconds", type=float, required=True)
    sub.add_parser("run")
    args = parser.parse_args(argv)
    if args.role == "service":
        run_service(args.port, args.key, args.issuer)
    elif args.role == "paired":
        import uvloop

        result = uvloop.run(_aiohttp_paired(args.direct, args.gateway, args.token, args.seconds))
        print(json.dumps(result))
    elif args.role == "load":
        print(
            json.dumps(
                run_load(args.url, args.token, args.connections, args.seconds, args.generator)
            )
        )
    else:
        main()


if __name__ == "__main__":
    _cli(sys.argv[1:])
