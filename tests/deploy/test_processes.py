"""The processes the overlays run match the contract: commands, ports, settings; dev small, prod
replicated; the alerts API and its feed worker told apart by settings only."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

import pytest
from checks import (
    API_ONLY_SETTINGS,
    DB_SERVICES,
    NAMESPACE,
    OVERLAYS,
    PORTS,
    TRAFFIC,
    WORKERS,
    docs_of,
    of_kind,
    pod_specs,
)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_processes_match_the_contract(overlay):
    """Commands, ports, schemas, secrets and the gateway's routes line up with the process table."""
    docs = docs_of(overlay)
    config_maps = {c["metadata"]["name"] for c in of_kind(docs, "ConfigMap")}
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    images = set()
    assert {d["metadata"]["name"] for d in of_kind(docs, "Deployment")} == set(PORTS) | set(WORKERS)
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
    # The gateway's upstreams and every feed's producer: each URL names that process's Service.
    settings = _settings(docs)
    producers = {server for client, server, _ in TRAFFIC}
    assert producers == set(DB_SERVICES)
    for name in producers:
        url = urlsplit(settings[f"{name.upper()}_URL"])
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
        if deployment["metadata"]["name"] in WORKERS:
            # No HPA: one active under the leases, one standby for failover.
            assert deployment["spec"]["replicas"] == 2
        else:
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    for _, template in pod_specs(docs):
        image = template["spec"]["containers"][0]["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
        assert ("@sha256:" in image or tag) and tag != "latest", f"unpinned image {image}"
    assert any(p["metadata"]["name"] == "oidc-egress" for p in of_kind(docs, "NetworkPolicy"))


def _container(docs: list[dict], deployment: str) -> dict:
    [found] = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == deployment]
    return found["spec"]["template"]


def split_problems(docs: list[dict]) -> list[str]:
    """Each worker runs its process's pod with only the background settings changed; the API
    runs none of the background work (docs/alerts.md "Processes")."""
    problems = []
    for worker_name, process in WORKERS.items():
        api, worker = _container(docs, process), _container(docs, worker_name)
        [api_container] = api["spec"]["containers"]
        [worker_container] = worker["spec"]["containers"]
        api_env = {e["name"]: e.get("value") for e in api_container.get("env") or []}
        worker_env = {e["name"]: e.get("value") for e in worker_container.get("env") or []}
        for key, value in API_ONLY_SETTINGS.items():
            if api_env.get(key) != value:
                problems.append(f"Deployment/{process}: {key} is {api_env.get(key)}, want {value}")
            if worker_env.get(key, "true") != "true":
                problems.append(f"Deployment/{worker_name}: {key} is {worker_env[key]}")
        others = [
            {k: v for k, v in env.items() if k not in API_ONLY_SETTINGS}
            for env in (api_env, worker_env)
        ]
        if others[0] != others[1]:
            problems.append(f"Deployment/{worker_name}: settings other than {process}'s")
        for field in ("image", "command", "envFrom", "volumeMounts", "securityContext"):
            if api_container.get(field) != worker_container.get(field):
                problems.append(f"Deployment/{worker_name}: another {field} than {process}")
        for field in ("serviceAccountName", "volumes", "securityContext"):
            if api["spec"].get(field) != worker["spec"].get(field):
                problems.append(f"Deployment/{worker_name}: another pod {field} than {process}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alerts_runs_as_its_api_and_its_worker(overlay):
    assert split_problems(docs_of(overlay)) == []


def test_split_check_catches_a_worker_that_drifts_from_its_api():
    docs = copy.deepcopy(docs_of("prod"))
    api = _container(docs, "alerts")["spec"]["containers"][0]
    api["env"] = [e for e in api["env"] if e["name"] != "RUN_SWEEPER"]  # the API sweeps again
    worker = _container(docs, "alerts-worker")["spec"]
    worker["containers"][0]["env"].append({"name": "CONSUME_SCORING", "value": "false"})
    worker["containers"][0]["env"].append({"name": "DB_SCHEMA_EXTRA", "value": "x"})
    worker["volumes"][1]["secret"]["secretName"] = "zhongfu-scoring"
    found = "\n".join(split_problems(docs))
    for expected in (
        "Deployment/alerts: RUN_SWEEPER is None, want false",
        "Deployment/alerts-worker: CONSUME_SCORING is false",
        "Deployment/alerts-worker: settings other than alerts's",
        "Deployment/alerts-worker: another pod volumes than alerts",
    ):
        assert expected in found
