"""verify's probes against a real miniature pod network (network namespaces), fault by fault.

The API's answers are the lab transcript's (tests/verify_transcript.py), changed the way the cluster
itself would show each fault; packets, DNS, HTTP and the inventory service are real. For every fault,
verify must flag exactly the affected checks with the right hint, show the checks standing on a failed
one as skipped, and (proof that skipping hides nothing) each skipped probe, run anyway, must fail.
"""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import pytest

from tests import verify_transcript as tx
from labkit import settings as settings_mod
from labkit.backends import Netns
from labkit.verify import run_lab
from labkit.checks import FAIL, PASS, SKIP
from labkit.verify.model import Lab
from labkit.verify.plan import Where
from tests.verify_podnet import NAT_DNS, BusyboxNetns, PodNetwork, running

pytestmark = pytest.mark.t1

INV_NODE_B, INV_CLIENT_B = f"inv.node.{tx.INV_B}", f"inv.client.{tx.INV_B}"
INV_NODE_A = f"inv.node.{tx.INV_A}"


@pytest.fixture(scope="module")
def lab(repo) -> Lab:
    return Lab.from_settings(settings_mod.load(repo, {}))


@pytest.fixture(scope="module")
def net(repo, lab, tmp_path_factory):
    pods = {"coredns": ("coredns-5c98db65d4-jklpz", tx.COREDNS["coredns-5c98db65d4-jklpz"]),
            "web": ("web", tx.WEB_IP), "client": ("client", tx.CLIENT_IP),
            "inv-a": (tx.INV_A, tx.INV_A_IP), "inv-b": (tx.INV_B, tx.INV_B_IP)}
    with running(PodNetwork(uuid.uuid4().hex[:6], tmp_path_factory.mktemp("podnet"), repo, lab, pods,
                            tx.SERVICE_IP)) as network:
        yield network


@pytest.fixture
def where(net) -> Where:
    return Where(node=Netns(net.node), client=BusyboxNetns(net.ns("client")))


def verdict(results) -> dict:
    return {r.check.id: r for r in results}


def not_passed(results) -> dict:
    return {r.check.id: r for r in results if r.status != PASS}


# --- the healthy lab ----------------------------------------------------------------------------

def test_healthy_lab_passes_every_check(lab, net, where):
    results = run_lab(lab, tx.snapshot(), where)
    assert not_passed(results) == {}, {k: r.result for k, r in not_passed(results).items()}
    got = verdict(results)
    # Values verify read from the real network, not from the API answers.
    assert got["net.route"].result.detail.startswith("10.32.0.0/12 dev weave proto kernel scope link src 10.32.0.1")
    assert got["dns.resolvconf"].result.detail.startswith("nameserver 10.96.0.10; search default.svc.cluster.local")
    assert got["dns.lookup"].result.detail == "inv.default.svc.cluster.local → 10.103.51.48 (server 10.96.0.10)"
    assert got[INV_NODE_A].result.detail == '{"version":"0.1"}'
    assert "not resolved" in got["svc.node.name"].result.detail
    # Both replicas, named by the header the real service adds (their hostnames are the pod names).
    lb = got["svc.lb"].result.detail
    assert tx.INV_A in lb and tx.INV_B in lb and lb.startswith("20 requests")
    print(f"\nhealthy run: {len(results)} checks in {max(r.seconds for r in results):.2f}s (slowest check)")


def test_section_selection_runs_the_section_and_its_prerequisites(lab, net, where):
    results = run_lab(lab, tx.snapshot(), where, section=7)
    ids = {r.check.id for r in results}
    assert {"deploy.available", INV_NODE_A, INV_NODE_B, f"inv.client.{tx.INV_A}", INV_CLIENT_B} <= ids
    assert {"api", "node.ssh", "net.route", "client.exec"} <= ids  # what section 7 stands on
    assert not ids & {"svc.lb", "dns.lookup", "web.node", "coredns"}
    assert all(r.status == PASS for r in results)


# --- faults -------------------------------------------------------------------------------------

@dataclass
class Fault:
    inject: Callable  # PodNetwork → context manager
    api: Callable     # Snapshot → Snapshot, as the cluster would report the fault
    failed: dict      # check id → hint key
    skipped: dict     # check id → id of the failed check named as the reason
    forced: dict      # skipped check id → hint key it gives when run anyway


# Each fault is injected inside its `try`, so that a half-done injection is undone too.

@contextmanager
def inv_pod_stopped(net):
    try:
        net.stop("inv-b")
        net.set_service_backends([tx.INV_A_IP])  # kube-proxy follows the endpoints: the not-ready pod leaves
        yield
    finally:
        net.start_inv("inv-b")
        net.wait_http(tx.INV_B_IP, 8080)
        net.set_service_backends(net.inv_backends)


