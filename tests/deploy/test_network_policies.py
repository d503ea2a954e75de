"""NetworkPolicies allow exactly the traffic graph of the suite: default deny, DNS, bounded egress."""

from __future__ import annotations

import copy

import pytest
from checks import (
    DEV_ISSUER_TRAFFIC,
    NAMESPACE,
    OVERLAYS,
    PORTS,
    TRAFFIC,
    allowed,
    docs_of,
    egress_problems,
    of_kind,
    traffic_graph,
)


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
