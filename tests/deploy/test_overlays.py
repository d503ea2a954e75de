"""Every kustomize overlay renders and validates strictly, keeps its pods hardened, has one
PodDisruptionBudget, autoscaler and Service per Deployment, and commits no secrets."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
import yaml
from checks import (
    DEPLOY,
    OVERLAYS,
    coverage_problems,
    docs_of,
    hardening_problems,
    k8s_version,
    of_kind,
    render,
    secret_leaks,
    tool,
    validation_problems,
)


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
    # The alerts API sits behind a Service: its pods need the pause while endpoints drain.
    api = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "alerts")
    del api["spec"]["template"]["spec"]["containers"][0]["lifecycle"]
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
        "Deployment/alerts/alerts: no preStop pause",
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


def test_coverage_check_still_wants_an_hpa_for_the_api_but_none_for_the_worker():
    """The worker exception is declared (checks.WORKERS), so it cannot excuse an API Deployment."""
    docs = copy.deepcopy(docs_of("prod"))
    docs = [
        d
        for d in docs
        if not (d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "alerts")
        and not (d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "alerts-worker")
    ]
    # The worker exposed after all: a Service and an autoscaler aimed at it.
    [service] = [s for s in of_kind(docs, "Service") if s["metadata"]["name"] == "alerts"]
    service = copy.deepcopy(service)
    service["metadata"]["name"] = "alerts-worker"
    service["spec"]["selector"]["app.kubernetes.io/component"] = "worker"
    hpa = copy.deepcopy(of_kind(docs, "HorizontalPodAutoscaler")[0])
    hpa["metadata"]["name"] = "alerts-worker"
    hpa["spec"]["scaleTargetRef"]["name"] = "alerts-worker"
    docs += [service, hpa]
    found = "\n".join(coverage_problems(docs))
    for expected in (
        "Deployment/alerts: 0 HorizontalPodAutoscaler objects select it, want 1",
        "Deployment/alerts-worker: 0 PodDisruptionBudget objects select it, want 1",
        "Deployment/alerts-worker: 1 HorizontalPodAutoscaler objects select it, want 0",
        "Deployment/alerts-worker: 1 Service objects select it, want 0",
    ):
        assert expected in found


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
