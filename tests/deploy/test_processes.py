"""The processes the overlays run match the contract: commands, ports, settings; dev small, prod replicated."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from checks import (
    DB_SERVICES,
    NAMESPACE,
    OVERLAYS,
    PORTS,
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
