"""The solve: OR-Tools' min-cost flow on the grouped network, and the decoding back to needs.

Nodes: groups, hubs, offers, one sink. Arcs: group -> hub (capacity: the group's size, cost 0),
hub -> offer and group -> offer (cost: distance units), group -> sink per priority present in
the group (capacity: how many, cost: priority x unit, i.e. leaving such a need unmatched),
offer -> sink (capacity: what is left this period). Minimising the cost maximises the sum over
matches of (priority x unit - distance units). Deterministic: the same problem gives the same
arrays in the same order, and the solver is deterministic.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from matching.engine.graph import Graph, build
from matching.engine.model import CAPACITY_EXHAUSTED, I64, Problem, Solution

PRIORITY_SLOTS = 1024  # priorities are small integers (weights up to 10 x 10)
SMALL_NETWORK = 100_000  # arcs; below this, components are solved one after the other on one thread


class SolverFailed(RuntimeError):
    """OR-Tools did not find an optimum (it always should: the bypass arcs make it feasible)."""


@dataclass
class Network:
    tails: I64
    heads: I64
    capacities: I64
    costs: I64
    supplies: I64
    sections: tuple[int, int, int, int]  # arc counts: group->hub, hub->offer, group->offer, bypass
    bypass_group: I64
    bypass_priority: I64
    nodes: tuple[int, int, int]  # groups, hubs, offers (the sink comes last)


def network(problem: Problem, graph: Graph) -> Network:
    n_groups, n_hubs, m = len(graph.group_size), len(graph.hub_size), len(problem.offers)
    hub0, offer0, sink = n_groups, n_groups + n_hubs, n_groups + n_hubs + m
    keys, counts = np.unique(graph.group_of * PRIORITY_SLOTS + problem.needs.priority, return_counts=True)
    b_group, b_priority = keys // PRIORITY_SLOTS, keys % PRIORITY_SLOTS
    gh = np.flatnonzero(graph.hub_of_group >= 0)
    tails = np.concatenate([gh, hub0 + graph.hub_arc_hub, graph.arc_group, b_group, offer0 + np.arange(m)])
    heads = np.concatenate([hub0 + graph.hub_of_group[gh], offer0 + graph.hub_arc_offer, offer0 + graph.arc_offer,
                            np.full(len(keys), sink), np.full(m, sink)])
    caps = np.concatenate([graph.group_size[gh], graph.hub_size[graph.hub_arc_hub], graph.group_size[graph.arc_group],
                           counts, np.maximum(problem.offers.remaining, 0)])
    costs = np.concatenate([np.zeros(len(gh), np.int64), graph.hub_arc_units, graph.arc_units,
                            b_priority * problem.weights.priority_unit, np.zeros(m, np.int64)])
    supplies = np.zeros(sink + 1, dtype=np.int64)
    supplies[:n_groups] = graph.group_size
    supplies[sink] = -len(problem.needs)
    sections = (len(gh), len(graph.hub_arc_hub), len(graph.arc_group), len(keys))
    return Network(tails.astype(np.int64), heads.astype(np.int64), caps.astype(np.int64), costs.astype(np.int64),
                   supplies, sections, b_group, b_priority, (n_groups, n_hubs, m))


def min_cost_flow_once(tails: I64, heads: I64, capacities: I64, costs: I64, supplies: I64) -> I64:
    """One OR-Tools min-cost flow, with the numpy batch API; the flows per arc."""
    mcf = min_cost_flow.SimpleMinCostFlow()
    arcs = mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, costs)
    mcf.set_nodes_supplies(np.arange(len(supplies)), supplies)
    status = mcf.solve()
    if status != mcf.OPTIMAL:
        raise SolverFailed(f"min-cost flow ended with status {status}")
    return np.asarray(mcf.flows(arcs), dtype=np.int64)


def solve_whole(net: Network) -> tuple[I64, float]:
    """The bare solver call on the whole network (the benchmark's baseline)."""
    started = time.perf_counter()
    flows = min_cost_flow_once(net.tails, net.heads, net.capacities, net.costs, net.supplies)
    return flows, time.perf_counter() - started


def components(net: Network) -> I64:
    """Connected components of the network without its sink, labelled per arc (-1: a bypass arc of
    a group no offer can reach, whose flow is simply all of its supply)."""
    n_groups, n_hubs, m = net.nodes
    sink = n_groups + n_hubs + m
    inner = net.heads != sink
    u, v = net.tails[inner], net.heads[inner]
    labels = np.arange(sink + 1, dtype=np.int64)
    while True:  # hook every edge to the smaller root, then jump pointers until flat
        lu, lv = labels[u], labels[v]
        low = np.minimum(lu, lv)
        before = labels.copy()
        np.minimum.at(labels, lu, low)
        np.minimum.at(labels, lv, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            break
    arc_label = labels[net.tails]
    reachable = np.zeros(sink + 1, dtype=bool)
    reachable[u], reachable[v] = True, True
    return np.where(reachable[net.tails], arc_label, -1)


def solve_network(net: Network, workers: int = 2) -> tuple[I64, float]:
    """Solve each connected component on its own, on ``workers`` threads (OR-Tools releases the
    GIL); exact, since components share nothing but the sink."""
    started = time.perf_counter()
    sink = len(net.supplies) - 1
    label = components(net)
    flows = np.zeros(len(net.tails), dtype=np.int64)
    isolated = label < 0  # bypass arcs of groups with no reachable offer: everything goes unmatched
    flows[isolated] = net.capacities[isolated]
    order = np.argsort(label, kind="stable")
    order = order[label[order] >= 0]
    bounds = np.flatnonzero(np.r_[True, label[order][1:] != label[order][:-1], True])

    def one(lo: int, hi: int) -> tuple[I64, I64]:
        arcs = order[lo:hi]
        nodes, local = np.unique(np.r_[net.tails[arcs], net.heads[arcs]], return_inverse=True)
        supplies = net.supplies[nodes].copy()
        at_sink = nodes == sink
        supplies[at_sink] = 0
        supplies[at_sink] = -supplies.sum()
        k = len(arcs)
        return arcs, min_cost_flow_once(local[:k], local[k:], net.capacities[arcs], net.costs[arcs], supplies)

    jobs = [(int(bounds[i]), int(bounds[i + 1])) for i in range(len(bounds) - 1)]
    jobs.sort(key=lambda j: j[0] - j[1])  # largest first
    if len(net.tails) < SMALL_NETWORK or workers <= 1:  # an incremental run: threads cost more than they save
        for job in jobs:
            arcs, f = one(*job)
            flows[arcs] = f
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for arcs, f in pool.map(lambda j: one(*j), jobs):
                flows[arcs] = f
    return flows, time.perf_counter() - started


def solve(problem: Problem) -> Solution:
    n = len(problem.needs)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Solution(empty, empty, np.zeros(0), np.zeros(0, np.int8), 0, 0, 0, 0.0)
    graph = build(problem)
    net = network(problem, graph)
    flows, seconds = solve_network(net)
    offer_of, units, km = decode(problem, graph, net, flows)
    reason = graph.reason.copy()
    reason[(offer_of < 0) & (reason == 0)] = CAPACITY_EXHAUSTED
    reason[offer_of >= 0] = 0
    matched = offer_of >= 0
    objective = int((problem.needs.priority[matched] * problem.weights.priority_unit - units[matched]).sum())
    return Solution(offer_of=offer_of, distance_units=units, distance_km=km, reason=reason, objective=objective,
                    groups=len(graph.group_size), arcs=len(net.tails), solver_seconds=seconds)


def _slots(owner: I64, offer: I64, units: I64, km: np.ndarray, flow: I64) -> tuple[I64, I64, I64, np.ndarray]:
    """One slot per unit of flow, ordered by owner, then nearest first."""
    used = flow > 0
    owner, offer, units, km, flow = owner[used], offer[used], units[used], km[used], flow[used]
    order = np.lexsort((offer, units, owner))
    rep = flow[order]
    return (np.repeat(owner[order], rep), np.repeat(offer[order], rep), np.repeat(units[order], rep),
            np.repeat(km[order], rep))


def decode(problem: Problem, graph: Graph, net: Network, flows: I64) -> tuple[I64, I64, np.ndarray]:
    """Hand each group's flows to its needs: the highest priorities (then the oldest) are matched,
    and get the nearest of the group's slots. Needs of one group are interchangeable in cost."""
    needs = problem.needs
    n = len(needs)
    n_gh, n_ho, n_go, n_by = net.sections
    f_gh = flows[:n_gh]
    f_ho = flows[n_gh:n_gh + n_ho]
    f_go = flows[n_gh + n_ho:n_gh + n_ho + n_go]
    f_by = flows[n_gh + n_ho + n_go:n_gh + n_ho + n_go + n_by]

    # Hub slots go to the groups that sent flow into the hub (all of a hub's groups share a village).
    h_hub, h_offer, h_units, h_km = _slots(graph.hub_arc_hub, graph.hub_arc_offer, graph.hub_arc_units,
                                           graph.hub_arc_km, f_ho)
    gh_group = net.tails[:n_gh]
    gh_hub = graph.hub_of_group[gh_group]
    order = np.lexsort((gh_group, gh_hub))
    senders = np.repeat(gh_group[order], f_gh[order])  # grouped by hub, like h_hub
    if len(senders) != len(h_hub):
        raise SolverFailed("flow conservation broken at a hub")
    d_group, d_offer, d_units, d_km = _slots(graph.arc_group, graph.arc_offer, graph.arc_units, graph.arc_km, f_go)
    s_group = np.r_[senders, d_group]
    s_offer, s_units, s_km = np.r_[h_offer, d_offer], np.r_[h_units, d_units], np.r_[h_km, d_km]
    s_order = np.lexsort((s_offer, s_units, s_group))
    s_offer, s_units, s_km = s_offer[s_order], s_units[s_order], s_km[s_order]

    # Needs by group, priority (high first), input order (oldest first); the unmatched of each
    # (group, priority) block come from its bypass arc (keys sorted by group, then priority).
    order = np.lexsort((np.arange(n), -needs.priority, graph.group_of))
    g, p = graph.group_of[order], needs.priority[order]
    block = np.r_[0, np.flatnonzero((g[1:] != g[:-1]) | (p[1:] != p[:-1])) + 1]
    block_size = np.diff(np.r_[block, n])
    rank = np.arange(n) - np.repeat(block, block_size)
    b_key = net.bypass_group * PRIORITY_SLOTS + net.bypass_priority
    unmatched = f_by[np.searchsorted(b_key, g[block] * PRIORITY_SLOTS + p[block])]
    winners = order[rank < np.repeat(block_size - unmatched, block_size)]
    if len(winners) != len(s_offer):
        raise SolverFailed("flow conservation broken between matched needs and offer slots")
    offer_of = np.full(n, -1, dtype=np.int64)
    units = np.zeros(n, dtype=np.int64)
    km = np.zeros(n, dtype=np.float64)
    offer_of[winners], units[winners], km[winners] = s_offer, s_units, s_km
    return offer_of, units, km