@contextmanager
def dns_stopped(net):
    coredns = net.ns("coredns")
    try:
        # Every query the client repeats is refused at once (the kernel's rate limit on port-unreachable
        # answers would let some of them time out instead), so a forced probe fails the same way each run.
        net.in_ns(coredns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        net.stop("coredns")
        yield
    finally:
        net.start_dns()
        net.wait_dns()
        net.in_ns(coredns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=1000")


@contextmanager
def route_removed(net):
    cidr = str(net.lab.pod_cidr)
    try:
        net.sh("ip", "-n", net.node, "route", "del", cidr, "dev", "weave")
        yield
    finally:
        net.sh("ip", "-n", net.node, "route", "replace", cidr, "dev", "weave", "proto", "kernel", "scope", "link",
               "src", "10.32.0.1")


@contextmanager
def wrong_resolv_conf(net):
    try:
        # What a pod gets with dnsPolicy: Default: the node's own resolver (VirtualBox's NAT DNS).
        net.write_resolv_conf(net.ns("client"), f"nameserver {NAT_DNS}\nsearch localdomain\n")
        yield
    finally:
        net.write_resolv_conf(net.ns("client"), net.pod_resolv_conf())


@contextmanager
def one_backend(net):
    try:
        net.set_service_backends([tx.INV_A_IP])
        yield
    finally:
        net.set_service_backends(net.inv_backends)


SERVICE_PROBES = ("dns.lookup", "svc.client.name", "svc.client.fqdn", "svc.node.ip", "svc.lb")

FAULTS = {
    "inv pod stopped": Fault(
        inv_pod_stopped, tx.inv_pod_stopped,
        failed={"deploy.available": "crashloop"},
        skipped={INV_NODE_B: "deploy.available", INV_CLIENT_B: "deploy.available", "svc.lb": "deploy.available"},
        # This machine's curl 7.88 says only "Couldn't connect to server" when refused (the node's 7.47
        # says "Connection refused"), so the node side reads as unreachable.
        forced={INV_NODE_B: "pod-unreachable-node", INV_CLIENT_B: "http-refused", "svc.lb": "lb-one-replica"}),
    "DNS stopped, CoreDNS still shown Running": Fault(
        dns_stopped, lambda s: s,
        failed={"dns.lookup": "dns-down"},
        skipped={"svc.client.name": "dns.lookup", "svc.client.fqdn": "dns.lookup"},
        forced={"svc.client.name": "name-not-found", "svc.client.fqdn": "name-not-found"}),
    "DNS stopped, CoreDNS crash-looping": Fault(
        dns_stopped, tx.coredns_crashing,
        failed={"coredns": "coredns-crash"},
        skipped={"dns.lookup": "coredns", "svc.client.name": "coredns", "svc.client.fqdn": "coredns"},
        forced={"dns.lookup": "dns-down", "svc.client.name": "name-not-found", "svc.client.fqdn": "name-not-found"}),
    "weave route removed": Fault(
        route_removed, lambda s: s,
        failed={"net.route": "route-missing"},
        skipped={k: "net.route" for k in ("web.node", INV_NODE_A, INV_NODE_B) + SERVICE_PROBES},
        forced={**dict.fromkeys(("web.node", INV_NODE_A, INV_NODE_B), "pod-unreachable-node"),
                "dns.lookup": "dns-down",
                **dict.fromkeys(("svc.client.name", "svc.client.fqdn", "svc.node.ip"), "service-unreachable"),
                "svc.lb": "lb-errors"}),
    "wrong resolv.conf in client": Fault(
        wrong_resolv_conf, lambda s: s,
        failed={"dns.resolvconf": "resolv-nameserver"},
        skipped={"dns.lookup": "dns.resolvconf", "svc.client.name": "dns.resolvconf",
                 "svc.client.fqdn": "dns.resolvconf"},
        forced={"dns.lookup": "dns-nxdomain",
                **dict.fromkeys(("svc.client.name", "svc.client.fqdn"), "name-not-found")}),
    "endpoint missing": Fault(
        one_backend, tx.endpoint_missing,
        failed={"svc.endpoints-match": "endpoint-missing"},
        skipped={"svc.lb": "svc.endpoints-match"}, forced={"svc.lb": "lb-one-replica"}),
    "only one replica answering": Fault(
        one_backend, lambda s: s,
        failed={"svc.lb": "lb-one-replica"},
        skipped={}, forced={}),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_flagged_exactly(name, lab, net, where):
    fault = FAULTS[name]
    with fault.inject(net):
        snap = fault.api(tx.snapshot())
        results = run_lab(lab, snap, where)
        flagged = not_passed(results)
        described = {k: (r.status, r.result.detail, r.result.key) for k, r in flagged.items()}

        assert {k for k, r in flagged.items() if r.status == FAIL} == set(fault.failed), described
        assert {k for k, r in flagged.items() if r.status == SKIP} == set(fault.skipped), described
        for cid, key in fault.failed.items():
            assert flagged[cid].result.key == key, described[cid]
            hint = flagged[cid].result
            assert hint.fix and not re.search(r"\{\w+\?\}", hint.cause + hint.fix), hint  # filled, with a command
        by_title = {r.check.id: r.check.title for r in results}
        for cid, blocker in fault.skipped.items():
            outcome = flagged[cid].result
            assert outcome.blocked_by == blocker, described[cid]
            assert by_title[blocker] in outcome.detail, described[cid]

        # Skipping hid nothing that works: every skipped probe, run anyway, fails for real.
        checks = {r.check.id: r.check for r in results}
        with ThreadPoolExecutor(max_workers=max(len(fault.skipped), 1)) as pool:
            forced = dict(zip(fault.skipped, pool.map(lambda cid: checks[cid].run(3), fault.skipped)))
        assert {cid: o.status for cid, o in forced.items()} == {cid: FAIL for cid in fault.skipped}, forced
        # ...each with the hint the fault is known to cause (a changed failure mode shows here).
        assert {cid: o.key for cid, o in forced.items()} == fault.forced, {
            cid: (o.detail, o.key) for cid, o in forced.items()}
    print(f"\n{name}: failed {sorted(fault.failed)}, skipped {len(fault.skipped)}")


def test_network_is_healthy_again_after_the_faults(lab, net, where):
    """The faults above were undone: the fixture's network is back to a fully passing lab."""
    assert not_passed(run_lab(lab, tx.snapshot(), where)) == {}
