"""NetworkPolicies allow exactly the traffic graph of the suite: default deny, DNS, bounded egress."""

from __future__ import annotations

import copy
import ipaddress

import pytest
from checks import (
    DEV_ISSUER_TRAFFIC,
    NAMESPACE,
    OVERLAYS,
    PORTS,
    TRAFFIC,
    WORKERS,
    allowed,
    docs_of,
    egress_problems,
    of_kind,
    selects,
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
            PORTS[WORKERS.get(d["metadata"]["name"], d["metadata"]["name"])],
        )
    }
    assert reachable == {"gateway"}


WEBHOOK_POLICY = "alerts-webhook-egress"


def _webhook_senders(docs: list[dict]) -> set[str]:
    """Deployments whose pods may open HTTPS to a public address (a subscriber's webhook)."""
    public = ipaddress.ip_address("203.0.113.10")  # a documentation address stands for "public"
    senders = set()
    for deployment in of_kind(docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for policy in of_kind(docs, "NetworkPolicy"):
            if not selects(policy["spec"]["podSelector"], labels):
                continue
            for rule in policy["spec"].get("egress") or []:
                if {p.get("port") for p in rule.get("ports") or []} != {443}:
                    continue
                blocks = [x["ipBlock"] for x in rule.get("to") or [] if "ipBlock" in x]
                if any(
                    public in ipaddress.ip_network(b["cidr"])
                    and not any(public in ipaddress.ip_network(e) for e in b.get("except") or [])
                    for b in blocks
                ):
                    senders.add(deployment["metadata"]["name"])
    return senders


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhooks_leave_from_the_alerts_api_and_worker_only(overlay):
    """The worker's dispatcher delivers them; the API sends a subscriber's test message (ping)."""
    assert _webhook_senders(docs_of(overlay)) == {"alerts", "alerts-worker"}


def test_webhook_check_sees_a_policy_change():
    docs = copy.deepcopy(docs_of("prod"))
    [webhooks] = [
        p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"] == WEBHOOK_POLICY
    ]
    webhooks["spec"]["podSelector"]["matchExpressions"][1]["values"] = ["worker"]
    assert _webhook_senders(docs) == {"alerts-worker"}
    webhooks["spec"]["egress"][0]["to"][0]["ipBlock"]["except"].append("203.0.113.0/24")
    assert _webhook_senders(docs) == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_dns_and_bounded_egress(overlay):
    assert egress_problems(docs_of(overlay)) == []


def test_policy_checks_catch_an_open_policy():
    docs = copy.deepcopy(docs_of("prod"))
    docs = [d for d in docs if d["metadata"]["name"] != "default-deny-all"]
    [webhooks] = [
        p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"] == WEBHOOK_POLICY
    ]
    webhooks["spec"]["egress"][0]["to"][0]["ipBlock"]["except"].remove("10.0.0.0/8")
    webhooks["spec"]["egress"].append({"ports": [{"port": 443}]})
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
        ("gateway", "alerts-worker", 8003),
    } <= traffic_graph(docs)
